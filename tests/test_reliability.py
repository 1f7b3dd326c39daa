"""Interrupted runs and checkpoints: runs killed mid-way (SIGTERM or SIGKILL) resume to exactly the
weights of an uninterrupted run, and a corrupt checkpoint is detected and the previous one used."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from common.checkpoint import CheckpointError, load_checkpoint, previous, save_checkpoint, verify_checkpoint
from tests.conftest import REPO, SMALL


def tiny_model_and_optimizer(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_a_corrupt_or_missing_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    model, optimizer = tiny_model_and_optimizer()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, {"step": 1})
    first = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer.step()
    save_checkpoint(folder, model, optimizer, {"step": 2})
    assert load_checkpoint(folder, *tiny_model_and_optimizer(1))[0] == {"step": 2}
    # one flipped byte in the latest weights: detected by its checksum, the previous checkpoint is used
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    model2, optimizer2 = tiny_model_and_optimizer(1)
    assert load_checkpoint(folder, model2, optimizer2)[0] == {"step": 1}
    assert all(torch.equal(first[k], v) for k, v in model2.state_dict().items())
    assert "does not match its checksum" in caplog.text and caplog.records[0].levelname == "WARNING"
    # a crash between the two renames of a save leaves only the previous checkpoint
    folder.rename(tmp_path / "elsewhere")
    assert load_checkpoint(folder, *tiny_model_and_optimizer(1))[0] == {"step": 1}
    (previous(folder) / "state.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        load_checkpoint(folder, *tiny_model_and_optimizer(1))
    # a checkpoint of another model is a clear error, not a crash
    save_checkpoint(tmp_path / "other", model, optimizer, {"step": 3})
    wider = torch.nn.Linear(4, 5)
    with pytest.raises(CheckpointError, match="does not match this run's model"):
        load_checkpoint(tmp_path / "other", wider, torch.optim.AdamW(wider.parameters()))


def interrupt(cmd, ready, sig, timeout=240):
    """Run `cmd`, send `sig` as soon as file `ready` exists (or the callable `ready()` is true); the finished
    process."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    is_ready = ready if callable(ready) else ready.exists
    start = time.time()
    while not is_ready():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() - start < timeout
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(sig)
    proc.stderr_text = proc.communicate(timeout=timeout)[1]
    return proc


def after_the_second_checkpoint(checkpoint):
    """A `ready()` for a run that writes `checkpoint` at each epoch end: true once its second checkpoint is
    complete (it and the first, kept as .prev, are both there). A SIGKILL then lands early in the third
    epoch, loses the steps made since, and the resumed run must replay them exactly. It is sent at once:
    a delay measured on earlier epochs can, on a loaded machine, outlast the rest of the run."""
    return lambda: all((f / "manifest.json").exists() for f in (checkpoint, previous(checkpoint)))


def check_stopped(proc, sig):
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM, proc.stderr_text[-3000:]
        assert "stopped by SIGTERM" in proc.stderr_text and "--resume" in proc.stderr_text
    else:
        assert proc.returncode == -signal.SIGKILL


def same_weights(a, b, name="model.safetensors"):
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / name)), load_file(str(b / name))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{name}: {k}"


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """`straight_run(name, command)`: the folder of the uninterrupted run `command(folder)`, made once and
    shared by a trainer's SIGTERM and SIGKILL tests."""
    done = {}

    def straight_run(name, command):
        if name not in done:
            folder = tmp_path_factory.mktemp(name) / "straight"
            subprocess.run(command(folder), cwd=REPO, check=True, capture_output=True)
            done[name] = folder
        return done[name]

    return straight_run


def stop_resume_and_compare(command, straight, stopped, sig, ready=None):
    """Run `command(stopped)`, send `sig` once `ready` (default: once its first checkpoint exists), resume it
    with `command(stopped, resume=True)`: it ends with the same weights as the uninterrupted run in folder
    `straight`. Returns the loop state of the checkpoint the resumed run started from."""
    ckpt = stopped / "checkpoint"
    check_stopped(interrupt(command(stopped), ready or ckpt / "manifest.json", sig), sig)
    assert not (stopped / "model.safetensors").exists()  # nothing that looks finished
    usable = ckpt if verify_checkpoint(ckpt) is None else previous(ckpt)  # as load_checkpoint chooses
    resumed_from = json.loads((usable / "state.json").read_text())["loop"]
    done = subprocess.run(command(stopped, resume=True), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    same_weights(straight, stopped)
    # the last checkpoints too: the last weights (not only the best, which may predate the stop), the best
    # ones, the torch RNG state and the optimizer moments
    for name in ("model.safetensors", "optimizer.safetensors"):
        same_weights(straight / "checkpoint", ckpt, name)
    return resumed_from


def histories(*folders):
    return [json.loads((f / "metrics.json").read_text())["history"] for f in folders]


#: SIGTERM: the run writes a checkpoint where it stands and exits; SIGKILL: it dies at once, and resuming
#: replays the steps made since its last regular checkpoint
SIGNALS = pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])


@pytest.mark.e2e
@SIGNALS
def test_killed_pretraining_resumes_to_the_same_weights(backbone, straight_run, tmp_path, sig):
    from common.config import to_dict
    from tests.test_backbone_pretrain import config

    tokens = backbone[0].parent / "tokens.h5"

    def command(out, resume=False):
        path = out.with_name(f"{out.name}.yaml")
        path.write_text(yaml.safe_dump(to_dict(config(tokens, out, 150, eval_every=5, batch_size=16))))
        return [sys.executable, "-m", "backbone.pretrain", "--config", str(path), "--quiet"] + ["--resume"] * resume

    straight = straight_run("pretraining", command)
    stop_resume_and_compare(command, straight, tmp_path / "stopped", sig)
    a, b = histories(straight, tmp_path / "stopped")
    assert a == b  # the same losses at every evaluation


@pytest.mark.e2e
@SIGNALS
def test_killed_tokenizer_training_resumes_to_the_same_weights(data_files, straight_run, tmp_path, sig):
    epochs = 6

    def command(out, resume=False):
        return [sys.executable, "-m", "tokenizer.train", "--config", "configs/tokenizer/event.yaml", "--quiet",
                *[f"--{o}" for o in SMALL], f"--train.epochs={epochs}", f"--data.files=[{data_files[1]}]",
                f"--out={out}"] + ["--resume"] * resume

    straight, stopped = straight_run("tokenizer", command), tmp_path / "stopped"
    # a checkpoint is written at each epoch end (and where SIGTERM stops the run)
    ready = after_the_second_checkpoint(stopped / "checkpoint") if sig == signal.SIGKILL else None
    resumed_from = stop_resume_and_compare(command, straight, stopped, sig, ready)
    if sig == signal.SIGKILL:  # from an epoch end, with whole epochs left to replay
        assert resumed_from["batch_in_epoch"] == 0 and 2 <= resumed_from["epoch"] < epochs, resumed_from
    a, b = ([{k: v for k, v in e.items() if k != "objects_per_s"} for e in h] for h in histories(straight, stopped))
    assert a == b  # the same losses at every epoch end


@pytest.mark.e2e
@SIGNALS
def test_killed_fine_tuning_resumes_to_the_same_classifier(backbone, data_files, straight_run, tmp_path, sig):
    bb, tok = backbone
    epochs = 4

    def command(out, resume=False):
        return [sys.executable, "-m", "finetune.classify", "--backbone", str(bb), "--tokenizer", str(tok),
                "--train", *data_files, "--label", "process", "--mode", "full", "--out", str(out),
                "--quiet", f"--train.epochs={epochs}", "--train.batch_size=32", "--train.patience=10",
                "--train.device=cpu"] + ["--resume"] * resume

    straight, stopped = straight_run("fine_tuning", command), tmp_path / "stopped"
    # ~70 steps an epoch: a checkpoint at each validation, which is each epoch end (and where SIGTERM stops)
    ready = after_the_second_checkpoint(stopped / "checkpoint") if sig == signal.SIGKILL else None
    resumed_from = stop_resume_and_compare(command, straight, stopped, sig, ready)
    a, b = (json.loads((f / "metrics.json").read_text()) for f in (straight, stopped))
    if sig == signal.SIGKILL:  # from an epoch end, with whole epochs left to replay
        assert len(a["history"]) == epochs, a["history"]  # one validation, so one checkpoint, per epoch
        assert resumed_from["batch_in_epoch"] == 0 and 2 <= resumed_from["epoch"] < epochs, resumed_from
    assert a["history"] == b["history"] and a["auc"] == b["auc"]


def test_a_tokenizer_with_the_same_codes_but_other_weights_is_refused(backbone, tmp_path):
    from tests.test_sample import sample
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    other = Tokenizer.from_pretrained(tok)
    with torch.no_grad():
        next(other.model.parameters()).add_(0.01)
    other.save_pretrained(tmp_path / "other")
    proc = sample(bb, tmp_path / "other", tmp_path / "x.h5", "--events", "5")
    assert proc.returncode == 2 and "the same number of codes, other weights or features" in proc.stderr
    assert not (tmp_path / "x.h5").exists()


def test_corrupt_model_weights_are_detected(backbone, tmp_path):
    import shutil

    from backbone.model import GPT
    from common.errors import ModelFileError

    shutil.copytree(backbone[0], tmp_path / "bb")
    weights = tmp_path / "bb" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the middle of the weights: still a valid safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match the checksum"):
        GPT.from_pretrained(tmp_path / "bb")


class Payload:
    """Unpickling this runs code: what a malicious 'checkpoint' would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_a_planted_pickle_is_refused_and_never_runs(backbone, tmp_path):
    import pickle
    import shutil

    from backbone.model import GPT
    from backbone.config import PretrainConfig
    from backbone.pretrain import run
    from common.config import from_dict
    from common.errors import ModelFileError

    marker = tmp_path / "pwned"
    evil = pickle.dumps({"wte.weight": Payload(marker)})
    # as backbone weights (with and without the config's checksum, which would catch it first)
    shutil.copytree(backbone[0], tmp_path / "bb")
    (tmp_path / "bb" / "model.safetensors").write_bytes(evil)
    config = json.loads((tmp_path / "bb" / "config.json").read_text())
    for checksum in (True, False):
        if not checksum:
            config.pop("weights_sha256")
            (tmp_path / "bb" / "config.json").write_text(json.dumps(config))
        with pytest.raises(ModelFileError):
            GPT.from_pretrained(tmp_path / "bb")
    # as a training checkpoint to resume from
    cfg = from_dict(PretrainConfig, {"model": {"n_layer": 2, "n_head": 2, "n_embd": 32},
                                     "data": {"train": str(backbone[0].parent / "tokens.h5"), "conditional": True},
                                     "train": {"max_steps": 2, "eval_every": 1, "device": "cpu"},
                                     "out": str(tmp_path / "run")})
    run(cfg, progress=False)
    for name in ("checkpoint", "checkpoint.prev"):
        (tmp_path / "run" / name / "model.safetensors").write_bytes(evil)
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        run(cfg, resume=True, progress=False)
    assert not marker.exists()


def test_no_code_path_can_unpickle():
    """safetensors, JSON and YAML only: no pickle, no torch.load without weights_only, no yaml.load."""
    import re

    sources = [p for d in ("backbone", "tokenizer", "finetune", "events", "common") for p in (REPO / d).rglob("*.py")]
    sources += [REPO / "sample.py", REPO / "demo.py"]
    bad = re.compile(r"import pickle|pickle\.loads?\(|torch\.load\((?![^)]*weights_only=True)|yaml\.load\(|allow_pickle=True"
                     r"|yaml\.unsafe_load|\bdill\b|joblib")
    hits = [f"{p.relative_to(REPO)}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1)
            if bad.search(line)]
    assert not hits, hits


def test_run_folders_record_config_seed_versions_and_commit(backbone):
    info = json.loads((backbone[0] / "run_info.json").read_text())["runs"][-1]
    assert info["seed"] == 0 and info["config"]["model"]["n_layer"] == 2
    assert torch.__version__.startswith(info["packages"]["torch"].split("+")[0])
    assert info["git"] is None or len(info["git"]["commit"]) == 40
    assert {"time", "command", "python", "device"} <= set(info)


@pytest.mark.parametrize("kind", ["no events (hdf5)", "no events (nanoaod)", "zero bytes"])
def test_empty_inputs_are_clear_errors_and_write_nothing(backbone, ttbar, tmp_path, kind):
    from events.io import write_events
    from tests.test_finetune import score

    bb, tok = backbone
    path = tmp_path / ("empty.root" if "nanoaod" in kind else "empty.h5")
    if kind == "zero bytes":
        path.touch()
    else:
        write_events(ttbar[:0], path, "nanoaod" if "nanoaod" in kind else "auto")
    message = "the file is empty (0 bytes)" if kind == "zero bytes" else "holds no events"
    proc = score(bb, tok, path, tmp_path / "s.h5", "--method", "nll")
    assert proc.returncode == 2 and message in proc.stderr and not (tmp_path / "s.h5").exists()
    proc = subprocess.run([sys.executable, "-m", "tokenizer.tokenize", "--tokenizer", str(tok), "--input", str(path),
                           "--out", str(tmp_path / "t.h5")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and not (tmp_path / "t.h5").exists()


def test_a_token_store_with_ids_outside_its_vocabulary_is_refused(tmp_path):
    import awkward as ak
    import numpy as np

    from backbone.data import TokenSequences
    from events.errors import EventDataError
    from tokenizer.store import TokenWriter
    from tokenizer.tokenizer import TokenBatch

    with TokenWriter(tmp_path / "t.h5", 32, "none") as writer:
        writer.write(TokenBatch(ak.Array([[1, 2], [3, 40]]), {"event": np.arange(2)}))
    with pytest.raises(EventDataError, match=r"t.h5: token ids outside \[0, 32\)"):
        TokenSequences.from_store(tmp_path / "t.h5")


@pytest.mark.parametrize("fmt", ["h5", "root"])
def test_fuzzed_damage_to_event_files_is_an_error_naming_the_file(ttbar, tmp_path_factory, fmt):
    """Random truncations and flipped bytes: the reader either reads the file or raises EventDataError
    naming it; never another exception, never silently fewer events (nor, in HDF5, whose chunks carry
    checksums, other values)."""
    import awkward as ak
    from hypothesis import given, settings, strategies as st

    from events.errors import EventDataError
    from events.io import read_events, write_events

    folder = tmp_path_factory.mktemp("damage")
    good = folder / f"good.{fmt}"
    write_events(ttbar[:50], good, "nanoaod" if fmt == "root" else "auto")
    data = good.read_bytes()
    original = read_events(good)

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(st.integers(0, len(data) - 1), st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)),
                                                  max_size=4))
    def check(cut, flips):
        damaged = bytearray(data[:cut] if not flips else data)
        for pos, mask in flips:
            if pos < len(damaged):
                damaged[pos] ^= mask
        bad = folder / f"bad.{fmt}"
        bad.write_bytes(bytes(damaged))
        try:
            events = read_events(bad)
        except EventDataError as err:
            assert "bad." in str(err)
        else:
            assert len(events) == 50  # what reads is the whole file
            if fmt == "h5":
                assert ak.to_list(events.objects) == ak.to_list(original.objects)

    check()
