"""Throughput of the data jobs on Dask against forked processes and this process, on this machine.

    python benchmarks/dask_throughput.py            # a few minutes on 2 cores
    python benchmarks/dask_throughput.py --quick    # smoke sizes, about a minute

Measures:
- generation (`events.pythia.generate`, ttbar): events/s in this process (the same as --workers 1),
  2 forked processes, and Dask LocalClusters of 1 and 2 workers; every run must give the same events;
- tokenizing and scoring (`common.filejobs.run_file_job`, redo) over several input files cut from the
  demo's held-out events: in this process and on LocalClusters of 1 and 2 workers;
- the scheduler's own cost: start-up of each engine, and the time per no-op task, submitted all at
  once and one at a time.

Wall times include the engine's start-up; the "without start-up" figures subtract the start-up measured
on its own (the median of --startup-repeats). Writes --out (JSON) and prints its markdown table, the one
`python benchmarks/report.py` renders into README.md and docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEMO = REPO / "runs" / "demo"
#: (label, scheduler, workers) of the engines; the first of each pair is the 1-worker reference
GENERATE_ENGINES = [("in-process", "none", 1), ("fork pool", "none", 2),
                    ("Dask LocalCluster", "local:1", 1), ("Dask LocalCluster", "local:2", 2)]
FILE_ENGINES = [("in-process", "none", 1), ("Dask LocalCluster", "local:1", 1), ("Dask LocalCluster", "local:2", 2)]
SCORE_METHODS = ("nll", "masked")
SCORER = {"n_masks": 2}  # the default methods (8 maskings) took 3x as long on held_out: no better a test of the engines
QUICK = {"events": 500, "files": 2, "file_events": 100, "tasks": 50, "round_trips": 10, "startup_repeats": 1}


def machine() -> dict:
    import dask
    import distributed
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "dask": dask.__version__, "distributed": distributed.__version__,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def same_events(a, b) -> bool:
    import awkward as ak
    import numpy as np

    return (len(a) == len(b) and list(a.info) == list(b.info)
            and all(np.array_equal(a.info[k], b.info[k], equal_nan=a.info[k].dtype.kind == "f") for k in a.info)
            and ak.to_list(a.objects) == ak.to_list(b.objects))


def processes(scheduler: str, workers: int) -> int:
    """The `workers` argument of `open_executor`: forked processes; a Dask cluster has its own size."""
    return workers if scheduler == "none" else 1


def time_startup(scheduler: str, workers: int) -> dict:
    """Seconds to open the engine, run a first no-op task and close it: the fork pool forks its processes
    only on the first submit, so opening alone would flatter it."""
    from common.executors import open_executor
    from common.paths import is_url

    t0 = time.perf_counter()
    with open_executor(scheduler, processes(scheduler, workers)) as executor:
        t1 = time.perf_counter()
        executor.submit(is_url, "a").result()
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return {"open_s": t1 - t0, "first_task_s": t2 - t1, "close_s": t3 - t2, "total_s": t3 - t0}


def task_costs(scheduler: str, workers: int, tasks: int, round_trips: int) -> dict:
    """Milliseconds per no-op task on a started engine: `tasks` submitted at once then all awaited, and
    `round_trips` submitted and awaited one at a time."""
    from common.executors import open_executor
    from common.paths import is_url  # a project function: Dask workers import it, not this script

    with open_executor(scheduler, processes(scheduler, workers)) as executor:
        for future in [executor.submit(is_url, "a") for _ in range(2 * executor.workers)]:
            future.result()  # warm: every worker started and has run a task
        start = time.perf_counter()
        for future in executor.as_completed([executor.submit(is_url, "a") for _ in range(tasks)]):
            future.result()
        batch = (time.perf_counter() - start) / tasks
        start = time.perf_counter()
        for _ in range(round_trips):
            executor.submit(is_url, "a").result()
        single = (time.perf_counter() - start) / round_trips
    return {"per_task_ms": round(1e3 * batch, 3), "round_trip_ms": round(1e3 * single, 3)}


def median_startups(starts: dict) -> dict:
    return {key: statistics.median(s["total_s"] for s in runs) for key, runs in starts.items()}


def rate_row(label: str, scheduler: str, workers: int, events: int, seconds: float, startups: dict) -> dict:
    startup_s = startups.get((scheduler, workers), 0.0)
    return {"engine": label, "scheduler": scheduler, "workers": workers, "events": events,
            "seconds": round(seconds, 2), "startup_s": round(startup_s, 2),
            "events_per_s": round(events / seconds, 1),
            "events_per_s_without_startup": round(events / max(seconds - startup_s, 1e-9), 1)}


def speedups(rows: list[dict]) -> dict:
    """2 workers against 1 of the same engine (the fork pool's 1 worker is this process)."""
    by = {(r["engine"], r["workers"]): r for r in rows}
    pairs = {"fork pool": (("fork pool", 2), ("in-process", 1)),
             "Dask LocalCluster": (("Dask LocalCluster", 2), ("Dask LocalCluster", 1))}
    out = {}
    for name, (two, one) in pairs.items():
        if two in by and one in by:
            out[name] = {k: round(by[two][k] / by[one][k], 2)
                         for k in ("events_per_s", "events_per_s_without_startup")}
    return out


def measure_generation(process: str, n_events: int, block_size: int, engines: list, startups: dict,
                       reference=None) -> tuple[list[dict], object]:
    """A row per engine, and the events of the first run when no `reference` (the in-process events) is
    given: every run is checked against them."""
    from events.model import Events
    from events.pythia import GenerateConfig, generate

    config = GenerateConfig(block_size=block_size)
    rows = []
    for label, scheduler, workers in engines:
        start = time.perf_counter()
        events = Events.concatenate(generate(process, n_events, seed=1, workers=processes(scheduler, workers),
                                             scheduler=scheduler, config=config, progress=False))
        seconds = time.perf_counter() - start
        reference = events if reference is None else reference
        rows.append({**rate_row(label, scheduler, workers, len(events), seconds, startups),
                     "identical_to_in_process": same_events(events, reference)})
        print(f"generate {label} ({workers}): {rows[-1]['events_per_s']:,.0f} events/s", flush=True)
    return rows, reference


def measure_file_job(name: str, job, inputs: list[str], out: Path, startups: dict) -> dict:
    from common.filejobs import run_file_job

    rows = []
    for label, scheduler, workers in FILE_ENGINES:
        start = time.perf_counter()
        report = run_file_job(job, inputs, out, single=False, scheduler=scheduler, redo=True, progress=False)
        seconds = time.perf_counter() - start
        if report.failed:
            raise SystemExit(f"{name} on {scheduler} failed: {report.failed[0].error}")
        done = [r for r in report.results if not r.skipped]
        workers_seen = list(dict.fromkeys(r.worker for r in done))
        # a fresh Dask worker's first task also imports torch and loads the model: per-task times and
        # workers show that cost, which the start-up (a no-op task) leaves out
        rows.append({**rate_row(label, scheduler, workers, report.events, seconds, startups),
                     "task_seconds": [round(r.seconds, 2) for r in done],
                     "task_worker": [workers_seen.index(r.worker) for r in done],
                     "worker_processes": len(workers_seen)})
        print(f"{name} {label} ({workers}): {rows[-1]['events_per_s']:,.0f} events/s", flush=True)
    return {"files": len(inputs), "rows": rows, "speedup_2_vs_1": speedups(rows)}


#: small torch layers, as a worker runs them while scoring: seconds for 200 forward passes
SMALL_LAYERS = """
import time, torch
torch.set_num_threads({threads})
x, layer = torch.randn(64, 40, 128), torch.nn.Linear(128, 512)
with torch.no_grad():
    layer(x)
    start = time.perf_counter()
    for _ in range(200):
        layer(x).relu()
print(time.perf_counter() - start)
"""


def malloc_effect(repeats: int = 3) -> dict:
    """Seconds of SMALL_LAYERS with glibc's default malloc and with the MALLOC_TRIM_THRESHOLD_=65536 that
    Dask gives its workers (which common.executors takes away again), at 1 and all threads."""
    import subprocess
    import sys

    out = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        for label, extra in (("default", {}), ("dask_trim_65536", {"MALLOC_TRIM_THRESHOLD_": "65536"})):
            env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"} | extra
            runs = [float(subprocess.run([sys.executable, "-c", SMALL_LAYERS.format(threads=threads)], env=env,
                                         check=True, capture_output=True, text=True).stdout) for _ in range(repeats)]
            out[f"{label}_{threads}_threads_s"] = round(statistics.median(runs), 3)
        out[f"slowdown_{threads}_threads"] = round(out[f"dask_trim_65536_{threads}_threads_s"]
                                                   / out[f"default_{threads}_threads_s"], 2)
    return out


def write_inputs(folder: Path, files: int, per_file: int) -> list[str]:
    """`files` files of `per_file` held-out events each, taken in turn around the held-out file, so that
    files differ."""
    import numpy as np

    from events.io import read_events, write_events

    held_out = read_events(DEMO / "data" / "held_out.h5")
    paths = []
    for i in range(files):
        path = folder / f"part{i}.h5"
        write_events(held_out[(i * per_file + np.arange(per_file)) % len(held_out)], path)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--process", default="ttbar")
    parser.add_argument("--events", type=int, default=3000, help="generated events per engine (default 3000)")
    parser.add_argument("--block-size", type=int, default=250, help="generation block: one task (default 250)")
    parser.add_argument("--files", type=int, default=4, help="input files of the file jobs (default 4)")
    parser.add_argument("--file-events", type=int, default=500, help="events per input file (default 500)")
    parser.add_argument("--tasks", type=int, default=200, help="no-op tasks submitted at once (default 200)")
    parser.add_argument("--round-trips", type=int, default=50, help="no-op tasks one at a time (default 50)")
    parser.add_argument("--startup-repeats", type=int, default=3, help="start-ups timed per engine (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke sizes (replace the sizes above): " +
                        ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "dask_throughput.json")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)

    from finetune.score_files import ScoreJob
    from tokenizer.tokenize import TokenizeJob

    import sys

    result = {"date": date.today().isoformat(), "quick": args.quick, "machine": machine(),
              "command": " ".join(["python benchmarks/dask_throughput.py", *sys.argv[1:]])}
    # Everything that forks runs before the first Dask client: forking a process that holds Dask's
    # event-loop threads can deadlock the child
    engines = {("none", 2): "fork pool (2)", ("local:1", 1): "Dask local:1", ("local:2", 2): "Dask local:2"}
    starts = {("none", 2): [time_startup("none", 2) for _ in range(args.startup_repeats)]}
    costs = {"in-process": task_costs("none", 1, args.tasks, args.round_trips),
             "fork pool (2)": task_costs("none", 2, args.tasks, args.round_trips)}
    gen = (args.process, args.events, args.block_size)
    rows, reference = measure_generation(*gen, GENERATE_ENGINES[:2], median_startups(starts))

    for scheduler, workers in (("local:1", 1), ("local:2", 2)):
        starts[(scheduler, workers)] = [time_startup(scheduler, workers) for _ in range(args.startup_repeats)]
    costs["Dask local:2"] = task_costs("local:2", 2, args.tasks, args.round_trips)
    startups = median_startups(starts)
    rows += measure_generation(*gen, GENERATE_ENGINES[2:], startups, reference)[0]
    result["generation"] = {"process": args.process, "events": args.events, "block_size": args.block_size,
                            "identical": all(r["identical_to_in_process"] for r in rows), "rows": rows,
                            "speedup_2_vs_1": speedups(rows)}

    with tempfile.TemporaryDirectory() as tmp:
        inputs = write_inputs(Path(tmp), args.files, args.file_events)
        tokenizer, backbone = str(DEMO / "tokenizer"), str(DEMO / "backbone")
        result["tokenization"] = {"tokenizer": "runs/demo/tokenizer", "events_per_file": args.file_events,
                                  **measure_file_job("tokenize", TokenizeJob(tokenizer, device="cpu"), inputs,
                                                     Path(tmp) / "tokens", startups)}
        job = ScoreJob(backbone, tokenizer, methods=SCORE_METHODS, device="cpu", scorer=SCORER)
        result["scoring"] = {"backbone": "runs/demo/backbone", "methods": list(SCORE_METHODS), "scorer": SCORER,
                             "events_per_file": args.file_events,
                             **measure_file_job("score", job, inputs, Path(tmp) / "scores", startups)}

    result["overhead"] = {
        "startup_s": {engines[key]: {k: round(statistics.median(x[k] for x in runs), 3) for k in runs[0]}
                      | {"repeats": len(runs)} for key, runs in starts.items()},
        "tasks": args.tasks, "round_trips": args.round_trips, "no_op": "common.paths.is_url('a')",
        "task_ms": costs}
    result["malloc"] = malloc_effect()
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    from report import dask_table  # benchmarks/ is on sys.path when this file runs as a script

    print(dask_table(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
