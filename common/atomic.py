"""Atomic file output: write to a temporary sibling, rename into place only on success."""
from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path
from typing import Iterator

_serial = itertools.count()


class Overtaken(FileExistsError):
    """Another process wrote the destination while this one was writing; this one's output was kept
    beside it, as `kept`."""

    def __init__(self, message: str, kept: Path):
        super().__init__(message)
        self.kept = kept


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, modification time) of the file at `path`; None if there is none."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


@contextlib.contextmanager
def atomic_path(path: str | Path, *, keep_theirs: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    A crash half-way leaves no half-written file under the final name. With `keep_theirs`, a file that
    another process created or replaced at `path` while the block ran is not overwritten: the block's
    output is kept as `stem.PID.N.suffix` and `Overtaken` raised (else the last to finish would win,
    silently). The check and the rename are not one atomic step: writers finishing within the same
    instant can still replace each other.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}.{next(_serial)}"  # unique also among the writers of one process
    tmp = path.with_name(f".{path.name}.{token}.tmp")
    before = _identity(path) if keep_theirs else None
    try:
        yield tmp
        if keep_theirs and _identity(path) not in (None, before):
            kept = path.with_name(f"{path.stem}.{token}{path.suffix}")
            os.replace(tmp, kept)
            raise Overtaken(f"{path}: written by another process while this run was writing; this run's output "
                            f"is kept as {kept}", kept)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
