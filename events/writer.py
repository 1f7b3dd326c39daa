"""What every event writer shares: atomic output and process names merged across chunks."""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from common.atomic import atomic_path
from events.model import Events


class EventWriter:
    """Base of the writers: output goes to a temporary file that replaces `path` only on `close`.

    Use as a context manager: on an exception the partial file is removed.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._stack = ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self._process_names: list[str] = []
        self.n_events = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._stack.__exit__(exc_type, exc, tb)

    def _process_table(self, names) -> np.ndarray:
        """Extend the file's process names by `names`; returns the table that maps a chunk's process
        index (-1: unknown, the last entry) to the file's."""
        self._process_names += [n for n in names if n not in self._process_names]
        return np.array([self._process_names.index(n) for n in names] + [-1], dtype=np.int16)

    def _with_file_process_names(self, events: Events) -> Events:
        """`events` re-indexed into the file's process names, extended by any new ones."""
        self._process_table(events.process_names)
        return events.with_process_names(self._process_names)

    def write(self, events: Events) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stack.close()
