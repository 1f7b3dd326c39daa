"""Training checkpoints without pickle: model and optimizer tensors in safetensors, the rest in JSON.

Everything needed for an exact resume is saved: weights and buffers, optimizer moments, the torch
RNG state, and the loop's own state (epoch, best score, history). Files are written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from common.atomic import atomic_path


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


def save_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    loop_state: dict, extra_tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Write model.safetensors, optimizer.safetensors and state.json into `folder`."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    model_tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    model_tensors.update({f"extra.{k}": v.cpu().contiguous() for k, v in (extra_tensors or {}).items()})
    model_tensors["rng.torch"] = torch.get_rng_state()
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(model_tensors, str(tmp))
    with atomic_path(folder / "optimizer.safetensors") as tmp:
        save_file({k: v.cpu() for k, v in opt_tensors.items()} or {"empty": torch.zeros(1)}, str(tmp))
    with atomic_path(folder / "state.json") as tmp:
        tmp.write_text(json.dumps({"loop": loop_state, "optimizer": opt_meta}, indent=1))


def load_checkpoint(folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
                    ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore model, optimizer and torch RNG from `folder`; returns (loop state, extra tensors)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    tensors = load_file(str(folder / "model.safetensors"))
    torch.set_rng_state(tensors.pop("rng.torch"))
    extra = {k[len("extra."):]: tensors.pop(k) for k in list(tensors) if k.startswith("extra.")}
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in tensors.items()})
    meta = json.loads((folder / "state.json").read_text())
    opt_tensors = load_file(str(folder / "optimizer.safetensors"))
    state = {}
    for index, entry in meta["optimizer"]["state"].items():
        state[int(index)] = dict(entry)
    for key, value in opt_tensors.items():
        if key == "empty":
            continue
        index, name = key.split(".", 1)
        state[int(index)][name] = value.to(device) if name != "step" else value
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    return meta["loop"], extra
