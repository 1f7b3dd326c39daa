"""Head swap: a pretrained backbone without its language-model head, plus a task head.

`Classifier.from_backbone(backbone, n_classes, head, mode)` keeps the backbone's weights (frozen or
trainable) or re-initializes the same architecture (`scratch`, the comparison). A classifier folder
(config.json + model.safetensors, backbone and head together) reloads with `Classifier.from_pretrained`;
like the backbone, the classifier carries `vocab`, `conditional` and `tokenizer_fingerprint`.
"""
from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from backbone.config import GPTConfig
from backbone.model import GPT
from common.config import from_dict, to_dict
from finetune.config import HeadSection

FORMAT = "colliderfm.classifier"


class AttentionPooling(nn.Module):
    """One learned query attending over the sequence (padding excluded): a weighted sum of states."""

    def __init__(self, width: int):
        super().__init__()
        self.score = nn.Linear(width, 1)

    def forward(self, states: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        scores = self.score(states).squeeze(-1).masked_fill(~keep, float("-inf"))
        return (torch.softmax(scores.float(), dim=1).to(states.dtype)[..., None] * states).sum(1)


class Classifier(nn.Module):
    """backbone states -> pooling -> MLP -> class logits."""

    def __init__(self, backbone: GPT, n_classes: int, head: HeadSection):
        super().__init__()
        self.backbone, self.head_config = backbone, head
        width = backbone.config.n_embd
        self.pool = AttentionPooling(width) if head.pooling == "attention" else None
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, head.hidden), nn.GELU(),
                                  nn.Dropout(head.dropout), nn.Linear(head.hidden, n_classes))
        self.frozen = False
        self.classes: tuple[str, ...] = ()  # names, where the folder records them
        self.source: Path | None = None
        self.pretrained_config: dict = {}

    @property
    def vocab(self):
        return self.backbone.vocab

    @property
    def conditional(self) -> bool:
        return self.backbone.conditional

    @property
    def tokenizer_fingerprint(self) -> str | None:
        return self.backbone.tokenizer_fingerprint

    @classmethod
    def from_backbone(cls, backbone: GPT | str | Path, n_classes: int, head: HeadSection, mode: str,
                      device: str | torch.device = "cpu", seed: int = 0) -> "Classifier":
        """The head swap: `backbone` (a folder, or a model, which is copied, not changed), pretrained or
        re-initialized for `scratch`, and a new head initialized from `seed`."""
        if isinstance(backbone, GPT):
            backbone = copy.deepcopy(backbone).to(device)
        else:
            backbone = GPT.from_pretrained(backbone, device)
        torch.manual_seed(seed)
        if mode == "scratch":
            backbone = backbone.reinitialized()
        with torch.device(device):  # the head made on the backbone's device
            model = cls(backbone, n_classes, head)
        model.frozen = mode == "frozen"
        model.backbone.requires_grad_(not model.frozen)
        model.source = backbone.source
        return model

    def train(self, mode: bool = True) -> "Classifier":
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # a frozen backbone stays deterministic (no dropout)
        return self

    def states(self, idx: torch.Tensor, features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(backbone states (B, T, C), keep mask (B, T): True at real tokens)."""
        pad = idx == self.vocab.pad
        causal = self.head_config.causal
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            h = self.backbone.hidden_states(idx, causal=causal, pad_mask=None if causal else pad, features=features)
        return h, ~pad

    def forward(self, idx: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits (B, n_classes) of right-padded sequences `idx` (B, T), with the objects'
        `features` (B, T, F) for a hybrid backbone."""
        h, keep = self.states(idx, features)
        pooling = self.head_config.pooling
        if pooling == "attention":
            pooled = self.pool(h, keep)
        elif pooling == "mean":
            pooled = (h * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)
        else:  # the end token's state: it has seen the whole event even with causal attention
            pooled = h[torch.arange(len(h), device=h.device), keep.sum(1) - 1]
        return self.head(pooled)

    def save_pretrained(self, folder: str | Path, **extra) -> None:
        """Write config.json + model.safetensors into `folder`, with `classes` and `extra` entries (provenance)."""
        from common.pretrained import check_save_folder, write_config, write_weights

        check_save_folder(folder, FORMAT)
        write_config(folder, {
            "format": FORMAT, "gpt": asdict(self.backbone.config), "weights_sha256": write_weights(folder, self),
            "vocab": self.vocab.to_dict(), "conditional": self.conditional,
            "tokenizer_fingerprint": self.tokenizer_fingerprint, "head": to_dict(self.head_config),
            "n_classes": self.head[-1].out_features, **({"classes": list(self.classes)} if self.classes else {}),
            **extra})
        self.source = Path(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu") -> "Classifier":
        """The classifier of a folder written by `save_pretrained`, in eval mode."""
        from common.pretrained import load_weights, read_config

        config = read_config(folder, FORMAT, "classifier")
        backbone = GPT(GPTConfig(**config["gpt"]))
        backbone.describe(config)
        model = cls(backbone, config["n_classes"], from_dict(HeadSection, config["head"], "head"))
        model = load_weights(model, folder, device, config).eval()
        model.classes = tuple(config.get("classes", ()))
        model.source = backbone.source = Path(folder)
        model.pretrained_config = config
        return model
