"""The event store and the writers under abuse: hand-written or damaged stores, empty inputs, a full
disk, two writers of one path, values the readers refuse (the findings of issue 16, numbered as there)."""
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from events.errors import EventDataError
from events.hdf5 import HDF5Reader, HDF5Writer
from events.io import read_events, write_events
from events.model import INFO_FIELDS, Events, ObjectType, make_objects
from tests.test_hdf5 import assert_same

REPO = Path(__file__).resolve().parents[1]


def small_events(n: int = 6, seed: int = 0) -> Events:
    """A few events of jets, a muon and MET each."""
    rng = np.random.default_rng(seed)
    counts = np.full(n, 3)
    types = np.tile([int(ObjectType.JET), int(ObjectType.MUON), int(ObjectType.MET)], n)
    objects = make_objects(counts, type=types, pt=rng.uniform(20, 100, 3 * n), eta=rng.uniform(-2, 2, 3 * n),
                           phi=rng.uniform(-3, 3, 3 * n))
    info = {"event": np.arange(n) + 100, "process": np.zeros(n), "weight": np.ones(n)}
    return Events(objects, info, ("ttbar",))


def replace_dataset(path: Path, name: str, change) -> None:
    """Rewrite dataset `name` of a store as a hand-written store would have it: `change(values)`, no hash."""
    with h5py.File(path, "r+") as f:
        dtype = f[name].dtype
        values = change(f[name][:])
        del f[name]
        f[name] = np.asarray(values, dtype=dtype)


def run(*args, limit: int | None = None) -> subprocess.CompletedProcess:
    """A Python subprocess in the repository, with files limited to `limit` bytes (SIGXFSZ ignored, so a
    write past it fails with EFBIG, as a full disk fails with ENOSPC)."""
    def limited():
        import resource
        import signal

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, preexec_fn=limited if limit else None)


def error_line(proc, prog: str) -> str:
    """The one line of a CLI's failure (progress bars aside)."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if not line.lstrip("\r").startswith("converting")]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:"), proc.stderr
    return lines[0]


# --- 1. offsets and dataset shapes checked at open, values at read ---

def _bigger(offsets):
    offsets[-1] += 5
    return offsets


def _decreasing(offsets):
    offsets[2] = offsets[1] - 1
    return offsets


@pytest.mark.parametrize("name, change, message", [
    ("events/offsets", lambda o: o + 1, "/events/offsets starts at 1, not 0"),
    ("events/offsets", _decreasing, "/events/offsets decreases at entry 2"),
    ("events/offsets", _bigger, "/objects/type has 18 entries, but /events/offsets ends at 23 objects"),
    ("objects/eta", lambda v: v[:-1], "/objects/eta has 17 entries, but /events/offsets ends at 18"),
    ("events/weight", lambda v: v[:-1], "/events/weight has 5 entries, expected one per event (6"),
    ("objects/pt", lambda v: np.stack([v, v], axis=1), "/objects/pt has shape (18, 2), expected one value per object"),
])
def test_inconsistent_store_is_an_error_at_open(tmp_path, name, change, message):
    path = tmp_path / "hand.h5"
    write_events(small_events(), path)
    replace_dataset(path, name, change)
    with pytest.raises(EventDataError, match=f"hand.h5: {message}".replace("(", r"\(").replace(")", r"\)")):
        HDF5Reader(path)


@pytest.mark.parametrize("name, change, message", [
    ("events/process", lambda v: np.where(np.arange(6) == 3, 1, v), "/events/process is 1 in event 3, outside the 1"),
    ("events/process", lambda v: np.full_like(v, -2), "/events/process is -2 in event 0"),
    ("objects/type", lambda v: np.where(np.arange(18) == 7, 42, v), "unknown object type 42 in /objects/type, event 2"),
    ("objects/pt", lambda v: np.where(np.arange(18) == 10, np.nan, v), r"/objects/pt is nan for a muon in event 3 \(id 103\)"),
    ("events/weight", lambda v: np.where(np.arange(6) == 4, np.inf, v), "/events/weight is inf in event 4"),
])
def test_invalid_values_are_an_error_at_read(tmp_path, name, change, message):
    path = tmp_path / "hand.h5"
    write_events(small_events(), path)
    replace_dataset(path, name, change)
    with pytest.raises(EventDataError, match=f"hand.h5: {message}"):
        read_events(path)


def test_info_refuses_non_finite_values_and_unknown_types(tmp_path, capsys):
    """events.info used to print a pt range of [inf, -inf] for a NaN pt, and a traceback for type 42."""
    from events.info import main

    nan = tmp_path / "nan.h5"
    write_events(small_events(), nan)
    replace_dataset(nan, "objects/pt", lambda v: np.where(np.arange(18) == 0, np.nan, v))
    with pytest.raises(EventDataError, match=r"nan.h5: /objects/pt is nan for a jet in event 0"):
        main([str(nan), "--json"])
    foreign = tmp_path / "type42.h5"
    write_events(small_events(), foreign)
    replace_dataset(foreign, "objects/type", lambda v: np.where(np.arange(18) == 0, 42, v))
    with pytest.raises(EventDataError, match="type42.h5: unknown object type 42"):
        main([str(foreign), "--json"])


# --- 2. an empty input makes a valid empty store ---

def test_empty_store_reads_back_as_no_events(tmp_path):
    for name, events in [("none.h5", []), ("zero.h5", small_events()[:0])]:
        path = tmp_path / name
        assert write_events(events, path) == 0
        back = read_events(path)
        assert len(back) == 0 and list(back.info) == list(INFO_FIELDS)
        for field, dtype in INFO_FIELDS.items():
            assert back.info[field].dtype == dtype


def test_convert_empty_root_file(tmp_path):
    """Converting a NanoAOD file of 0 entries used to write a store the reader refused."""
    import uproot

    write_events(small_events()[:0], tmp_path / "empty.root")  # a NanoAOD-style tree of 0 entries
    with uproot.open(tmp_path / "empty.root") as f:
        assert f["Events"].num_entries == 0 and "Jet_pt" in f["Events"]
    proc = run("-m", "events.convert", tmp_path / "empty.root", tmp_path / "out.h5")
    assert proc.returncode == 0, proc.stderr
    assert len(read_events(tmp_path / "out.h5")) == 0


# --- 3. a full disk: one error line, no file ---

@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    """A store of about 400 kB (random floats barely compress)."""
    rng = np.random.default_rng(1)
    counts = rng.poisson(12, 4000)
    n = int(counts.sum())
    objects = make_objects(counts, type=rng.integers(0, 6, n), pt=rng.exponential(50, n), eta=rng.normal(0, 1, n))
    path = tmp_path_factory.mktemp("big") / "big.h5"
    write_events(Events(objects, {"event": np.arange(len(counts))}), path)
    return path


@pytest.mark.parametrize("suffix", ["h5", "root"])
def test_full_disk_is_one_error_and_no_file(big_store, tmp_path, suffix):
    """HDF5 output used to end in a segmentation fault flooded with h5py tracebacks, ROOT in a traceback."""
    out = tmp_path / f"out.{suffix}"
    proc = run("-m", "events.convert", big_store, out, limit=100_000)
    line = error_line(proc, "python -m events.convert")
    assert f"{out}: file size limit reached" in line
    assert not list(tmp_path.iterdir())


SCORE_SCRIPT = """
import sys
import numpy as np
from events.errors import EventDataError
from finetune.score_store import ScoreWriter
n = 50_000
rng = np.random.default_rng(0)
try:
    with ScoreWriter(sys.argv[1], ("surprise",)) as writer:
        for _ in range(4):
            writer.write({"run": np.ones(n, np.int64), "lumi": np.ones(n, np.int64), "event": np.arange(n)},
                         np.zeros(n, np.int64), {"surprise": rng.normal(size=n)})
except EventDataError as err:
    print(err)
"""


@pytest.mark.parametrize("suffix", ["h5", "csv"])
def test_full_disk_while_writing_scores(tmp_path, suffix):
    out = tmp_path / f"scores.{suffix}"
    proc = run("-c", SCORE_SCRIPT, out, limit=100_000)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    assert proc.stdout.strip() == f"{out}: file size limit reached (File too large) while writing; no file written"
    assert not list(tmp_path.iterdir())


SIGNAL_SCRIPT = """
import signal
import sys
import numpy as np
from events import writer
from events.io import write_events
from events.model import Events, make_objects

class Stop(Exception):
    pass

def stop(signum, frame):
    raise Stop()

signal.signal(signal.SIGTERM, stop)
write = writer._NeverFailingFile.write
def write_and_signal(self, data):  # SIGTERM arriving while HDF5 writes through the file object
    signal.raise_signal(signal.SIGTERM)
    return write(self, data)
writer._NeverFailingFile.write = write_and_signal
counts = np.full(40_000, 10)  # enough that HDF5 writes chunks out before the store is closed
try:
    write_events(Events(make_objects(counts, pt=np.arange(counts.sum()) % 1000), {}), sys.argv[1])
except Stop:
    print("stopped")
"""


def test_signal_during_an_hdf5_write_waits_for_h5py_to_return(tmp_path):
    """A signal handler's exception raised inside h5py's file-object call would fail an HDF5 write, and
    HDF5 crashes the process after a failed write: the signal waits until h5py has returned."""
    proc = run("-c", SIGNAL_SCRIPT, tmp_path / "out.h5")
    assert proc.returncode == 0 and proc.stdout.strip() == "stopped", (proc.returncode, proc.stderr[-2000:])
    assert not list(tmp_path.iterdir())  # the first write to the file came before the writer's close


# --- 4. two writers of one path ---

def test_second_writer_of_a_path_refuses_to_replace_the_first(tmp_path):
    path = tmp_path / "out.h5"
    first, second = small_events(4, seed=1), small_events(5, seed=2)
    a, b = HDF5Writer(path), HDF5Writer(path)
    a.write(first)
    b.write(second)
    a.close()
    with pytest.raises(EventDataError, match="out.h5: written by another process while this run was writing; "
                                             "this run's output is kept as ") as err:
        b.close()
    kept = Path(str(err.value).rsplit(" ", 1)[1])
    assert kept.parent == tmp_path and kept.suffix == ".h5"
    assert_same(read_events(path), first)
    assert_same(read_events(kept), second)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.h5", kept.name])


def test_scores_written_over_meanwhile_are_kept_beside(tmp_path):
    """Two `finetune.anomaly score` runs to one path both reported success; the file held the last one's."""
    from finetune.score_store import ScoreWriter, read_scores

    path = tmp_path / "scores.csv"
    path.write_text("an older file\n")
    ids = {"run": np.ones(3, np.int64), "lumi": np.ones(3, np.int64), "event": np.arange(3)}
    writers = [ScoreWriter(path, ("s",)), ScoreWriter(path, ("s",))]
    for i, writer in enumerate(writers):
        writer.write(ids, np.zeros(3, np.int64), {"s": np.arange(3.0) + 10 * i})
    writers[0].close()
    with pytest.raises(EventDataError, match="written by another process"):
        writers[1].close()
    assert read_scores(path)["s"].tolist() == [0.0, 1.0, 2.0]
    (kept,) = set(tmp_path.iterdir()) - {path}
    assert read_scores(kept)["s"].tolist() == [10.0, 11.0, 12.0]


def test_a_writer_replaces_a_file_that_stayed_unchanged(tmp_path):
    path = tmp_path / "out.h5"
    write_events(small_events(3), path)
    write_events(small_events(4), path)
    assert len(read_events(path)) == 4 and [p.name for p in tmp_path.iterdir()] == ["out.h5"]


# --- 6. a hash of every dataset ---

def test_hash_catches_values_changed_behind_the_chunk_checksums(tmp_path):
    """Values rewritten with valid chunks (as a damaged chunk index reads zeros where fletcher32 sees
    nothing wrong) are an error once a read covers the whole store."""
    path = tmp_path / "t.h5"
    events = small_events()
    write_events(events, path)
    with h5py.File(path, "r+") as f:
        f["objects/pt"][3:6] = 0.0
    with pytest.raises(EventDataError, match=r"t.h5: /objects/pt does not match the hash written with it"):
        read_events(path)
    with HDF5Reader(path) as reader:
        with pytest.raises(EventDataError, match="/objects/pt does not match"):
            list(reader.iterate(step_size=4))
        assert len(reader.read(0, 2)) == 2  # a partial read cannot check a hash


def test_hash_covers_the_type(tmp_path):
    """A flipped byte-order bit in a dataset's type reads the same bytes as other values."""
    path = tmp_path / "t.h5"
    write_events(small_events(), path)
    with h5py.File(path, "r+") as f:
        raw, digest = f["events/event"][:], f["events/event"].attrs["xxh3_128"]
        del f["events/event"]
        f["events/event"] = raw.view(raw.dtype.newbyteorder(">"))
        f["events/event"].attrs["xxh3_128"] = digest
    with pytest.raises(EventDataError, match="t.h5: /events/event does not match the hash"):
        read_events(path)


def test_hash_of_offsets_checked_at_open_and_old_stores_without_hashes_read(tmp_path):
    path = tmp_path / "t.h5"
    events = small_events()
    write_events(events, path)
    with h5py.File(path, "r+") as f:
        f["events/offsets"][6] = 18  # still consistent, but not what was written
        f["events/offsets"][5] = 16
    with pytest.raises(EventDataError, match="t.h5: /events/offsets does not match the hash"):
        HDF5Reader(path)
    write_events(events, path)
    with h5py.File(path, "r+") as f:
        for group in ("objects", "events"):
            for ds in f[group].values():
                del ds.attrs["xxh3_128"]
    assert_same(read_events(path), events)
