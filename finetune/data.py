"""Labelled token sequences for fine-tuning: event files (any readable format, tokenized on the fly)
or token stores, with class labels from the events' info (number of top quarks, or process)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from backbone.data import TokenSequences
from backbone.vocab import Vocab
from events.errors import EventDataError, require_file
from finetune.config import TOP_CLASSES
from tokenizer.tokenizer import TokenBatch


def is_token_store(path: str | Path) -> bool:
    import h5py

    from tokenizer.store import FORMAT_NAME

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT_NAME
    except OSError:
        return False


def token_chunks(files: Sequence[str], tokenizer, format: str = "auto", max_events: int = 0, options=None):
    """Token batches of every file in order: token stores as they are, event files encoded (with the
    objects' features, which a hybrid backbone reads); at most `max_events` of each file (0: all)."""
    from events.io import iter_events
    from tokenizer.store import iter_tokens

    for path in files:
        require_file(path)
        chunks = iter_tokens(path) if is_token_store(path) else \
            (tokenizer.encode(c, source=str(path), features=True) for c in iter_events(path, format, options=options))
        left = max_events or float("inf")
        for chunk in chunks:
            if len(chunk) > left:
                chunk = chunk.head(left)
            yield chunk
            left -= len(chunk)
            if left <= 0:
                break


def unlabelled_sequences(chunks: Sequence[TokenBatch], vocab: Vocab, conditional: bool, block_size: int | None,
                         source: str) -> TokenSequences:
    """Token batches as the sequences of a backbone of vocabulary `vocab`, with the process token
    (conditional backbones) always MASK, unknown: a classifier must not be told the answer, and data has
    none. Refuses events longer than `block_size`."""
    seqs = TokenSequences(chunks, vocab.n_codes, conditional, vocab, source=source)
    if conditional:
        seqs.process_tokens[:] = vocab.mask
    if block_size is not None:
        check_fits(seqs, block_size, source)
    return seqs


def read_sequences(files: Sequence[str], tokenizer, vocab: Vocab, conditional: bool, format: str = "auto",
                   block_size: int | None = None, max_events: int = 0, options=None) -> TokenSequences:
    """Every event of `files` (at most `max_events` per file), in order, as unlabelled sequences."""
    chunks = list(token_chunks(files, tokenizer, format, max_events, options))
    return unlabelled_sequences(chunks, vocab, conditional, block_size, ", ".join(files))


def check_fits(seqs: TokenSequences, block_size: int, source: str) -> None:
    """Refuse events longer than the backbone can read (read them with smaller multiplicity caps)."""
    if seqs.max_length > block_size:
        i = int(np.argmax(seqs.lengths))
        raise EventDataError(f"{source}: event {i} makes a sequence of {seqs.max_length} tokens, but the backbone "
                             f"reads at most {block_size}: read the events with smaller multiplicity caps")


def labels(seqs: TokenSequences, label: str, classes: Sequence[str], source: str) -> tuple[np.ndarray, tuple]:
    """(class index per event, class names). `ntop`: 0t..4t (more tops than classes is an error);
    `process`: the given process names, default every process of the events in order of appearance."""
    if label == "ntop":
        classes = tuple(classes) or TOP_CLASSES
        y = seqs.info.get("ntop")
        if y is None or (y < 0).any():
            raise EventDataError(f"{source}: events without a top-quark count (ntop); use data.label=process "
                                 "or generated files")
        if y.max() >= len(classes):
            raise EventDataError(f"{source}: an event with {int(y.max())} top quarks, but only classes {classes}")
        return y.astype(np.int64), classes
    names = seqs.process_names
    classes = tuple(classes) or tuple(names[p] for p in dict.fromkeys(seqs.info["process"]) if p >= 0)
    table = np.array([classes.index(n) if n in classes else -1 for n in names] + [-1])
    y = table[seqs.info["process"]]
    if (y < 0).any():
        bad = seqs.info["process"][y < 0][0]
        raise EventDataError(f"{source}: events of process {names[bad] if bad >= 0 else 'unknown'!r}, "
                             f"not among the classes {classes}")
    return y.astype(np.int64), classes
