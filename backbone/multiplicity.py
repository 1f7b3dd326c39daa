"""The multiplicity token: one token after the prompt that says how many objects of each counted kind
the event holds (jets, b-jets, leptons; or a jet's constituents), before any object is written.

    BOS [process] N code_1 ... code_n EOS

A backbone that reads objects one at a time decides each multiplicity as a chain of "one more?"
choices, each late in the sequence and far from the process token, and a small model learns those
as a spread about the mix's mean (docs/results.md: one-W processes writing a second lepton, single
top's b-jets). With N the event's multiplicities are one categorical choice right after the process,
and the sampler's grammar (backbone.grammar) then writes exactly those objects.

The token enumerates every combination of counts the multiplicity caps allow (kinds of one group
share its cap: jets + b-jets <= 12). Photons are not counted: with them the table would be five times
as large (6,825 tokens beside 8,192 codes) for objects that are rare in these events.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from events.errors import EventDataError
from events.model import GROUP_INDEX_OF_TYPE, GROUP_OF_TYPE, Caps, ObjectType

#: the kinds of object the token counts, each a set of object types counted together
KINDS: tuple[tuple[ObjectType, ...], ...] = (
    (ObjectType.JET,), (ObjectType.BJET,), (ObjectType.ELECTRON, ObjectType.MUON), (ObjectType.CONSTITUENT,))


@dataclass(frozen=True)
class Multiplicities:
    """What a vocabulary's multiplicity tokens count: `kinds` (object types counted together), each
    kind's cap (`caps`, its group's) and which codes are of which type (`type_runs`: (type, first code,
    number of codes), from the tokenizer)."""

    kinds: tuple[tuple[int, ...], ...]
    caps: tuple[int, ...]
    type_runs: tuple[tuple[int, int, int], ...]

    @classmethod
    def of(cls, code_types: np.ndarray, caps: Caps | None = None) -> "Multiplicities":
        """The token for a tokenizer whose codes have object types `code_types` (one per code, in runs)."""
        caps = caps or Caps()
        code_types = np.asarray(code_types, dtype=np.int64)
        present = set(code_types.tolist())
        kinds = tuple(tuple(int(t) for t in kind if int(t) in present) for kind in KINDS)
        kinds = tuple(k for k in kinds if k)
        if not kinds:
            raise EventDataError("data.multiplicity_token counts jets, b-jets, leptons or constituents, and these "
                                 "tokens have none of them")
        starts = np.flatnonzero(np.r_[True, code_types[1:] != code_types[:-1]])
        ends = np.r_[starts[1:], len(code_types)]
        runs = tuple((int(code_types[a]), int(a), int(b - a)) for a, b in zip(starts, ends))
        return cls(kinds, _kind_caps(kinds, caps), runs)

    @property
    def groups(self) -> tuple[int, ...]:
        """Each kind's object group, as its position in the canonical order."""
        return tuple(GROUP_INDEX_OF_TYPE[ObjectType(k[0])] for k in self.kinds)

    @cached_property
    def table(self) -> np.ndarray:
        """(tokens, kinds) the counts each token stands for: every combination within the caps, the
        kinds of one group together within its cap."""
        grid = np.array(list(itertools.product(*(range(cap + 1) for cap in self.caps))), dtype=np.int64)
        return grid[self._fit(grid, self.caps)]

    def within(self, caps: Caps) -> np.ndarray:
        """(tokens,) whether `caps` allow each token's counts (sampling may cap lower than the table goes)."""
        return self._fit(self.table, _kind_caps(self.kinds, caps))

    def _fit(self, counts: np.ndarray, caps: tuple[int, ...]) -> np.ndarray:
        """(rows,) whether each row of `counts` (per kind) keeps every group within its kinds' cap `caps`."""
        groups = np.array(self.groups)
        return (counts @ (groups[:, None] == groups[None, :]) <= np.array(caps)).all(1)

    def __len__(self) -> int:
        return len(self.table)

    @cached_property
    def kind_of_code(self) -> np.ndarray:
        """(codes,) the kind each code counts as, -1 for a code not counted (photons, MET)."""
        out = np.full(sum(n for _, _, n in self.type_runs), -1, dtype=np.int64)
        for kind, types in enumerate(self.kinds):
            for t, first, n in self.type_runs:
                if t in types:
                    out[first:first + n] = kind
        return out

    def tokens_of(self, codes: np.ndarray, offsets: np.ndarray, source: str = "tokens") -> np.ndarray:
        """(events,) the token index (0-based, into `table`) of each event's codes, `codes` flat with
        `offsets` (events + 1); an event beyond the caps is an error that names it."""
        n = len(offsets) - 1
        kind = self.kind_of_code[codes]
        event = np.repeat(np.arange(n), np.diff(offsets))
        counts = np.zeros((n, len(self.kinds)), dtype=np.int64)
        np.add.at(counts, (event[kind >= 0], kind[kind >= 0]), 1)
        index = np.full(n, -1, dtype=np.int64)
        fine = (counts <= np.array(self.caps)).all(1)
        index[fine] = self._lookup[np.ravel_multi_index(counts[fine].T, np.array(self.caps) + 1)]
        bad = np.flatnonzero(index < 0)
        if len(bad):
            i = int(bad[0])
            raise EventDataError(f"{source}: event {i} has {dict(zip(self.names, counts[i].tolist()))} objects, beyond "
                                 f"the multiplicity token's caps {dict(zip(self.names, self.caps))}"
                                 + (f" ({len(bad)} such events)" if len(bad) > 1 else ""))
        return index

    @cached_property
    def _lookup(self) -> np.ndarray:
        """Each count combination's token (-1 beyond the caps), at its index in the grid of counts."""
        radix = np.array(self.caps) + 1
        lookup = np.full(int(np.prod(radix)), -1, dtype=np.int64)
        lookup[np.ravel_multi_index(self.table.T, radix)] = np.arange(len(self.table))
        return lookup

    @property
    def names(self) -> tuple[str, ...]:
        return tuple("+".join(ObjectType(t).name.lower() for t in kind) for kind in self.kinds)

    def to_dict(self) -> dict:
        return {"kinds": [list(k) for k in self.kinds], "caps": list(self.caps),
                "type_runs": [list(r) for r in self.type_runs]}

    @classmethod
    def from_dict(cls, d: dict) -> "Multiplicities":
        return cls(tuple(tuple(k) for k in d["kinds"]), tuple(d["caps"]), tuple(tuple(r) for r in d["type_runs"]))


def _kind_caps(kinds: tuple[tuple[int, ...], ...], caps: Caps) -> tuple[int, ...]:
    """Each kind's cap in `caps`: its group's."""
    return tuple(getattr(caps, GROUP_OF_TYPE[ObjectType(k[0])]) for k in kinds)
