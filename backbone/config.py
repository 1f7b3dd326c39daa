"""Backbone model configuration."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GPTConfig:
    """A GPT over token sequences. Reference size for speed comparisons: 8 layers, width 512, 8 heads,
    sequences of 130 tokens (constituent mode: BOS + up to 128 constituents + EOS)."""

    vocab_size: int
    block_size: int = 130
    n_layer: int = 8
    n_head: int = 8
    n_embd: int = 512
    dropout: float = 0.0
    bias: bool = False
    #: hybrid input: each object's continuous features (n_features of them) embedded and added to its
    #: token embedding; the targets stay token ids. 0: plain token input. Token ids below `n_codes`
    #: are objects; other tokens have no features.
    n_features: int = 0
    n_codes: int = 0
    #: the continuous density head (backbone.density): mixture components, 0 for none; `density_mode`
    #: (event or constituent) fixes its features
    density_components: int = 0
    density_mode: str = ""

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.density_components and self.density_mode not in ("event", "constituent"):
            raise ValueError(f"density_mode must be event or constituent, got {self.density_mode!r}")
