"""Sampling constraints from the data model: object groups come in canonical order (jets, leptons,
photons, constituents, MET), no group exceeds its multiplicity cap, in event mode MET comes exactly
once, last, right before EOS, and every sequence ends within its length budget (MET, then EOS, are
forced when only room for them is left). Within a group objects come in descending pt, as in the
data the backbone learnt from: `upper_log_pt` bounds each object's drawn log pt by the one before it
in its group (a density head leaks some mass above it: an event drawn out of order is a prefix the
backbone never saw, and what it draws after one drifts from its process). With a multiplicity token
(backbone.multiplicity) the first token drawn is one, and then exactly the objects it announces are
drawn: each counted kind until its count is reached, and nothing uncounted (photons, MET) or EOS before
every count is."""
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
        self.announced = vocab.multiplicities
        if self.announced is not None:
            self.kind = torch.full((vocab.size,), -1, dtype=torch.long)
            self.kind[:vocab.n_codes] = torch.from_numpy(self.announced.kind_of_code)
            self.kind = self.kind.to(device)
            self.table = torch.from_numpy(self.announced.table).to(device)
            group = torch.tensor(self.announced.groups)
            # (kinds, kinds) 1 where kind j's group comes before kind k's: j must be done before k starts
            self.before = (group[:, None] < group[None, :]).long().to(device)
            self.is_count = torch.arange(vocab.size, device=device) >= vocab.first_count
            self.count_ok = self.is_count.clone()
            self.count_ok[vocab.first_count:] = torch.from_numpy(self.announced.within(caps)).to(device)
            self.left = torch.full((batch, len(self.announced.kinds)), -1, dtype=torch.long, device=device)

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
        if self.announced is not None:
            allowed = self._announced(allowed)
        return logits.masked_fill(~allowed, float("-inf"))

    def _announced(self, allowed: torch.Tensor) -> torch.Tensor:
        """`allowed` (B, vocab) narrowed to what the multiplicity token allows: before it, only it; after it,
        a counted kind while its count is not reached and every earlier group's is, the rest (uncounted
        objects, EOS) once every count is."""
        left = self.left.clamp(min=0)
        announced = (self.left >= 0).all(1, keepdim=True)
        open_kind = (left > 0) & (left @ self.before == 0)  # (B, kinds)
        done = (left.sum(1, keepdim=True) == 0)
        kind = self.kind.clamp(min=0)
        allowed = allowed & torch.where(self.kind >= 0, open_kind[:, kind], done)
        return torch.where(announced, allowed & ~self.is_count, self.count_ok.expand_as(allowed))

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
        if self.announced is not None:
            rows = torch.arange(len(tokens), device=tokens.device)
            is_count = self.is_count[tokens]
            announced = self.table[(tokens - self.vocab.first_count).clamp(0, len(self.table) - 1)]
            self.left = torch.where(is_count[:, None], announced, self.left)
            kind = self.kind[tokens]
            self.left[rows[kind >= 0], kind[kind >= 0]] -= 1
        if log_pt is not None:
            self.last_log_pt = torch.where(is_code, log_pt.to(self.last_log_pt.dtype), self.last_log_pt)
        self.current = torch.where(is_code, torch.maximum(self.current, rank), self.current)
        self.counts[torch.arange(len(tokens), device=tokens.device)[is_code], rank[is_code]] += 1
        self.steps += 1
