"""Anomaly scores of a real NanoAOD file beside simulated events of the same process, read with and
without the object selection that matches the built-in simulation.

    python benchmarks/real_file_scores.py --backbone runs/demo/backbone --tokenizer runs/demo/tokenizer \
        --real ../shared/data/cms-opendata-2015-ttbar-nanoaod-rntuple.root --simulated runs/demo/data/held_out.h5 \
        --process ttbar --out benchmarks/results/real_nanoaod

For each score: the median over the simulated events, the median over the real ones, and the real
events' mean percentile in the simulated distribution (0.5: the real events look like the simulation;
near 1: the model finds them all anomalous). Beside the scores, the simplest cut a physicist would
look at, HT, in the same terms. Prints a markdown table; writes scores.json and scores.png.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
COLUMNS = ("density_nll", "surprise", "nll", "masked", "quantization")


def score(args, path: Path, out: Path, selection: str) -> dict:
    from finetune.score_store import read_scores

    cmd = [sys.executable, "-m", "finetune.anomaly", "score", "--backbone", args.backbone, "--tokenizer",
           args.tokenizer, "--input", path, "--out", out, "--device", "cpu", "--quiet", "--selection", selection,
           *(["--era", args.era] if args.era else [])]
    proc = subprocess.run(list(map(str, cmd)), cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return read_scores(out)


def read(path: Path, selection: str, era: str | None):
    from events.io import read_events
    from events.options import ReadOptions

    return read_events(path, options=ReadOptions(selection=selection, era=era or "auto"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--real", required=True, type=Path, help="real NanoAOD file (TTree or RNTuple)")
    parser.add_argument("--simulated", required=True, type=Path, help="simulated events of the same process")
    parser.add_argument("--process", default=None,
                        help="keep only this process of the simulated file (e.g. ttbar of a held-out mix)")
    parser.add_argument("--era", default=None, help="era of the real file (default: auto)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        return study(args, Path(work))


def study(args, work: Path) -> int:
    args.simulated_file = f"{args.simulated}" + (f" ({args.process})" if args.process else "")
    if args.process:
        from events.io import read_events, write_events

        events = read_events(args.simulated)
        write_events(events[events.process == args.process], work / f"simulated_{args.process}.h5")
        args.simulated = work / f"simulated_{args.process}.h5"
    from events.compare import w1_table
    from events.physics import ht

    sim = score(args, args.simulated, work / "simulated.h5", "none")
    simulated = read(args.simulated, "none", None)
    sim["HT"] = ht(simulated)
    samples, compare = {}, {}
    for selection in ("none", "reco"):
        s = score(args, args.real, work / f"real_{selection}.h5", selection)
        real = read(args.real, selection, args.era)
        s["HT"] = ht(real)
        samples[selection] = s
        compare[selection] = w1_table(simulated, real)
    columns = [c for c in (*COLUMNS, "HT") if c in sim]
    result = {"real": str(args.real), "simulated": str(args.simulated_file), "n_simulated": len(sim["event"]),
              "n_real": len(samples["none"]["event"]), "columns": {}}
    for c in columns:
        row = {"median simulated": float(np.median(sim[c]))}
        for selection, s in samples.items():
            ref = np.sort(sim[c])
            row[f"median real ({selection})"] = float(np.median(s[c]))
            row[f"percentile real ({selection})"] = float(np.mean(np.searchsorted(ref, s[c]) / len(ref)))
        result["columns"][c] = row
    result["compare"] = compare
    result["flags"] = {sel: {int(k): int(v) for k, v in zip(*np.unique(s["flag"], return_counts=True))}
                       for sel, s in samples.items()}
    (args.out / "scores.json").write_text(json.dumps(result, indent=2))
    header = ["score", "median simulated", "median real (none)", "median real (reco)",
              "real percentile (none)", "real percentile (reco)"]
    print(f"{result['n_real']} real events ({args.real.name}) against {result['n_simulated']} simulated "
          f"({args.simulated_file})\n")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for c, row in result["columns"].items():
        print(f"| {c} | {row['median simulated']:.3g} | {row['median real (none)']:.3g} | "
              f"{row['median real (reco)']:.3g} | {row['percentile real (none)']:.2f} | "
              f"{row['percentile real (reco)']:.2f} |")
    print(f"\nflags (value: events): {result['flags']}")
    plot(sim, samples, columns, args.out / "scores.png")
    return 0


def plot(sim: dict, samples: dict, columns: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3))
    for ax, c in zip(np.atleast_1d(axes), columns):
        lo, hi = np.quantile(np.concatenate([sim[c], *(s[c] for s in samples.values())]), [0.005, 0.995])
        bins = np.linspace(lo, hi, 31)
        ax.hist(sim[c], bins=bins, density=True, histtype="stepfilled", alpha=0.35, label="simulated ttbar")
        for y, (selection, s) in enumerate(samples.items()):
            ax.plot(s[c], np.full(len(s[c]), (y + 1) * 0.06) * ax.get_ylim()[1], "|", ms=12,
                    label=f"real ({selection})")
        ax.set_xlabel(c)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "benchmarks/real_file_scores.py")
