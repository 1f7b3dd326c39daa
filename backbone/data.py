"""Token sequences for the backbone, read from a token store (`python -m tokenizer.tokenize`).

An event (or jet) is the sequence  BOS [process] code_1 ... code_n EOS,  the codes in the data model's
canonical object order (jets and b-jets by descending pt, then leptons, photons, constituents, MET).
The optional process token (conditional generation) is set by `conditional=True`.
"""
from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import torch

from backbone.vocab import Vocab
from events.errors import EventDataError


class TokenSequences:
    """All sequences of a token store in memory: one flat int32 array plus offsets (compact)."""

    def __init__(self, path: str | Path, conditional: bool = False, vocab: Vocab | None = None):
        import h5py

        from tokenizer.store import iter_tokens

        if not Path(path).is_file():
            raise EventDataError(f"{path}: no such file (make one with python -m tokenizer.tokenize)")
        chunks = list(iter_tokens(path))  # checks that this is a token store
        with h5py.File(path, "r") as f:
            n_codes = int(f.attrs["vocab_size"])
        if not chunks:
            raise EventDataError(f"{path}: no events")
        names = chunks[0].process_names
        self.vocab = vocab or Vocab(n_codes, tuple(names) if conditional else ())
        if self.vocab.n_codes != n_codes:
            raise EventDataError(f"{path}: tokens from a tokenizer of {n_codes} codes, but the backbone's "
                                 f"vocabulary has {self.vocab.n_codes}: pair it with its own tokenizer")
        self.conditional = conditional
        ids = np.concatenate([ak.to_numpy(ak.flatten(c.ids)) for c in chunks]).astype(np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= n_codes):
            raise EventDataError(f"{path}: token ids outside [0, {n_codes})")
        self.codes = ids
        counts = np.concatenate([ak.to_numpy(ak.num(c.ids)) for c in chunks])
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        process = np.concatenate([c.info["process"] for c in chunks])
        self.process_tokens = None
        if conditional:
            self.process_tokens = np.array([self.vocab.process_token(names[p]) if p >= 0 else self.vocab.pad
                                            for p in process])
        self.lengths = counts + 2 + int(conditional)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def max_length(self) -> int:
        return int(self.lengths.max())

    def sequence(self, i: int) -> np.ndarray:
        head = [self.vocab.bos] + ([int(self.process_tokens[i])] if self.conditional else [])
        return np.concatenate([head, self.codes[self.offsets[i]:self.offsets[i + 1]], [self.vocab.eos]])

    def batch(self, indices: np.ndarray) -> torch.Tensor:
        """(B, T) sequences padded on the right with PAD."""
        out = np.full((len(indices), int(self.lengths[indices].max())), self.vocab.pad, dtype=np.int64)
        for row, i in enumerate(indices):
            seq = self.sequence(int(i))
            out[row, :len(seq)] = seq
        return torch.from_numpy(out)

    def batches(self, rng: np.random.Generator, batch_size: int, indices: np.ndarray | None = None,
                bucket: int = 50):
        """One shuffled epoch over `indices` (default: all); within buckets of `bucket` batches,
        sequences of similar length go together (less padding)."""
        indices = np.arange(len(self)) if indices is None else np.asarray(indices)
        order = indices[rng.permutation(len(indices))]
        for start in range(0, len(order), batch_size * bucket):
            chunk = order[start:start + batch_size * bucket]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            groups = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
            for g in rng.permutation(len(groups)):
                yield self.batch(groups[g])
