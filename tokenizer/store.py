"""HDF5 store of token sequences: what `tokenizer.tokenize` writes and the backbone reads.

Layout (format `colliderfm.tokens`): /tokens/ids (flat int32, all events concatenated, in each event's
canonical object order), /events/offsets (n_events + 1), /events/<info field> (event ids, weights,
labels carried from the input), attrs: vocab_size, tokenizer (folder), mode (event or constituent),
process_names (JSON), feature_transform (JSON: the tokenizer's normalization); /tokens/code_types
(vocab_size int8: each code's object type); job (JSON: the signature a rerun compares, see
common.filejobs); inputs (JSON: the input files of a combined store, whose /events/input holds each
event's index into them). With features (the hybrid backbone's input): /tokens/features (n_tokens,
n_features) float32, each object's normalized features, and /tokens/code_features (vocab_size,
n_features), what each code decodes to.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import awkward as ak
import numpy as np

from events.errors import EventDataError
from events.hdf5 import append_to_dataset
from events.writer import AtomicOutput, WritesAtomically, failing_cleanly
from tokenizer.tokenizer import TokenBatch

FORMAT_NAME = "colliderfm.tokens"
_CHUNK = 1 << 16


class TokenWriter(WritesAtomically):
    """Append `TokenBatch` chunks; the file appears atomically on close (use as a context manager: on an
    exception no file is left)."""

    @failing_cleanly
    def __init__(self, path: str | Path, vocab_size: int, tokenizer: str, mode: str = "",
                 code_features: np.ndarray | None = None, fingerprint: str | None = None,
                 code_types: np.ndarray | None = None, feature_transform: dict | None = None,
                 job: dict | None = None, inputs: list[str] | None = None):
        """`code_features` (vocab_size, n_features): store each object's features too (every batch
        written must then carry them). `fingerprint`: the tokenizer's, passed on to backbones, as
        `code_types` and `feature_transform` (what a density head needs to know of the codes). `job`:
        the signature of the job that wrote it (what a rerun compares, common.filejobs). `inputs`: the
        input files of a combined store, whose events then carry an `input` field (index into them)."""
        import h5py

        self.output = AtomicOutput(path)
        self.path = self.output.path
        self.n_events = 0
        self._file = self.output.stack.enter_context(h5py.File(self.output.hdf5(), "w"))
        self._file.attrs.update(format=FORMAT_NAME, vocab_size=vocab_size, tokenizer=str(tokenizer), mode=mode,
                                tokenizer_fingerprint=fingerprint or "",
                                feature_transform=json.dumps(feature_transform or {}), job=json.dumps(job or {}),
                                inputs=json.dumps(inputs or []))
        if code_types is not None:
            self._file.create_dataset("tokens/code_types", data=np.asarray(code_types, dtype=np.int8))
        opts = dict(compression="gzip", compression_opts=4, shuffle=True, fletcher32=True)
        self._ids = self._file.create_dataset("tokens/ids", shape=(0,), maxshape=(None,), dtype=np.int32,
                                              chunks=(_CHUNK,), **opts)
        self._offsets = self._file.create_dataset("events/offsets", data=np.zeros(1, np.int64), maxshape=(None,),
                                                  chunks=(_CHUNK,), **opts)
        self._opts = opts
        self._features = None
        if code_features is not None:
            self._file.create_dataset("tokens/code_features", data=code_features.astype(np.float32))
            self._features = self._file.create_dataset("tokens/features", shape=(0, code_features.shape[1]),
                                                       maxshape=(None, code_features.shape[1]), dtype=np.float32,
                                                       chunks=(_CHUNK // 8, code_features.shape[1]), **opts)
        self.n_tokens = 0

    @classmethod
    def for_tokenizer(cls, path: str | Path, tokenizer, folder: str | Path, features: bool = False,
                      job: dict | None = None, inputs: list[str] | None = None) -> "TokenWriter":
        """A store of `tokenizer`'s tokens (loaded from `folder`), with each object's features if `features`."""
        return cls(path, tokenizer.vocab_size, str(folder), tokenizer.mode,
                   tokenizer.code_features() if features else None, tokenizer.fingerprint, tokenizer.code_types(),
                   tokenizer.transform.to_dict(), job, inputs)

    @failing_cleanly
    def write(self, tokens: TokenBatch) -> None:
        process = np.asarray(tokens.info.get("process", np.full(len(tokens), -1)), dtype=np.int64)
        info = dict(tokens.info, process=self.output.process_table(tokens.process_names)[process])
        ids = ak.to_numpy(ak.flatten(tokens.ids)).astype(np.int32)
        counts = ak.to_numpy(ak.num(tokens.ids)).astype(np.int64)
        append_to_dataset(self._ids, ids)
        append_to_dataset(self._offsets, self.n_tokens + np.cumsum(counts))
        if self._features is not None:
            if tokens.features is None:
                raise ValueError("this token store holds features: encode with features=True")
            append_to_dataset(self._features, ak.to_numpy(ak.flatten(tokens.features, axis=1)))
        for name, values in info.items():
            if name not in self._file["events"]:
                self._file.create_dataset(f"events/{name}", shape=(0,), maxshape=(None,), dtype=values.dtype,
                                          chunks=(_CHUNK,), **self._opts)
            append_to_dataset(self._file["events"][name], values)
        self.n_tokens += len(ids)
        self.n_events += len(tokens)

    @failing_cleanly
    def close(self) -> None:
        self._file.attrs["process_names"] = json.dumps(self.output.process_names)
        self.output.close()


def iter_tokens(path: str | Path, step_size: int = 100_000) -> Iterator[TokenBatch]:
    """Stream a token store in chunks of events."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise EventDataError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        if f.attrs.get("format") != FORMAT_NAME:
            raise EventDataError(f"{path}: not a {FORMAT_NAME} store")
        names = tuple(json.loads(f.attrs["process_names"]))
        offsets = f["events/offsets"]
        fields = [k for k in f["events"] if k != "offsets"]
        n = offsets.shape[0] - 1
        for start in range(0, n, step_size):
            stop = min(start + step_size, n)
            off = offsets[start:stop + 1]
            ids = f["tokens/ids"][off[0]:off[-1]]
            feats = ak.unflatten(f["tokens/features"][off[0]:off[-1]], np.diff(off)) if "features" in f["tokens"] \
                else None
            yield TokenBatch(ak.unflatten(ids, np.diff(off)), {k: f["events"][k][start:stop] for k in fields}, names,
                             feats)


def read_job(path: str | Path) -> dict | None:
    """The job signature a complete token store records (common.filejobs); None for anything else."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT_NAME or "events/offsets" not in f:
                return None
            return json.loads(f.attrs.get("job", "{}")) or None
    except (OSError, ValueError):
        return None


def read_code_info(path: str | Path) -> tuple[np.ndarray, dict] | None:
    """(each code's object type, the tokenizer's feature normalization) of a store, or None for a store
    written before they were recorded."""
    import h5py

    with h5py.File(path, "r") as f:
        if "code_types" not in f["tokens"]:
            return None
        return f["tokens/code_types"][:].astype(np.int64), json.loads(f.attrs["feature_transform"])


def read_code_features(path: str | Path) -> np.ndarray | None:
    """The store's code feature table (vocab_size, n_features), or None for a store without features."""
    import h5py

    with h5py.File(path, "r") as f:
        return f["tokens/code_features"][:] if "code_features" in f["tokens"] else None
