"""The learning-rate schedule of every training loop: linear warm-up, then a cosine down to a floor."""
from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.0, warmup_cap: int | None = None,
                  peak: float = 1.0) -> float:
    """The learning rate at `step` (from 0): a linear rise to `peak` over `warmup` steps (at most
    `warmup_cap` of them, so that a short run does not spend itself warming up), then a cosine from
    `peak` down to `floor * peak` at step `total`, and flat after it."""
    if warmup_cap is not None:
        warmup = min(warmup, warmup_cap)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
