"""Sampling constraints from the data model's canonical order: object groups come in order (jets,
leptons, photons, constituents, MET), and in event mode MET comes exactly once, last, right before EOS.
Within a group the order is free (decoding restores descending pt)."""
from __future__ import annotations

import torch

from backbone.vocab import Vocab
from events.model import GROUP_OF_TYPE, GROUPS, ObjectType

_RANK = {name: i for i, (name, _) in enumerate(GROUPS)}
_MET = _RANK["met"]


class Grammar:
    """Per-sequence state of where in the canonical order a sequence is; `mask(logits)` forbids the rest."""

    def __init__(self, vocab: Vocab, tokenizer, batch: int, device):
        self.vocab = vocab
        rank = torch.full((vocab.size,), -1, dtype=torch.long)
        for t in tokenizer.model.types:
            lo, n = tokenizer.model.offsets[t], tokenizer.model.codes_per_type[t]
            rank[lo:lo + n] = _RANK[GROUP_OF_TYPE[ObjectType(t)]]
        self.rank = rank.to(device)
        self.needs_met = int(ObjectType.MET) in tokenizer.model.types
        self.current = torch.zeros(batch, dtype=torch.long, device=device)  # rank of the last object
        self.seen_met = torch.zeros(batch, dtype=torch.bool, device=device)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, vocab) logits with forbidden tokens at -inf."""
        is_code = self.rank >= 0
        allowed = is_code[None, :] & (self.rank[None, :] >= self.current[:, None]) & ~self.seen_met[:, None]
        eos_ok = self.seen_met if self.needs_met else torch.ones_like(self.seen_met)
        allowed[:, self.vocab.eos] = eos_ok
        return logits.masked_fill(~allowed, float("-inf"))

    def update(self, tokens: torch.Tensor) -> None:
        rank = self.rank[tokens]
        self.current = torch.where(rank >= 0, torch.maximum(self.current, rank), self.current)
        self.seen_met |= rank == _MET
