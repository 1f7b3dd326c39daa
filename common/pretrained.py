"""Model folders in the `save_pretrained` layout: config.json + model.safetensors."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from common.errors import ModelFileError, UserError


def check_save_folder(folder: str | Path, format_name: str) -> None:
    """Refuse to save a `format_name` model into a folder whose config.json is of something else (a
    classifier saved into its backbone's folder replaced the backbone); the same kind is re-saved."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return
    try:
        found = json.loads(config.read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        found = None
    if found != format_name:
        held = f"a {found.replace('.', ' ')} model" if isinstance(found, str) else "a config.json of no model"
        raise UserError(f"{folder}: holds {held}; saving a {format_name.replace('.', ' ')} here would replace it; "
                        "choose another folder")


def write_weights(folder: str | Path, model: torch.nn.Module) -> str:
    """Write `folder`/model.safetensors atomically; its SHA-256, for the config (checked at load)."""
    from safetensors.torch import save_model

    from common.atomic import atomic_path
    from common.checkpoint import sha256

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.safetensors") as tmp:
        save_model(model, str(tmp))
        return sha256(tmp)


def write_config(folder: str | Path, config: dict) -> None:
    from common.atomic import atomic_path

    with atomic_path(Path(folder) / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2))


def read_config(path: str | Path, format_name: str, kind: str) -> dict:
    """The config of folder `path`, checked to be a `format_name` folder; clear errors otherwise."""
    path = Path(path)
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: not a {kind} folder (missing {name})")
    config = json.loads((path / "config.json").read_text())
    if config.get("format") != format_name:
        raise ModelFileError(f"{path / 'config.json'}: not a {format_name.replace('.', ' ')} config")
    return config


def load_weights(model: torch.nn.Module, path: str | Path, device, config: dict) -> torch.nn.Module:
    """Load folder `path`'s weights into `model`, checked against the checksum in its `config` (as
    `read_config` returned it), or say that they do not match."""
    from safetensors.torch import load_model

    weights = Path(path) / "model.safetensors"
    expected = config.get("weights_sha256")
    if expected is not None:
        from common.checkpoint import sha256

        if sha256(weights) != expected:
            raise ModelFileError(f"{weights}: does not match the checksum in its config.json (corrupt or replaced)")
    try:
        load_model(model, str(weights), device=str(device))
    except Exception as err:  # names or shapes that do not match the config
        raise ModelFileError(f"{weights}: weights do not match {Path(path) / 'config.json'} ({err})") from None
    return model.to(device)


def identity(path: str | Path) -> str:
    """What tells one saved model from another: a digest of its config.json, which records its weights'
    checksum (a retrained model in the same folder is another model)."""
    import hashlib

    config = Path(path) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{path}: not a model folder (missing config.json)")
    return hashlib.sha256(config.read_bytes()).hexdigest()[:32]
