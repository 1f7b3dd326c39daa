import awkward as ak
import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from events.errors import EventDataError
from events.hdf5 import HDF5Reader, HDF5Writer
from events.io import read_events, write_events
from events.model import Events, ObjectType, make_objects


def assert_same(a: Events, b: Events):
    assert ak.to_list(a.objects) == ak.to_list(b.objects)
    assert list(a.info) == list(b.info)
    for k in a.info:
        np.testing.assert_array_equal(a.info[k], b.info[k], err_msg=k)
    assert a.process_names == b.process_names


def test_round_trip_streaming_and_extras(tmp_path, ttbar):
    events = Events(ttbar.objects, dict(ttbar.info, extra=np.arange(len(ttbar), dtype=np.float32)),
                    ttbar.process_names)
    path = tmp_path / "t.h5"
    with HDF5Writer(path) as writer:
        for start in range(0, len(events), 700):
            writer.write(events[start:start + 700])
    assert_same(read_events(path), events)
    with HDF5Reader(path) as reader:
        chunks = list(reader.iterate(step_size=333))
        assert [len(c) for c in chunks][:2] == [333, 333]
        assert_same(Events.concatenate(chunks), events)
        assert_same(reader.read(1000, 1010), events[1000:1010])
    with h5py.File(path) as f:
        assert f["objects/pt"].compression == "gzip" and f["objects/pt"].chunks is not None


def test_failed_write_leaves_no_file(tmp_path, ttbar):
    path = tmp_path / "t.h5"
    with pytest.raises(RuntimeError):
        with HDF5Writer(path) as writer:
            writer.write(ttbar[:10])
            raise RuntimeError("crash half-way")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_corrupt_and_foreign_files(tmp_path, ttbar):
    path = tmp_path / "t.h5"
    write_events(ttbar, path)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(EventDataError, match="cut.h5"):
        read_events(cut)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(EventDataError, match="foreign.h5: HDF5 file is not a colliderfm.events store"):
        read_events(foreign)


objects_strategy = st.lists(st.lists(st.tuples(
    st.sampled_from([int(t) for t in ObjectType]), st.floats(0, 1e4, width=32), st.floats(-5, 5, width=32),
    st.floats(-3, 3, width=32), st.integers(-1, 1)), max_size=6), min_size=1, max_size=8)


@settings(max_examples=30, deadline=None)
@given(objects_strategy)
def test_fuzzed_events_round_trip(tmp_path_factory, rows):
    counts = [len(r) for r in rows]
    flat = [o for r in rows for o in r]
    cols = list(zip(*flat)) if flat else [[]] * 5
    objects = make_objects(counts, type=cols[0], pt=cols[1], eta=cols[2], phi=cols[3], charge=cols[4])
    events = Events(objects, {"event": np.arange(len(rows)) * 7})
    path = tmp_path_factory.mktemp("fuzz") / "f.h5"
    write_events(events, path)
    assert_same(read_events(path), events)
