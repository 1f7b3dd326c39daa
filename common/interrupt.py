"""Graceful stops: SIGTERM (what batch systems send before they kill a job) and Ctrl-C make a
training loop (common.training.TrainingRun) go on to its next safe point (the end of a step, of an
evaluation or of a checkpoint write), write a checkpoint and exit; `--resume` then continues as if
nothing had happened. A second signal is not caught again, so it still kills at once.

Batch systems send SIGKILL about 30 s after SIGTERM, and a safe point may be further away than that
(a compilation, a first step, a stalled device): `grace_s` after the first signal, a watchdog exits
the process (128 + the signal number), leaving the last checkpoint written, which is complete (they
are written atomically) and resumes exactly."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Iterator

#: seconds from a stop signal to the watchdog's exit: inside the 30 s batch systems give before SIGKILL
GRACE_S = 20.0
log = logging.getLogger(__name__)


class Interrupted(Exception):
    """A run stopped by a signal after saving its checkpoint (exit code 128 + the signal number)."""

    def __init__(self, signum: int, message: str):
        super().__init__(f"stopped by {signal.Signals(signum).name}: {message}")
        self.exit_code = 128 + signum


class StopFlag:
    """`signum`: the signal that asked to stop, 0 while none has."""

    signum: int = 0


def _exit_now(signum: int, grace_s: float) -> None:
    sys.stderr.write(f"\nno safe point reached within {grace_s:g} s of {signal.Signals(signum).name}: exiting; "
                     "--resume continues from the last checkpoint written\n")
    sys.stderr.flush()
    os._exit(128 + signum)


@contextlib.contextmanager
def stop_on_signals(grace_s: float | None = GRACE_S) -> Iterator[StopFlag]:
    """A StopFlag that SIGTERM and SIGINT set while the block runs (handlers are only installed in the
    main thread; elsewhere the flag never rises); `grace_s` after a signal, unless the block has been
    left by then, the watchdog exits the process (None: never)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    old, watchdog = {}, []

    def handler(signum, frame):
        flag.signum = signum
        for s, h in old.items():  # the next signal acts at once
            signal.signal(s, h)
        if grace_s is not None and not watchdog:
            log.warning("%s: stopping at the next safe point (at most %g s; a second signal stops at once)",
                        signal.Signals(signum).name, grace_s)
            watchdog.append(threading.Timer(grace_s, _exit_now, (signum, grace_s)))
            watchdog[0].daemon = True
            watchdog[0].start()

    for s in (signal.SIGTERM, signal.SIGINT):
        old[s] = signal.signal(s, handler)
    try:
        yield flag
    finally:
        for timer in watchdog:
            timer.cancel()
        for s, h in old.items():
            signal.signal(s, h)
