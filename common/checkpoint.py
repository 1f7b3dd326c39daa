"""Training checkpoints without pickle: model and optimizer tensors in safetensors, the rest in JSON.

Everything needed for an exact resume is saved: weights and buffers, optimizer moments, the state of
every random generator the run draws from (torch's on the CPU and, where CUDA is available, on each
device: vector-quantize-pytorch replaces dead codes with draws on the model's device; numpy and
Python's `random` draw nothing, every numpy draw has its own seeded Generator), and the loop's own
state (epoch, best score, history).

A checkpoint is a folder of model.safetensors, optimizer.safetensors, state.json and manifest.json
(the SHA-256 of the other three). A new one is written into a temporary sibling folder and renamed
into place, and the one it replaces is kept as `<folder>.prev`: a crash at any moment leaves at least
one complete checkpoint. Loading verifies the checksums and falls back to the previous checkpoint,
saying so, when the latest is incomplete or corrupt.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch

from common.errors import CheckpointError

FILES = ("model.safetensors", "optimizer.safetensors", "state.json")
log = logging.getLogger(__name__)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def previous(folder: str | Path) -> Path:
    folder = Path(folder)
    return folder.with_name(folder.name + ".prev")


def checkpoint_exists(folder: str | Path) -> bool:
    """Whether `folder` or its previous checkpoint is there to resume from."""
    return any((f / "manifest.json").is_file() or (f / "state.json").is_file() for f in (Path(folder), previous(folder)))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, meta = {}, {"param_groups": state["param_groups"], "state": {}}
    for index, entry in state["state"].items():
        meta["state"][str(index)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.contiguous()
            else:
                meta["state"][str(index)][key] = value
    return tensors, meta


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    loop_state: dict, extra_tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Write the checkpoint folder `folder` atomically, keeping the one it replaces as `folder`.prev."""
    from safetensors.torch import save

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    model_tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    model_tensors.update({f"extra.{k}": v.cpu().contiguous() for k, v in (extra_tensors or {}).items()})
    model_tensors.update(_rng_states())
    contents = {"model.safetensors": save(model_tensors),
                "optimizer.safetensors": save({k: v.cpu() for k, v in opt_tensors.items()} or {"empty": torch.zeros(1)}),
                "state.json": json.dumps({"loop": loop_state, "optimizer": opt_meta}, indent=1).encode()}
    for name, data in contents.items():
        _write_synced(tmp / name, data)
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    _write_synced(tmp / "manifest.json", json.dumps({"sha256": manifest}, indent=1).encode())
    prev = previous(folder)
    if folder.exists():
        shutil.rmtree(prev, ignore_errors=True)
        os.replace(folder, prev)
    os.replace(tmp, folder)


def _rng_states() -> dict[str, torch.Tensor]:
    states = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states.update({f"rng.cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    return states


def _set_rng_states(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["rng.torch"])
    if torch.cuda.is_available():  # a checkpoint written without CUDA holds no CUDA state to restore
        for i in range(min(torch.cuda.device_count(), sum(k.startswith("rng.cuda.") for k in states))):
            torch.cuda.set_rng_state(states[f"rng.cuda.{i}"], i)


def verify_checkpoint(folder: str | Path) -> str | None:
    """None if checkpoint `folder` is complete and its files match their checksums; else what is wrong."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        return "missing (or incomplete: no manifest.json)"
    try:
        manifest = json.loads((folder / "manifest.json").read_text())["sha256"]
    except (ValueError, KeyError):
        return "manifest.json is unreadable"
    for name in FILES:
        if not (folder / name).is_file():
            return f"{name} is missing"
        if sha256(folder / name) != manifest.get(name):
            return f"{name} does not match its checksum (corrupt)"
    return None


def load_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
                    ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore model, optimizer and random generators from checkpoint `folder`, or from its previous checkpoint
    if `folder` is incomplete or corrupt; returns (loop state, extra tensors)."""
    problems = []
    for candidate in (Path(folder), previous(folder)):
        problem = verify_checkpoint(candidate)
        if problem is None:
            if problems:
                log.warning("checkpoint %s; resuming from the previous one, %s", problems[0], candidate)
            return _load(candidate, model, optimizer)
        problems.append(f"{candidate}: {problem}")
    raise CheckpointError("no usable checkpoint to resume from: " + "; ".join(problems))


def _load(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    rng = {k: tensors.pop(k) for k in list(tensors) if k.startswith("rng.")}
    extra = {k[len("extra."):]: tensors.pop(k) for k in list(tensors) if k.startswith("extra.")}
    device = next(model.parameters()).device
    try:
        model.load_state_dict({k: v.to(device) for k, v in tensors.items()})
    except RuntimeError as err:
        raise CheckpointError(f"{folder}: the checkpoint does not match this run's model (was the config "
                              f"changed?): {str(err).splitlines()[0]}") from None
    _set_rng_states(rng)
    meta = json.loads((folder / "state.json").read_text())
    opt_tensors = load_file(str(folder / "optimizer.safetensors"))
    state = {int(index): dict(entry) for index, entry in meta["optimizer"]["state"].items()}
    for key, value in opt_tensors.items():
        if key == "empty":
            continue
        index, name = key.split(".", 1)
        state[int(index)][name] = value.to(device) if name != "step" else value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    except ValueError as err:  # other parameter groups, e.g. from a version that decayed every parameter
        raise CheckpointError(f"{folder}: the checkpoint's optimizer does not match this run's: {err}") from None
    return meta["loop"], extra
