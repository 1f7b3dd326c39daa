"""What every event writer shares: atomic output, process names merged across chunks, and a full disk
or another process writing the same path reported as an error instead of a crash or a lost result."""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import threading
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from common.atomic import Overtaken, atomic_path
from events.errors import EventDataError
from events.model import Events

#: write errors that mean the output does not fit, and how they are reported
_DISK_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
             errno.EFBIG: "file size limit reached (File too large)"}
_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _NeverFailingFile:
    """The temporary output as the file object h5py writes through (its `fileobj` driver).

    HDF5 does not survive a failed write: once a chunk could not be written, closing the file or
    freeing its datasets crashes the process (h5py 3.16 / HDF5: a segmentation fault). So no write
    fails here: the first error is kept in `error`, for the writer to raise once h5py has returned,
    and later writes are dropped (the file is discarded anyway).
    """

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        self._pos = 0
        self.error: OSError | None = None

    def __enter__(self) -> "_NeverFailingFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        os.close(self._fd)
        if exc_type is None and self.error is not None:
            raise self.error  # before the temporary would be renamed into place

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._pos
        elif whence == os.SEEK_END:
            offset += os.fstat(self._fd).st_size
        self._pos = offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        n = os.preadv(self._fd, [buffer], self._pos)
        self._pos += n
        return n

    def read(self, size: int) -> bytes:
        data = os.pread(self._fd, size, self._pos)
        self._pos += len(data)
        return data

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while self.error is None and done < len(view):  # h5py ignores short writes: finish them here
            try:
                done += os.pwrite(self._fd, view[done:], self._pos + done)
            except OSError as err:
                self.error = err
        self._pos += len(view)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as err:
                self.error = err
        return size

    def flush(self) -> None:
        """Nothing buffered: every write went straight to the file."""


@contextlib.contextmanager
def _signals_held():
    """SIGINT, SIGTERM and SIGHUP wait until the block ends: their Python handlers raise, and an
    exception raised inside one of h5py's file-object calls would fail an HDF5 write (see
    `_NeverFailingFile`). Handlers run only in the main thread, so other threads need nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum))
                for s in _HELD_SIGNALS if callable(signal.getsignal(s))}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(caught):
            signal.raise_signal(s)


def failing_cleanly(method):
    """A writer's `__init__`, `write` or `close`, with signals held while it runs and a full disk (or
    another process having written the same path) turned into one EventDataError once the partial
    output is removed. The writer keeps its `AtomicOutput` as `output`."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            with _signals_held():
                result = method(self, *args, **kwargs)
                if _write_error(self) is not None:
                    raise _write_error(self)
            return result
        except Overtaken as err:
            raise EventDataError(str(err)) from None
        except Exception as err:
            # h5py may fail on data it was told was written: the write error behind it is what to report
            err = _write_error(self) or err
            full = isinstance(err, OSError) and err.errno in _DISK_FULL
            output = getattr(self, "output", None)  # absent if __init__ failed before making it
            if output is not None and (full or method.__name__ == "__init__"):  # a failed start is never closed
                output.abort(err)
            if not full:
                raise err
            raise EventDataError(f"{output.path}: {_DISK_FULL[err.errno]} while writing; no file written") from None

    return run


def _write_error(writer) -> OSError | None:
    output = getattr(writer, "output", None)
    return output.write_error() if output is not None else None


class AtomicOutput:
    """What a writer writes into: a temporary file that replaces `path` only on `close`, and the file's
    process names, merged across chunks.

    A writer holds one as `output` and wraps its `__init__`, `write` and `close` with
    `failing_cleanly`; as a context manager, it closes on success and calls `abort` on an exception,
    which removes the partial file. A full disk is an EventDataError naming `path`; so is a file another
    process wrote at `path` meanwhile (it is kept, and this writer's output is kept beside it). h5py
    files are opened on `hdf5()`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.stack = ExitStack()
        self.tmp = self.stack.enter_context(atomic_path(self.path, keep_theirs=True))
        self._hdf5_file: _NeverFailingFile | None = None
        self.process_names: list[str] = []

    def hdf5(self) -> _NeverFailingFile:
        """The temporary, to open with h5py.File(..., "w"): written so that a full disk cannot crash HDF5."""
        self._hdf5_file = self.stack.enter_context(_NeverFailingFile(self.tmp))
        return self._hdf5_file

    def write_error(self) -> OSError | None:
        """The error of a write h5py was told had succeeded."""
        return self._hdf5_file.error if self._hdf5_file is not None else None

    def abort(self, err: BaseException) -> None:
        """Close the files and remove the temporary after `err` (closing may fail again: the disk is full)."""
        with contextlib.suppress(OSError), _signals_held():
            self.stack.__exit__(type(err), err, err.__traceback__)

    def process_table(self, names) -> np.ndarray:
        """Extend the file's process names by `names`; returns the table that maps a chunk's process
        index (-1: unknown, the last entry) to the file's."""
        self.process_names += [n for n in names if n not in self.process_names]
        return np.array([self.process_names.index(n) for n in names] + [-1], dtype=np.int16)

    def close(self) -> None:
        self.stack.close()


class WritesAtomically:
    """The context protocol of a writer that holds an `AtomicOutput` as `output`: `close()` on
    success; on an exception the partial file is removed."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.output.abort(exc)


class EventWriter(WritesAtomically):
    """Base of the writers of `Events` (`HDF5Writer`, `RootWriter`): `write(events)` chunk by chunk into
    an `AtomicOutput`. Use as a context manager: on an exception the partial file is removed.
    Subclasses' `__init__`, `write` and `close` are wrapped with `failing_cleanly`.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("__init__", "write", "close"):
            if name in vars(cls):
                setattr(cls, name, failing_cleanly(vars(cls)[name]))

    def __init__(self, path: str | Path):
        self.output = AtomicOutput(path)
        self.path = self.output.path
        self.n_events = 0

    def _with_file_process_names(self, events: Events) -> Events:
        """`events` re-indexed into the file's process names, extended by any new ones."""
        self.output.process_table(events.process_names)
        return events.with_process_names(self.output.process_names)

    def write(self, events: Events) -> None:
        raise NotImplementedError

    @failing_cleanly
    def close(self) -> None:
        self.output.close()
