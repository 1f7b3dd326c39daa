"""Jobs over many input files: one task per file, each writing its own output, resumable.

`--out` names a folder (one output per input, `NAME<suffix>`) or a file (one combined output: the
tasks write parts into `FILE.parts/`, merged in input order once all are complete, the part folder
then removed). Each output records a signature of its input (path, size, modification time) and of
the job's settings (models included); a rerun skips every output whose signature matches, so a job
that died at file 700 of 1,000 resumes at 701. A file that fails is reported at the end with its
error; the others still finish.

A job is a small picklable object (paths and settings, no model) with `suffix`, `what`, `settings()`,
`check(inputs, out, combined)` (refuses, before any task, settings that no input could run with),
`signature_of(output)`, `load()` (its model, made once per process: called here first, so that a bad
model is one error before any task), `run(input, output, signature, empty_ok)` (on a worker) and
`combine(parts, inputs, out, signature)`; the last two return (events written, a line saying so).
An input without events is an error in a job of one input (most likely the wrong file was given), and
an output without events (`empty_ok`) in a job of several: one empty file must not block the others.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Protocol
from urllib.parse import urlsplit

from common.atomic import Overtaken
from common.cli import Terminated, check_output, check_output_folder
from common.errors import ColliderFMError, UserError
from common.executors import open_executor, worker_identity
from common.paths import is_url


class FileJob(Protocol):
    suffix: str   # of each per-input output, e.g. ".scores.h5"
    what: str     # what an output is, for messages: "score file"

    def settings(self) -> dict: ...
    def check(self, inputs: list[str], out: Path, combined: bool) -> None: ...
    def signature_of(self, output: Path) -> dict | None: ...
    def load(self) -> object: ...
    def run(self, input: str, output: Path, signature: dict, empty_ok: bool) -> tuple[int, str]: ...
    def combine(self, parts: list[Path], inputs: list[str], out: Path, signature: dict) -> tuple[int, str]: ...


def expand_inputs(patterns: Iterable[str]) -> list[str]:
    """The input files of `patterns` in order: each local glob sorted, URLs as they are, `@LIST` the
    inputs listed in the text file LIST; a pattern or list that matches nothing, a folder, or a file
    named twice (also through a link) is an error (a silently smaller job would go unnoticed)."""
    files: list[str] = []
    for pattern in _listed(map(str, patterns)):
        if not pattern.strip():
            raise UserError("an input name is empty")
        if is_url(pattern):
            if glob.has_magic(pattern.split("://", 1)[1]):
                raise UserError(f"{pattern}: wildcards are not expanded in URLs; list the files (e.g. `xrdfs HOST "
                                f"ls DIR`) into a text file and pass it as @FILE")
            files.append(pattern)
        elif glob.has_magic(pattern) and not os.path.exists(pattern):  # run[1].root may be a name
            matched = sorted(glob.glob(pattern))
            if not matched:
                raise UserError(f"{pattern}: matches no file")
            files += matched
        else:
            files.append(pattern)
    seen: dict[object, str] = {}
    for f in files:
        if not is_url(f) and os.path.isdir(f):  # known now: not one failure per folder at the end
            raise UserError(f"{f}: is a directory, not a file (a glob like DIR/*.root selects the files in it)")
        key = _file_key(f)
        if key in seen:
            raise UserError(f"{f}: given twice among the inputs (also as {seen[key]})")
        seen[key] = f
    return files


def _file_key(path: str) -> object:
    """What is the same file whatever its name: a local file's device and inode (symbolic and hard links),
    else its real path or URL."""
    if is_url(path):
        return path
    try:
        st = os.stat(path)
    except OSError:  # missing: its task fails and says so
        return os.path.realpath(path)
    return st.st_dev, st.st_ino


def _listed(patterns: Iterable[str]) -> Iterable[str]:
    """`patterns` with each `@LIST` replaced by its lines, stripped, without blank lines and `#` comments.
    A line is always an input (a pattern, a path or a URL relative to the working folder), never an option
    or another list."""
    for pattern in patterns:
        if not pattern.startswith("@"):
            yield pattern
            continue
        try:
            lines = Path(pattern[1:]).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{pattern}: cannot read the list of inputs {pattern[1:]} ({err})") from None
        listed = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        if not listed:
            raise UserError(f"{pattern}: lists no input")
        yield from listed


def input_identity(path: str) -> dict:
    """What makes an input the same file on a rerun: its name, and for local files size and modification time."""
    if is_url(path):
        return {"input": path}
    try:
        st = os.stat(path)
    except OSError:  # missing or unreadable: its task fails and says so, the others go on
        return {"input": os.path.abspath(path)}
    return {"input": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


_TEMPORARY = re.compile(r"^\.(.+)\.\d+\.\d+\.tmp$")


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:32]


#: suffixes of files this project reads or writes: an --out ending in one the command cannot write was meant
#: as a file, not as the name of a folder of outputs
FILE_SUFFIXES = (".h5", ".hdf5", ".hdf", ".root", ".csv", ".json", ".txt", ".yaml", ".yml", ".parquet", ".npy",
                 ".npz", ".pt", ".safetensors")


def is_single_output(out: Path, suffixes: tuple[str, ...]) -> bool:
    """Whether --out names one output file (by its suffix) rather than a folder of per-input outputs; a
    file suffix the command cannot write (and no such folder) is refused."""
    out = Path(out)
    if out.is_dir():
        return False
    suffix = out.suffix.lower()
    if suffix in FILE_SUFFIXES and suffix not in suffixes:
        raise UserError(f"{out}: cannot write {suffix} here; give a file ending in {', '.join(suffixes)} (one "
                        f"combined output) or a folder (one output per input; create it first to give a folder "
                        f"a name like this)")
    return suffix in suffixes


@dataclass
class Task:
    index: int
    input: str
    output: Path
    signature: dict
    empty_ok: bool  # an input without events writes an empty output (a job of several inputs)


@dataclass
class TaskResult:
    input: str
    output: str
    events: int = 0
    seconds: float = 0.0
    note: str = ""
    skipped: bool = False
    error: str | None = None
    worker: str = ""
    loads: int = 0


@dataclass
class JobReport:
    """What a job did: one result per input, in input order, and the combined output if any."""

    results: list[TaskResult] = field(default_factory=list)
    seconds: float = 0.0
    executor: str = ""
    workers: int = 1
    combined: str | None = None
    parts: str | None = None  # the part folder of a combined output of several inputs
    combined_note: str = ""
    removed_temporaries: int = 0

    @property
    def failed(self) -> list[TaskResult]:
        return [r for r in self.results if r is not None and r.error]

    @property
    def events(self) -> int:
        return sum(r.events for r in self.results if r is not None and not r.skipped and not r.error)

    def summary(self) -> str:
        done = [r for r in self.results if not r.skipped and not r.error]
        rate = f"{self.events / max(self.seconds, 1e-9):,.0f} events/s"
        if len(self.results) == 1 and done:
            return f"{done[0].note} in {self.seconds:.1f} s ({rate})"
        if all(r.skipped for r in self.results):
            where = self.results[0].output if len(self.results) == 1 or self.combined else "every output"
            return f"{where}: already complete (same inputs and settings), nothing to do; --redo recomputes"
        skipped = sum(r.skipped for r in self.results)
        workers = {r.worker for r in done}
        loads = {}
        for r in done:
            loads[r.worker] = max(loads.get(r.worker, 0), r.loads)
        text = (f"{len(done)} of {len(self.results)} files done, {skipped} skipped (already complete), "
                f"{len(self.failed)} failed; {self.events:,} events in {self.seconds:.1f} s "
                f"({rate}) {self.executor}")
        if done:
            text += f"; {len(workers)} worker process(es), {sum(loads.values())} model load(s)"
        return text


def plan(job: FileJob, inputs: list[str], out: Path, single: bool) -> tuple[list[Task], Path | None]:
    """The tasks (one per input) and, for a combined output of several inputs, its part folder."""
    settings = digest(job.settings())
    if single and len(inputs) == 1:
        return [Task(0, inputs[0], Path(out), {**input_identity(inputs[0]), "settings": settings}, False)], None
    folder = Path(f"{out}.parts") if single else Path(out)
    tasks, owner = [], {}
    for i, path in enumerate(inputs):
        stem = PurePosixPath(urlsplit(path).path).stem if is_url(path) else Path(path).stem  # no ?query
        output = folder / (f"{i:06d}.{stem}{job.suffix}" if single else f"{stem}{job.suffix}")
        if output in owner:
            raise UserError(f"{owner[output]} and {path} would both write {output}; give the inputs distinct "
                            f"names, or write one combined output (--out FILE)")
        owner[output] = path
        tasks.append(Task(i, path, output, {**input_identity(path), "settings": settings}, len(inputs) > 1))
    return tasks, folder if single else None


def run_task(job: FileJob, task: Task) -> TaskResult:
    """One input on a worker: its output written (atomically), or its error as text (the job goes on)."""
    start = time.perf_counter()
    result = TaskResult(task.input, str(task.output))
    try:
        result.events, result.note = job.run(task.input, task.output, task.signature, task.empty_ok)
    except Exception as err:  # as text: the client can always unpickle it, and the job goes on
        if isinstance(err, Terminated):
            raise
        overtaken = next((e for e in (err, err.__context__) if isinstance(e, Overtaken)), None)
        if overtaken is not None and job.signature_of(task.output) == task.signature:
            # a twin of this task (rescheduled while this worker was thought lost) finished first: the same file
            Path(overtaken.kept).unlink(missing_ok=True)
            result.skipped = True
        else:
            result.error = str(err) if isinstance(err, ColliderFMError) else f"{type(err).__name__}: {err}"
    result.seconds = time.perf_counter() - start
    result.worker, result.loads = worker_identity()
    return result


def remove_stale_temporaries(outputs: Iterable[Path]) -> int:
    """Remove the temporaries (`.NAME.PID.N.tmp`, common.atomic) that writers killed mid-file (a lost
    worker, an earlier run) left beside outputs now complete."""
    complete: dict[Path, set[str]] = {}
    for out in outputs:
        if out.is_file():
            complete.setdefault(out.parent, set()).add(out.name)
    n = 0
    for folder, names in complete.items():
        for entry in os.scandir(folder):
            m = _TEMPORARY.match(entry.name)
            if m and m.group(1) in names:
                Path(entry.path).unlink(missing_ok=True)
                n += 1
    return n


def run_file_job(job: FileJob, inputs: list[str], out: str | Path, *, single: bool, protected: Iterable = (),
                 scheduler: str = "none", redo: bool = False, progress: bool = True) -> JobReport:
    """Run `job` over the input files `inputs` (see `expand_inputs`) into `out` (a file when `single`, else
    a folder); see the module. No output may replace an input or a file of a `protected` folder (the
    models). Bad settings and outputs are refused before any model loads or any folder is made; failed
    files are in the report; the caller decides the exit code."""
    out = Path(out)
    if not inputs:
        raise UserError("no input files")
    job.check(inputs, out, single and len(inputs) > 1)  # first: it reads no model and no input
    tasks, parts = plan(job, inputs, out, single)
    local = [Path(p) for p in inputs if not is_url(p)]
    if single:
        check_output(out, [*local, *protected], job.what)
    else:
        check_output_folder(out, [*local, *protected], f"folder of {job.what}s")
    if parts:
        check_output_folder(parts, [*local, *protected], f"folder of the parts of {out}")
    combined_signature = {"inputs": [t.signature for t in tasks]} if parts else None
    report = JobReport(results=[None] * len(tasks), parts=str(parts) if parts else None)  # type: ignore[list-item]
    start = time.perf_counter()
    if parts and not redo and job.signature_of(out) == combined_signature:
        report.results = [TaskResult(t.input, str(out), skipped=True) for t in tasks]
        report.combined = str(out)
        remove_parts(parts, job.suffix, report)  # a run killed between its merge and this cleanup left them
        return report
    todo = []
    for t in tasks:
        if not redo and t.output.is_file() and job.signature_of(t.output) == t.signature:
            report.results[t.index] = TaskResult(t.input, str(t.output), skipped=True)
        else:
            todo.append(t)
    if todo:
        _run_tasks(job, tasks, todo, scheduler, report, progress, start)
    elif parts:
        job.load()  # for the combined output
    if parts and not report.failed:
        _, report.combined_note = job.combine([t.output for t in tasks], inputs, out, combined_signature)
        report.combined = str(out)
        remove_parts(parts, job.suffix, report)
    # after the merge: a merge killed before left its temporary beside the output only now complete
    report.removed_temporaries = remove_stale_temporaries([out, *(t.output for t in tasks)])
    report.seconds = time.perf_counter() - start
    return report


def _run_tasks(job: FileJob, tasks: list[Task], todo: list[Task], scheduler: str, report: JobReport,
               progress: bool, start: float) -> None:
    """Run the tasks `todo` (of all `tasks`) on the executor of `scheduler`, their results into `report`."""
    from tqdm import tqdm

    with open_executor(scheduler) as executor:  # first: an unreachable scheduler leaves no folder behind
        job.load()  # here first: a model that cannot be loaded is one error, not one per file
        todo[0].output.parent.mkdir(parents=True, exist_ok=True)
        report.executor, report.workers = executor.description, executor.workers
        futures = {executor.submit(run_task, job, t): t for t in todo}
        with tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="file", desc=job.what + "s",
                  disable=not progress or len(tasks) == 1, smoothing=0) as bar:
            events = 0
            for future in executor.as_completed(futures):
                task = futures[future]
                try:
                    result = future.result()
                except Exception as err:  # the worker died too often on this file (Dask: KilledWorker)
                    if isinstance(err, Terminated):  # SIGTERM to this process, during an in-process task
                        raise
                    result = TaskResult(task.input, str(task.output), error=f"{type(err).__name__}: {err}")
                report.results[task.index] = result
                events += result.events
                rate = events / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(events=f"{events:,}", rate=f"{rate:,.0f}/s", failed=len(report.failed))
                bar.update()


def remove_parts(folder: Path, suffix: str, report: JobReport) -> None:
    """Remove the part folder of a combined output now complete: its parts (`NNNNNN.NAME<suffix>`) and
    their writers' temporaries, also those that earlier jobs with other inputs left, which only that
    output, now replaced, could use. Anything else stays, with the folder, and the report says so."""
    if not folder.is_dir():
        return
    part = re.compile(rf"^\.?\d{{6}}\..+{re.escape(suffix)}(\.\d+\.\d+\.tmp)?$")
    kept = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if part.match(entry.name) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink()
        else:
            kept.append(entry.name)
    if kept:
        note = f"{folder} kept: it also holds {', '.join(kept)}, not parts of a job"
        report.combined_note = "; ".join(filter(None, (report.combined_note, note)))
    else:
        folder.rmdir()


def print_report(report: JobReport, out: Path) -> int:
    """Print the job's summary and every failure; the exit code: 0, or 1 if any file failed. A job of one
    file that failed is its error (exit code 2, as for any command), as before there were jobs."""
    if len(report.results) == 1 and report.failed:
        raise ColliderFMError(report.failed[0].error)
    print(report.summary())
    if report.combined_note:
        print(report.combined_note)
    elif len(report.results) > 1 and not report.parts:
        print(f"outputs in {out}")
    if report.removed_temporaries:
        print(f"removed {report.removed_temporaries} temporary file(s) left by interrupted writers")
    if report.failed:
        print(f"{len(report.failed)} of {len(report.results)} file(s) failed (the others are complete, and a rerun "
              f"skips them):")
        for r in report.failed:
            print(f"  {r.error}" if r.error.startswith(r.input) else f"  {r.input}: {r.error}")
        if report.parts:
            print(f"the combined output {out} is written once every file succeeds (parts kept in {report.parts})")
        return 1
    return 0

