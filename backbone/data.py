"""Token sequences for the backbone, from a token store (`python -m tokenizer.tokenize`) or from
token batches in memory (`Tokenizer.encode`).

An event (or jet) is the sequence  BOS [process] [N] code_1 ... code_n EOS,  the codes in the data
model's canonical object order (jets and b-jets by descending pt, then leptons, photons, constituents,
MET). The optional process token (conditional generation) is set by `conditional=True`; an event of
unknown process (data, or a process the vocabulary lacks) gets MASK in its place, which pretraining
teaches by process dropout. N, the multiplicity token, is there where the vocabulary has one
(`multiplicity=True`, backbone.multiplicity): it is read off the event's own codes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import awkward as ak
import numpy as np
import torch

from backbone.multiplicity import Multiplicities
from backbone.vocab import Vocab
from events.errors import EventDataError, require_file


class TokenSequences:
    """Sequences in memory: one flat int64 array of codes plus offsets (compact), the events' info
    columns concatenated (`info`, process indices into `process_names`)."""

    def __init__(self, chunks: Sequence, n_codes: int, conditional: bool = False, vocab: Vocab | None = None,
                 source: str = "tokens", mode: str = "", fingerprint: str = "", multiplicity: bool = False,
                 code_types: np.ndarray | None = None):
        if not chunks or not sum(len(c) for c in chunks):
            raise EventDataError(f"{source}: no events")
        # one process table for chunks that may come from files with tables of their own
        self.process_names = tuple(dict.fromkeys(n for c in chunks for n in c.process_names))
        if vocab is None:
            if multiplicity and code_types is None:
                raise EventDataError(f"{source}: the multiplicity token needs each code's object type, which this "
                                     "store does not record: write it again with python -m tokenizer.tokenize")
            announced = Multiplicities.of(code_types) if multiplicity else None
            vocab = Vocab(n_codes, self.process_names if conditional else (), announced)
        self.vocab = vocab
        if self.vocab.n_codes != n_codes:
            raise EventDataError(f"{source}: tokens from a tokenizer of {n_codes} codes, but the backbone's "
                                 f"vocabulary has {self.vocab.n_codes}: pair it with its own tokenizer")
        self.conditional = conditional
        ids = np.concatenate([ak.to_numpy(ak.flatten(c.ids)) for c in chunks]).astype(np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= n_codes):
            raise EventDataError(f"{source}: token ids outside [0, {n_codes})")
        self.codes = ids
        # each object's continuous features, the hybrid backbone's input, when every chunk has them
        self.features = None
        if all(c.features is not None for c in chunks):
            # (objects, n_features) per chunk, also where a chunk holds no object
            self.features = np.concatenate([ak.to_numpy(ak.flatten(c.features, axis=1)) for c in chunks]
                                           ).astype(np.float32)
        counts = np.concatenate([ak.to_numpy(ak.num(c.ids)) for c in chunks])
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        fields = set.intersection(*(set(c.info) for c in chunks))
        self.info = {k: np.concatenate([c.info[k] for c in chunks]) for k in sorted(fields - {"process"})}
        self.info["process"] = np.concatenate([_remap(c, self.process_names) for c in chunks])
        self.process_tokens = None
        if conditional:
            known = {self.process_names.index(n): self.vocab.process_token(n) for n in self.process_names
                     if n in self.vocab.processes}
            self.process_tokens = np.array([known.get(p, self.vocab.mask) for p in self.info["process"]],
                                           dtype=np.int64)
        self.count_tokens = None
        if self.vocab.multiplicities is not None:
            self.count_tokens = self.vocab.first_count + self.vocab.multiplicities.tokens_of(ids, self.offsets, source)
        #: tokens before the first object: BOS, the process, the multiplicity token
        self.prefix = 1 + int(conditional) + int(self.count_tokens is not None)
        self.lengths = counts + 1 + self.prefix
        self.mode = mode  # event or constituent, where known
        self.fingerprint = fingerprint  # of the tokenizer that made the tokens, where a store records it
        #: (each code's object type, the tokenizer's feature normalization), where a store records them
        self.code_info = None

    def longest_possible(self, caps=None) -> int:
        """The longest sequence events of this mode can make under the multiplicity caps (what a
        backbone must hold to read unseen processes, which may have more objects than its training
        data); the longest in the data where the mode is unknown."""
        from events.model import Caps

        caps = caps or Caps()
        objects = {"event": caps.jets + caps.leptons + caps.photons + 1, "constituent": caps.constituents}
        return max(self.max_length, objects.get(self.mode, 0) + 1 + self.prefix)

    @classmethod
    def from_store(cls, path: str | Path, conditional: bool = False, vocab: Vocab | None = None,
                   multiplicity: bool = False) -> "TokenSequences":
        import h5py

        from tokenizer.store import iter_tokens

        require_file(path, " (make one with python -m tokenizer.tokenize)")
        chunks = list(iter_tokens(path))  # checks that this is a token store
        with h5py.File(path, "r") as f:
            n_codes, mode = int(f.attrs["vocab_size"]), str(f.attrs.get("mode", ""))
            fingerprint = str(f.attrs.get("tokenizer_fingerprint", ""))
        from tokenizer.store import read_code_info

        code_info = read_code_info(path)
        seqs = cls(chunks, n_codes, conditional, vocab, source=str(path), mode=mode, fingerprint=fingerprint,
                   multiplicity=multiplicity, code_types=None if code_info is None else code_info[0])
        seqs.code_info = code_info
        return seqs

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def max_length(self) -> int:
        return int(self.lengths.max())

    def sequence(self, i: int) -> np.ndarray:
        head = [self.vocab.bos] + ([int(self.process_tokens[i])] if self.conditional else []) \
            + ([int(self.count_tokens[i])] if self.count_tokens is not None else [])
        return np.concatenate([head, self.codes[self.offsets[i]:self.offsets[i + 1]], [self.vocab.eos]])

    def batch(self, indices: np.ndarray, length: int = 0) -> torch.Tensor:
        """(B, T) sequences padded on the right with PAD, to the longest or to `length` if longer."""
        out = np.full((len(indices), max(length, int(self.lengths[indices].max()))), self.vocab.pad, dtype=np.int64)
        for row, i in enumerate(indices):
            seq = self.sequence(int(i))
            out[row, :len(seq)] = seq
        return torch.from_numpy(out)

    def batch_features(self, indices: np.ndarray, length: int = 0) -> torch.Tensor | None:
        """(B, T, n_features) features aligned with `batch(indices, length)`, zero at special tokens;
        None without features."""
        if self.features is None:
            return None
        out = np.zeros((len(indices), max(length, int(self.lengths[indices].max())), self.features.shape[1]),
                       dtype=np.float32)
        first = self.prefix
        for row, i in enumerate(indices):
            a, b = self.offsets[i], self.offsets[i + 1]
            out[row, first:first + b - a] = self.features[a:b]
        return torch.from_numpy(out)

    def object_indices(self, rows: np.ndarray) -> np.ndarray:
        """Positions in the flat per-object arrays (`codes`, `features`) of the objects of events `rows`,
        row by row: the order in which a batch of those rows lists its object tokens (row-major)."""
        return np.concatenate([np.arange(self.offsets[r], self.offsets[r + 1]) for r in rows] + [np.zeros(0, int)])

    def tensors(self, indices: np.ndarray, device="cpu", length: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(token ids, features or None) of events `indices`, on `device`, padded to `length` if longer."""
        return to_device(self.batch(indices, length), self.batch_features(indices, length), device)

    def sorted_batches(self, batch_size: int, indices: np.ndarray | None = None):
        """(rows, padded batch, features or None) over `indices` (default all) in order of length (less
        padding), for inference; `rows` are positions in `indices`, where each row's result belongs."""
        indices = np.arange(len(self)) if indices is None else np.asarray(indices)
        order = np.argsort(self.lengths[indices], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            yield rows, self.batch(indices[rows]), self.batch_features(indices[rows])

    def index_batches(self, rng: np.random.Generator, batch_size: int, indices: np.ndarray | None = None,
                      bucket: int = 50):
        """The event indices of each training batch, shuffled: each run of `bucket` batches is sorted by
        length first (less padding), so with `bucket` > 1 a batch holds events of about one length; with
        1 every batch is a uniform draw."""
        indices = np.arange(len(self)) if indices is None else np.asarray(indices)
        order = indices[rng.permutation(len(indices))]
        for start in range(0, len(order), batch_size * bucket):
            chunk = order[start:start + batch_size * bucket]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            groups = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
            for g in rng.permutation(len(groups)):
                yield groups[g]


def to_device(ids: torch.Tensor, features: torch.Tensor | None, device) -> tuple[torch.Tensor, torch.Tensor | None]:
    return ids.to(device), None if features is None else features.to(device)


def _remap(chunk, names: tuple[str, ...]) -> np.ndarray:
    """The chunk's process indices, into the table `names` (-1 stays -1: unknown)."""
    process = np.asarray(chunk.info.get("process", np.full(len(chunk), -1)), dtype=np.int64)
    table = np.array([names.index(n) for n in chunk.process_names] + [-1], dtype=np.int64)
    return table[process]
