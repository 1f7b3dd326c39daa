"""Render benchmark results (benchmarks/results/*.json) as markdown tables into README.md.

    python benchmarks/report.py            # rewrites the marked sections of README.md
Each table sits between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def generate_table() -> str:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("generate_*.json"))]
    runs.sort(key=lambda r: (r["machine"].startswith("cpu"), -r["cpu_cores_used"]))
    processes = list(dict.fromkeys(p for r in runs for p in r["generate"]))
    head = "| process | " + " | ".join(f"{r['machine']} ({r['cpu_cores_used']} workers)" for r in runs) + " |"
    lines = [head, "|---" * (len(runs) + 1) + "|"]
    for proc in processes:
        cells = []
        for r in runs:
            row = r["generate"].get(proc)
            cells.append(f"{row['records_per_s']:.0f} /s ({row['records_per_s_per_core']:.0f} /s/core)" if row else "")
        lines.append(f"| {proc} | " + " | ".join(cells) + " |")
    notes = []
    for r in runs:
        single = r.get("single_process_ttbar_per_s")
        if single:
            notes.append(f"- {r['machine']}, one process, ttbar: ours {single['ours']:.0f} events/s with full "
                         f"reconstruction; a per-event Python particle loop making jets only: "
                         f"{single['python_loop_baseline']:.0f} events/s (ratio {single['ratio']:.2f}).")
        if "read_events_per_s" in r and r["cpu_cores_used"] == max(x["cpu_cores_used"] for x in runs):
            rd = r["read_events_per_s"]
            notes.append(f"- {r['machine']}: reading ttbar back: HDF5 store {rd['hdf5']:,} events/s, "
                         f"NanoAOD-style ROOT {rd['nanoaod_root']:,} events/s.")
    dates = sorted({r["date"] for r in runs})
    return "\n".join(lines + [""] + notes + [f"\n(measured {', '.join(dates)}; "
                                             "`python benchmarks/generate_throughput.py`)"])


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name, render in {"generate-table": generate_table}.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- {name}:start/end --> markers")
        text = pattern.sub(lambda m: m.group(1) + render() + "\n" + m.group(2), text)
    readme.write_text(text)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
