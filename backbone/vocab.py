"""The backbone's vocabulary: the tokenizer's codes, then special tokens, then process tokens.

    [0, n_codes)                object tokens from the tokenizer
    n_codes + 0..3              PAD, BOS (start of event), EOS (end of event), MASK
    n_codes + 4 + k             process k, for conditional generation (optional, after BOS)
    then one per multiplicity   the event's multiplicities (optional, after the prompt: backbone.multiplicity)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backbone.multiplicity import Multiplicities

SPECIALS = ("PAD", "BOS", "EOS", "MASK")


@dataclass(frozen=True)
class Vocab:
    n_codes: int
    processes: tuple[str, ...] = ()
    multiplicities: Multiplicities | None = None

    @property
    def pad(self) -> int:
        return self.n_codes

    @property
    def bos(self) -> int:
        return self.n_codes + 1

    @property
    def eos(self) -> int:
        return self.n_codes + 2

    @property
    def mask(self) -> int:
        return self.n_codes + 3

    def process_token(self, name: str) -> int:
        try:
            return self.n_codes + len(SPECIALS) + self.processes.index(name)
        except ValueError:
            raise ValueError(f"unknown process {name!r}; this vocabulary knows {list(self.processes)}") from None

    @property
    def first_count(self) -> int:
        """The first multiplicity token (`multiplicities.table` row 0)."""
        return self.n_codes + len(SPECIALS) + len(self.processes)

    @property
    def size(self) -> int:
        return self.first_count + (len(self.multiplicities) if self.multiplicities is not None else 0)

    def is_code(self, token: int) -> bool:
        return 0 <= token < self.n_codes

    def output_groups(self, code_types=None) -> tuple[int, ...]:
        """The first token id of each group of a factorized output (GPTConfig.output_groups): each run of
        codes of one object type (`code_types`, one per code), each special token, the process tokens
        together and the multiplicity tokens together; () where the codes have one type or none is known
        (constituents), as there is no type to predict (measured: a type head there only slowed what fine-tuning gains from pretraining)."""
        if code_types is None or len(set(np.asarray(code_types).tolist())) < 2:
            return ()
        runs = [i for i in range(1, self.n_codes) if code_types[i] != code_types[i - 1]]
        specials = [self.n_codes + k for k in range(len(SPECIALS))]
        return tuple([0, *runs, *specials] + ([self.n_codes + len(SPECIALS)] if self.processes else [])
                     + ([self.first_count] if self.multiplicities is not None else []))

    def to_dict(self) -> dict:
        """As model folders' config.json record it."""
        out = {"n_codes": self.n_codes, "processes": list(self.processes)}
        if self.multiplicities is not None:
            out["multiplicities"] = self.multiplicities.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        counts = d.get("multiplicities")
        return cls(d["n_codes"], tuple(d["processes"]), Multiplicities.from_dict(counts) if counts else None)
