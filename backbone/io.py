"""Loading a pretrained backbone folder (config.json + model.safetensors)."""
from __future__ import annotations

from pathlib import Path

import torch

from backbone.config import GPTConfig
from backbone.model import GPT
from backbone.vocab import Vocab
from common.pretrained import load_weights, read_config
from common.errors import ModelMismatchError


def load_backbone(path: str | Path, device: str | torch.device = "cpu") -> tuple[GPT, Vocab, dict]:
    """(model, vocabulary, config dict) of a folder written by `backbone.pretrain`."""
    config = read_config(path, "colliderfm.backbone", "backbone")
    model = load_weights(GPT(GPTConfig(**config["gpt"])), path, device, config)
    vocab = Vocab(config["vocab"]["n_codes"], tuple(config["vocab"]["processes"]))
    return model.eval(), vocab, config


def check_pair(config: dict, tokenizer, backbone_path, tokenizer_path) -> None:
    """Refuse a backbone (its config dict) and a tokenizer that do not share a codebook: another
    number of codes, or, where both record it, another tokenizer fingerprint (weights and features)."""
    n_codes = config["vocab"]["n_codes"]
    if n_codes != tokenizer.vocab_size:
        raise ModelMismatchError(f"backbone {backbone_path} was trained on tokens of {n_codes} codes, tokenizer "
                             f"{tokenizer_path} has {tokenizer.vocab_size}: use the tokenizer it was trained with")
    expected = config.get("tokenizer_fingerprint")
    if expected and tokenizer.fingerprint and expected != tokenizer.fingerprint:
        raise ModelMismatchError(f"backbone {backbone_path} was trained on tokens of tokenizer {expected[:12]}, but "
                             f"tokenizer {tokenizer_path} is {tokenizer.fingerprint[:12]} (the same number of codes, "
                             "other weights or features): use the tokenizer it was trained with")
