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

from common.checkpoint import CheckpointError, load_checkpoint, previous, save_checkpoint
from tests.conftest import REPO, SMALL


def tiny_model_and_optimizer(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_a_corrupt_or_missing_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
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
    assert "does not match its checksum" in capsys.readouterr().err
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
    """Run `cmd`, send `sig` as soon as file `ready` exists; the finished process."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = time.time()
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() - start < timeout
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.stderr_text = proc.communicate(timeout=timeout)[1]
    return proc


def check_stopped(proc, sig):
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM, proc.stderr_text[-3000:]
        assert "stopped by SIGTERM" in proc.stderr_text and "--resume" in proc.stderr_text
    else:
        assert proc.returncode == -signal.SIGKILL


def same_weights(a, b):
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_pretraining_resumes_to_the_same_weights(backbone, tmp_path, sig):
    from common.config import to_dict
    from tests.test_backbone_pretrain import config

    tokens = backbone[0].parent / "tokens.h5"

    def command(out, resume=False):
        path = tmp_path / f"{out}.yaml"
        path.write_text(yaml.safe_dump(to_dict(config(tokens, tmp_path / out, 150, eval_every=5, batch_size=16))))
        return [sys.executable, "-m", "backbone.pretrain", "--config", str(path), "--quiet"] + ["--resume"] * resume

    subprocess.run(command("straight"), cwd=REPO, check=True, capture_output=True)
    check_stopped(interrupt(command("stopped"), tmp_path / "stopped" / "checkpoint" / "manifest.json", sig), sig)
    assert not (tmp_path / "stopped" / "model.safetensors").exists()  # nothing that looks finished
    done = subprocess.run(command("stopped", resume=True), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    same_weights(tmp_path / "straight", tmp_path / "stopped")
    a, b = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("straight", "stopped"))
    assert a["history"] == b["history"]  # the same losses at every evaluation


def test_tokenizer_training_stopped_by_sigterm_resumes_to_the_same_weights(data_files, tmp_path):
    def command(out, resume=False):
        return [sys.executable, "-m", "tokenizer.train", "--config", "configs/tokenizer/event.yaml", "--quiet",
                *[f"--{o}" for o in SMALL], "--train.epochs=6", f"--data.files=[{data_files[1]}]",
                f"--out={tmp_path / out}"] + ["--resume"] * resume

    subprocess.run(command("straight"), cwd=REPO, check=True, capture_output=True)
    check_stopped(interrupt(command("stopped"), tmp_path / "stopped" / "checkpoint" / "manifest.json",
                            signal.SIGTERM), signal.SIGTERM)
    done = subprocess.run(command("stopped", resume=True), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    same_weights(tmp_path / "straight", tmp_path / "stopped")


def test_fine_tuning_stopped_by_sigterm_resumes_to_the_same_classifier(backbone, data_files, tmp_path):
    bb, tok = backbone

    def command(out, resume=False):
        return [sys.executable, "-m", "finetune.classify", "--backbone", str(bb), "--tokenizer", str(tok),
                "--train", *data_files, "--label", "process", "--mode", "full", "--out", str(tmp_path / out),
                "--quiet", "--train.epochs=4", "--train.batch_size=32", "--train.patience=10", "--train.device=cpu"] + ["--resume"] * resume

    subprocess.run(command("straight"), cwd=REPO, check=True, capture_output=True)
    check_stopped(interrupt(command("stopped"), tmp_path / "stopped" / "checkpoint" / "manifest.json",
                            signal.SIGTERM), signal.SIGTERM)
    done = subprocess.run(command("stopped", resume=True), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    same_weights(tmp_path / "straight", tmp_path / "stopped")
    a, b = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("straight", "stopped"))
    assert a["history"] == b["history"] and a["auc"] == b["auc"]
