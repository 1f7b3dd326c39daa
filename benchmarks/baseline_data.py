"""What the baselines share with each other and with `finetune.data_efficiency`: the first events of
each file, and the same stratified training subsamples and class weights."""
from __future__ import annotations

import numpy as np


def capped_events(files: list[str], max_events: int):
    """The first `max_events` events of each file (0: all), concatenated in order."""
    from events.io import iter_events
    from events.model import Events

    out = []
    for path in files:
        left = max_events or float("inf")
        for chunk in iter_events(path):
            out.append(chunk[:left] if len(chunk) > left else chunk)
            left -= len(out[-1])
            if left <= 0:
                break
    return Events.concatenate(out)


def training_split(y: np.ndarray, n: int, seed: int, val_fraction: float = 0.15):
    """(train indices: `n` stratified, validation indices for early stopping, per-event class weights
    of the training events: inverse frequency, as the token model's)."""
    from finetune.classify import subsample

    is_val = np.random.default_rng([seed, 5]).random(len(y)) < val_fraction
    train = subsample(y, np.flatnonzero(~is_val), n, seed)
    val = subsample(y, np.flatnonzero(is_val), max(n // 5, 50), seed + 1)
    counts = np.bincount(y[train], minlength=int(y.max()) + 1)
    weight = len(train) / (np.count_nonzero(counts) * np.maximum(counts, 1))
    return train, val, weight[y[train]]
