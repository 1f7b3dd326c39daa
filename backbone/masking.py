"""Masked-token inputs and targets (masked particle modeling): a fraction of the object tokens is
replaced by MASK and their identity is the target; everything else is ignored by the loss."""
from __future__ import annotations

import numpy as np
import torch

from backbone.vocab import Vocab


def counter_uniform(*keys) -> np.ndarray:
    """Uniform numbers in [0, 1) that depend only on the integer keys (broadcast together), through
    splitmix64: the same event, masking and position always draw the same number, whatever the batch."""
    h = np.zeros(np.broadcast_shapes(*(np.shape(k) for k in keys)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in keys:
            h = h ^ np.asarray(k).astype(np.uint64)
            h = h + np.uint64(0x9E3779B97F4A7C15)
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def mask_tokens(idx: torch.Tensor, vocab: Vocab, rate: float, generator: torch.Generator | None = None,
                uniform: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for the masked objective: targets hold the original id at masked positions
    and -100 elsewhere; only object codes are ever masked (never BOS/EOS/PAD/process tokens), and
    each sequence with an object gets at least one mask. The draws come from `generator`, or are
    given as `uniform` (B, T)."""
    is_code = idx < vocab.n_codes
    u = uniform.to(idx.device) if uniform is not None else \
        torch.rand(idx.shape, generator=generator, device="cpu").to(idx.device)
    masked = is_code & (u < rate)
    # at least one masked code per sequence that has codes: the code with the smallest draw
    first = torch.where(is_code, u, torch.full_like(u, 2.0)).argmin(dim=1)
    has = is_code.any(dim=1)
    masked[torch.arange(len(idx), device=idx.device)[has], first[has]] = True
    inputs = torch.where(masked, torch.full_like(idx, vocab.mask), idx)
    targets = torch.where(masked, idx, torch.full_like(idx, -100))
    return inputs, targets
