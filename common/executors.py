"""Where the tasks of a job run: in this process, in forked processes on this machine (no extra
package needed), or on Dask: a LocalCluster (`local[:N]`) or a running cluster's scheduler (its
address), e.g. one that dask-jobqueue started on HTCondor or Slurm (docs/scaling.md).

Every executor has `submit(fn, *args)` (a future with `result()`), `as_completed(futures)` and
`workers` (tasks that run at once). Dask reschedules the tasks of a worker that dies (up to
`distributed.scheduler.allowed-failures` times, then `KilledWorker`); the forked pool cannot, and
a dead process fails the job.

A model a task needs is loaded once per worker process (`worker_cache`), not once per task.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections import OrderedDict
from typing import Callable, Iterable, Iterator

from common.errors import UserError

_LOCAL = re.compile(r"^local(?::(\d+))?$")
_ADDRESS = re.compile(r"^([a-z]+://)?[\w.-]+:\d+$")
DASK_EXTRA = "pip install 'colliderfm[dask]' (dask and distributed)"


def scheduler_spec(text: str) -> str:
    """Argument type of --scheduler: `none`, `local`, `local:N` or a Dask scheduler address."""
    m = _LOCAL.match(text)
    if text == "none" or (m and (m.group(1) is None or int(m.group(1)) >= 1)) or \
            (not text.startswith("local") and _ADDRESS.match(text)):
        return text
    raise argparse.ArgumentTypeError(
        f"expected none, local, local:N (N >= 1) or a Dask scheduler address like tcp://host:8786, got {text!r}")


def add_scheduler_argument(parser: argparse.ArgumentParser, tasks: str) -> None:
    parser.add_argument(
        "--scheduler", type=scheduler_spec, default="none", metavar="none|local[:N]|ADDRESS",
        help=f"where the tasks ({tasks}) run: none (this process, the default), local[:N] (a Dask LocalCluster "
             f"of N worker processes, default one per core) or the address of a running Dask scheduler "
             f"(tcp://host:8786); Dask needs {DASK_EXTRA}")


class _Lazy:
    """A future of the in-process executor: the task runs when its result is first asked for, so that
    progress can be shown between tasks."""

    def __init__(self, fn: Callable, args: tuple):
        self._call, self._done, self._value, self._error = (fn, args), False, None, None

    def result(self):
        if not self._done:
            fn, args = self._call
            try:
                self._value = fn(*args)
            except Exception as err:
                self._error = err
            self._done, self._call = True, None
        if self._error is not None:
            raise self._error
        return self._value


class InProcess:
    """Tasks run here, one at a time, in submission order."""

    workers = 1
    description = "in this process"

    def submit(self, fn: Callable, *args) -> _Lazy:
        return _Lazy(fn, args)

    def as_completed(self, futures: Iterable[_Lazy]) -> Iterator[_Lazy]:
        for future in futures:
            with contextlib.suppress(Exception):  # the error is raised again by result()
                future.result()
            yield future

    def close(self) -> None:
        _CACHE.clear()  # the models of a finished job are not kept alive in the caller's process


class ForkPool:
    """N forked processes on this machine (stdlib): they start in milliseconds and need no extra package."""

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork: workers start at once and scripts need no __main__ guard; spawn where fork is missing
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self.workers = workers
        self.description = f"on {workers} forked processes"
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))

    def submit(self, fn: Callable, *args):
        return self._pool.submit(fn, *args)

    def as_completed(self, futures):
        from concurrent.futures import as_completed

        return as_completed(list(futures))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class DaskExecutor:
    """Tasks on a Dask cluster: a LocalCluster started here (`local[:N]`) or a running scheduler."""

    def __init__(self, spec: str):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserError(f"--scheduler {spec} needs Dask: {DASK_EXTRA}") from None
        import logging

        # Dask's start-up and shutdown chatter (INFO) would bury the job's own lines; its warnings (a worker
        # that died, memory pressure) still show
        logging.getLogger("distributed").setLevel(logging.WARNING)
        self._stack = contextlib.ExitStack()
        try:
            m = _LOCAL.match(spec)
            if m:
                n = int(m.group(1) or os.cpu_count() or 1)
                threads = str(max(1, (os.cpu_count() or 1) // n))
                self._stack.enter_context(_default_malloc())
                # each worker's torch gets its share of the cores (Dask's default is one thread each); as `env`,
                # which the nanny also gives the workers it restarts after a death
                cluster = self._stack.enter_context(LocalCluster(  # dashboard on any free port: jobs side by side
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                    silence_logs=logging.ERROR,
                    env={k: threads for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}))
                self.description = f"on a Dask LocalCluster of {n} worker processes"
                self.client = self._stack.enter_context(Client(cluster))
            else:
                check_reachable(spec)
                self.client = self._stack.enter_context(Client(spec, timeout="30s"))
                self.description = f"on the Dask scheduler at {spec}"
        except UserError:
            raise
        except Exception as err:  # no scheduler at that address, no free port...
            self._stack.close()
            raise UserError(f"--scheduler {spec}: cannot start or reach Dask ({type(err).__name__}: {err})") from None

    @property
    def workers(self) -> int:
        """Tasks that run at once now: a cluster's workers may join (dask-jobqueue scaling up) or leave."""
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable, *args):
        # pure=False: two tasks with equal arguments (a retry, a rerun) are still two tasks
        return self.client.submit(fn, *args, pure=False)

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(list(futures))

    def close(self) -> None:
        self._stack.close()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse at once a scheduler address whose host does not resolve or whose port takes no TCP connection
    (Dask's own connect would retry for its whole timeout); other protocols (inproc, ucx) are left to Dask."""
    import socket

    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return
    host, _, port = rest.rpartition(":")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError as err:
        raise UserError(f"--scheduler {address}: cannot resolve the host {host!r} ({err})") from None
    try:
        socket.create_connection(infos[0][4][:2], timeout=timeout).close()
    except OSError as err:
        why = f"no answer within {timeout:g} s" if isinstance(err, TimeoutError) else err.strerror or str(err)
        raise UserError(f"--scheduler {address}: cannot connect to {host} port {port} ({why}); is the Dask "
                        f"scheduler running there?") from None


#: MALLOC_TRIM_THRESHOLD_ as the user set it, before any Dask nanny wrote its own into this process's environment
_USER_MALLOC_TRIM = os.environ.get("MALLOC_TRIM_THRESHOLD_")


@contextlib.contextmanager
def _default_malloc():
    """Workers with glibc's default malloc. Dask starts them with MALLOC_TRIM_THRESHOLD_=65536 (to return
    memory sooner), which also stops glibc from raising its mmap threshold: every tensor of more than
    128 KiB is then mapped and unmapped again, and small torch layers ran 2 to 2.5 times slower
    (benchmarks/dask_throughput.py). The nanny also leaves its value in this process's environment,
    whence later workers would inherit it."""
    import dask

    def restore():
        if _USER_MALLOC_TRIM is None:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)

    restore()
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": _USER_MALLOC_TRIM}):
            yield
    finally:
        restore()


@contextlib.contextmanager
def open_executor(scheduler: str = "none", workers: int = 1):
    """The executor of --scheduler `scheduler` (see `scheduler_spec`), or without one (`none`) of
    `workers` forked processes (1: this process)."""
    if scheduler != "none" and workers > 1:
        raise UserError("give --workers (processes on this machine) or --scheduler (Dask), not both")
    executor = DaskExecutor(scheduler) if scheduler != "none" else ForkPool(workers) if workers > 1 else InProcess()
    try:
        yield executor
    finally:
        executor.close()


# --- models loaded once per worker process --------------------------------------------------------------
_CACHE: OrderedDict = OrderedDict()
_loads = 0


def worker_cache(key, load: Callable[[], object], keep: int = 2):
    """`load()`'s result, made once per process for each `key` (hashable); the last `keep` are kept."""
    global _loads
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = load()
    _loads += 1
    _CACHE[key] = value
    while len(_CACHE) > keep:
        _CACHE.popitem(last=False)
    return value


def worker_identity() -> tuple[str, int]:
    """(host:pid of this process, models it has loaded so far): what a task reports of where it ran."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}", _loads
