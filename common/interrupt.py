"""Graceful stops: SIGTERM (what batch systems send before they kill a job) and Ctrl-C make a
training loop (common.training.TrainingRun) go on to its next safe point (the end of a step, of an
evaluation or of a checkpoint write), write a checkpoint and exit; `--resume` then continues as if
nothing had happened. A second signal is not caught again, so it still kills at once."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Interrupted(Exception):
    """A run stopped by a signal after saving its checkpoint (exit code 128 + the signal number)."""

    def __init__(self, signum: int, message: str):
        super().__init__(f"stopped by {signal.Signals(signum).name}: {message}")
        self.exit_code = 128 + signum


class StopFlag:
    """`signum`: the signal that asked to stop, 0 while none has."""

    signum: int = 0


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """A StopFlag that SIGTERM and SIGINT set while the block runs (handlers are only installed in the
    main thread; elsewhere the flag never rises)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    old = {}

    def handler(signum, frame):
        flag.signum = signum
        for s, h in old.items():  # the next signal acts at once
            signal.signal(s, h)

    for s in (signal.SIGTERM, signal.SIGINT):
        old[s] = signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
