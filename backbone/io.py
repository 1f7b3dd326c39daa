"""Loading a pretrained backbone folder (config.json + model.safetensors)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from backbone.config import GPTConfig
from backbone.model import GPT
from backbone.vocab import Vocab
from events.errors import EventDataError


def load_backbone(path: str | Path, device: str | torch.device = "cpu") -> tuple[GPT, Vocab, dict]:
    """(model, vocabulary, config dict) of a folder written by `backbone.pretrain`."""
    from safetensors.torch import load_model

    path = Path(path)
    config_path, weights = path / "config.json", path / "model.safetensors"
    for p in (config_path, weights):
        if not p.is_file():
            raise FileNotFoundError(f"{path}: not a backbone folder (missing {p.name})")
    config = json.loads(config_path.read_text())
    if config.get("format") != "colliderfm.backbone":
        raise EventDataError(f"{config_path}: not a colliderfm backbone config")
    model = GPT(GPTConfig(**config["gpt"]))
    try:
        load_model(model, str(weights), device=str(device))
    except Exception as err:
        raise EventDataError(f"{weights}: weights do not match {config_path} ({err})") from None
    vocab = Vocab(config["vocab"]["n_codes"], tuple(config["vocab"]["processes"]))
    return model.to(device).eval(), vocab, config


def check_pair(vocab: Vocab, tokenizer, backbone_path, tokenizer_path) -> None:
    """Refuse a backbone and a tokenizer that do not share a codebook."""
    if vocab.n_codes != tokenizer.vocab_size:
        raise EventDataError(f"backbone {backbone_path} was trained on tokens of {vocab.n_codes} codes, tokenizer "
                             f"{tokenizer_path} has {tokenizer.vocab_size}: use the tokenizer it was trained with")
