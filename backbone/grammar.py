"""Sampling constraints from the data model: object groups come in canonical order (jets, leptons,
photons, constituents, MET), no group exceeds its multiplicity cap, in event mode MET comes exactly
once, last, right before EOS, and every sequence ends within its length budget (MET, then EOS, are
forced when only room for them is left). Within a group objects come in descending pt, as in the
data the backbone learnt from: `upper_log_pt` bounds each object's drawn log pt by the one before it
in its group (a density head leaks some mass above it: an event drawn out of order is a prefix the
backbone never saw, and what it draws after one drifts from its process)."""
from __future__ import annotations

import torch

from backbone.vocab import Vocab
from events.model import GROUP_INDEX_OF_TYPE, GROUPS, Caps, ObjectType

_MET = GROUP_INDEX_OF_TYPE[ObjectType.MET]


class Grammar:
    """Per-sequence state of where in the canonical order a sequence is; `mask(logits)` forbids the rest.

    `max_new` is the number of tokens the sampler may still add (the length budget), `caps` the
    multiplicity caps (default `Caps()`).
    """

    def __init__(self, vocab: Vocab, tokenizer, batch: int, device, max_new: int | None = None,
                 caps: Caps | None = None):
        self.vocab = vocab
        rank = torch.full((vocab.size,), -1, dtype=torch.long, device="cpu")  # filled on the host, moved once
        for t in tokenizer.model.types:
            lo, n = tokenizer.model.offsets[t], tokenizer.model.codes_per_type[t]
            rank[lo:lo + n] = GROUP_INDEX_OF_TYPE[ObjectType(t)]
        self.rank = rank.to(device)
        caps = caps or Caps()
        self.cap = torch.tensor([getattr(caps, name) if name != "met" else 1 for name, _ in GROUPS], device=device)
        self.needs_met = int(ObjectType.MET) in tokenizer.model.types
        self.current = torch.zeros(batch, dtype=torch.long, device=device)  # rank of the last object
        self.counts = torch.zeros(batch, len(GROUPS), dtype=torch.long, device=device)
        self.max_new, self.steps = max_new, 0
        # the density coordinate (normalized log pt) of each sequence's last object
        self.last_log_pt = torch.full((batch,), float("inf"), device=device)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, vocab) logits with forbidden tokens at -inf."""
        is_code = self.rank >= 0
        rank = self.rank.clamp(min=0)
        seen_met = self.counts[:, _MET] > 0
        allowed = is_code[None, :] & (self.rank[None, :] >= self.current[:, None]) & ~seen_met[:, None]
        allowed &= (self.counts < self.cap)[:, rank]  # groups at their cap take no more
        eos_ok = seen_met if self.needs_met else torch.ones_like(seen_met)
        if self.max_new is not None:
            left = self.max_new - self.steps  # positions left, this one included
            if left <= 1:
                allowed[:] = False
            elif left == 2 and self.needs_met:
                allowed &= (self.rank == _MET)[None, :]
        allowed[:, self.vocab.eos] = eos_ok
        return logits.masked_fill(~allowed, float("-inf"))

    def upper_log_pt(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B,) the bound on the log pt (density coordinates) of the objects `tokens` just drawn: the
        last object's where it is of the same group, else inf."""
        rank = self.rank[tokens]
        seen = self.counts.gather(1, rank.clamp(min=0)[:, None])[:, 0] > 0
        same_group = (rank >= 0) & (rank == self.current) & seen
        return torch.where(same_group, self.last_log_pt, torch.full_like(self.last_log_pt, float("inf")))

    def update(self, tokens: torch.Tensor, log_pt: torch.Tensor | None = None) -> None:
        """After drawing `tokens` (B,), with their objects' drawn `log_pt` (B,) where features are drawn."""
        rank = self.rank[tokens]
        is_code = rank >= 0
        if log_pt is not None:
            self.last_log_pt = torch.where(is_code, log_pt.to(self.last_log_pt.dtype), self.last_log_pt)
        self.current = torch.where(is_code, torch.maximum(self.current, rank), self.current)
        self.counts[torch.arange(len(tokens), device=tokens.device)[is_code], rank[is_code]] += 1
        self.steps += 1
