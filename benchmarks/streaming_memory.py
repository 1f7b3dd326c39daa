"""Peak memory of anomaly scoring and tokenizing as the input grows: streaming keeps it flat.

    python benchmarks/streaming_memory.py --backbone runs/demo/backbone --tokenizer runs/demo/tokenizer \
        --input runs/demo/data/ttbar.h5 --factors 1 10 --step-size 5000

The input is repeated `factor` times into one HDF5 file (event ids made unique); each command runs in
its own process and its peak resident memory (ru_maxrss) is recorded. Writes
benchmarks/results/streaming_memory_<tag>.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def repeated(base: Path, factor: int, out: Path, step_size: int) -> int:
    """Write `base` `factor` times into `out`, streaming; the number of events written."""
    from events.io import iter_events
    from events.io import open_writer

    with open_writer(out) as writer:
        for k in range(factor):
            for chunk in iter_events(base, step_size=step_size):
                chunk.info["event"] = chunk.info["event"] + k * 10**9
                writer.write(chunk)
    return writer.n_events


def peak_rss_mib(cmd: list[str]) -> tuple[float, float]:
    """(peak resident memory of `cmd`'s process in MiB, seconds), measured by a fresh wrapper process."""
    probe = ("import resource, subprocess, sys, json, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t]))")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=REPO, check=True, capture_output=True, text=True)
    kib, seconds = json.loads(out.stdout)
    return kib / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True, help="base event file, repeated")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--step-size", type=int, default=5000, help="events per streamed chunk")
    parser.add_argument("--methods", nargs="+", default=["nll", "masked", "quantization"])
    parser.add_argument("--tag", default="cpu")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors:
            path = Path(tmp) / f"x{factor}.h5"
            n = repeated(args.input, factor, path, args.step_size)
            score = [sys.executable, "-m", "finetune.anomaly", "score", "--backbone", str(args.backbone),
                     "--tokenizer", str(args.tokenizer), "--input", str(path), "--out", str(Path(tmp) / "s.h5"),
                     "--method", *args.methods, "--step-size", str(args.step_size), "--device", "cpu", "--quiet"]
            tokenize = [sys.executable, "-m", "tokenizer.tokenize", "--tokenizer", str(args.tokenizer), "--input",
                        str(path), "--out", str(Path(tmp) / "t.h5"), "--step-size", str(args.step_size),
                        "--device", "cpu"]
            for name, cmd in (("score", score), ("tokenize", tokenize)):
                mib, seconds = peak_rss_mib(cmd)
                rows.append({"command": name, "factor": factor, "events": n, "peak_rss_mib": round(mib, 1),
                             "seconds": round(seconds, 1), "events_per_s": round(n / seconds, 1)})
                print(json.dumps(rows[-1]), flush=True)
    result = {"tag": args.tag, "date": str(date.today()), "host": platform.node(), "cpu_count": _cores(),
              "step_size": args.step_size, "methods": args.methods, "input": str(args.input),
              "backbone": str(args.backbone), "rows": rows, "time": time.strftime("%H:%M:%S")}
    out = REPO / "benchmarks" / "results" / f"streaming_memory_{args.tag}.json"
    out.write_text(json.dumps(result, indent=2))
    print("\n| command | events | peak RSS (MiB) | events/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['command']} | {r['events']:,} | {r['peak_rss_mib']:.0f} | {r['events_per_s']:,.0f} |")
    print(f"\nwritten to {out}")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    main()
