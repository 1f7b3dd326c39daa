"""An exponential moving average of a model's weights: what a run evaluates and saves, while the raw
weights keep training. It averages out the optimizer's noise at the final learning rate, which otherwise
decides where the saved weights land (and, for a generative model, what it samples)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


class WeightAverage:
    """The average of `model`'s trainable parameters with `decay` per `update` (0.998: about the last 500
    steps). It starts at the weights it is made with; early on, while those are young, the decay is
    capped at (1 + step) / (10 + step), so that the random initial weights are forgotten quickly."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"the decay of a weight average must be in (0, 1), got {decay}")
        self.decay = decay
        self.parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.average = {name: p.detach().clone() for name, p in self.parameters.items()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the current weights, after optimizer step `step` (from 0)."""
        weight = 1 - min(self.decay, (1 + step) / (10 + step))
        for name, p in self.parameters.items():
            self.average[name].lerp_(p.detach(), weight)

    @contextlib.contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its raw weights again after it."""
        raw = {name: p.detach().clone() for name, p in self.parameters.items()}
        self.copy_to_model()
        try:
            yield
        finally:
            for name, p in self.parameters.items():
                p.copy_(raw[name])

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for name, p in self.parameters.items():
            p.copy_(self.average[name])

    def load(self, average: dict[str, torch.Tensor]) -> None:
        """Restore a saved average (from `self.average` of a run of the same model)."""
        missing = set(self.average) - set(average)
        if missing:
            raise ValueError(f"the saved weight average lacks {len(missing)} parameters, e.g. {sorted(missing)[0]}")
        with torch.no_grad():
            for name, tensor in self.average.items():
                tensor.copy_(average[name])
