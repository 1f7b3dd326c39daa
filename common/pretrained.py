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


#: the bundled pretrained models, installed with the package: models/<name>/{tokenizer,backbone}/ and a card
MODEL_ROOT = Path(__file__).resolve().parent.parent / "models"
#: what the commands that apply a model use when none is named
DEFAULT_MODEL = "event-small"


def bundled_models() -> list[str]:
    """The names of the bundled models."""
    return sorted(p.name for p in MODEL_ROOT.iterdir() if (p / "backbone").is_dir()) if MODEL_ROOT.is_dir() else []


def model_folder(name: str | Path, kind: str) -> Path:
    """The folder of a `kind` model (backbone, tokenizer) given as a path, or by the name of a bundled
    model (`event-small`): a path that exists, or that names a folder, is taken as it is."""
    path = Path(name)
    if path.exists() or len(path.parts) != 1:
        return path
    bundled = MODEL_ROOT / path.name / kind
    return bundled if bundled.is_dir() else path


def bundled_name(folder: str | Path) -> str | None:
    """The bundled model a folder belongs to, if it is one."""
    folder = Path(folder).resolve()
    return folder.parent.name if folder.parent.parent == MODEL_ROOT.resolve() else None


def paired_tokenizer(backbone: str | Path, tokenizer: str | Path | None) -> Path:
    """The tokenizer folder to use with `backbone`: the one named, or a bundled backbone's own."""
    if tokenizer is not None:
        return model_folder(tokenizer, "tokenizer")
    folder = model_folder(backbone, "backbone")
    if not folder.exists():
        raise UserError(f"{folder}: no such backbone folder, nor the name of a bundled model "
                        f"({', '.join(bundled_models()) or 'none installed'})")
    name = bundled_name(folder)
    if name is None:
        raise UserError(f"give the tokenizer {backbone} was trained with (only a bundled model brings its own)")
    return model_folder(name, "tokenizer")


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
    if not path.exists():
        known = ", ".join(bundled_models()) or "none installed"
        raise FileNotFoundError(f"{path}: no such {kind} folder, nor the name of a bundled model ({known})")
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
