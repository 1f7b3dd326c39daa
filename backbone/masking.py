"""Masked-token inputs and targets (masked particle modeling): a fraction of the object tokens is
replaced by MASK and their identity is the target; everything else is ignored by the loss."""
from __future__ import annotations

import torch

from backbone.vocab import Vocab


def mask_tokens(idx: torch.Tensor, vocab: Vocab, rate: float, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for the masked objective: targets hold the original id at masked positions
    and -100 elsewhere; only object codes are ever masked (never BOS/EOS/PAD/process tokens), and
    each sequence with an object gets at least one mask."""
    is_code = idx < vocab.n_codes
    u = torch.rand(idx.shape, generator=generator, device="cpu").to(idx.device)
    masked = is_code & (u < rate)
    # at least one masked code per sequence that has codes: the code with the smallest draw
    first = torch.where(is_code, u, torch.full_like(u, 2.0)).argmin(dim=1)
    has = is_code.any(dim=1)
    masked[torch.arange(len(idx), device=idx.device)[has], first[has]] = True
    inputs = torch.where(masked, torch.full_like(idx, vocab.mask), idx)
    targets = torch.where(masked, idx, torch.full_like(idx, -100))
    return inputs, targets
