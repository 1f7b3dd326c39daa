"""python -m finetune.data_efficiency: classification performance against the number of labelled events.

    python -m finetune.data_efficiency --backbone RUN --tokenizer RUN --train FILES --test FILES \
        [--sizes 100 1000 10000 100000 0] [--modes frozen full scratch] [--seeds 0 1 2] [overrides]

The same task as finetune.classify, with N labelled training events (0 = all) for each N, mode and
seed. Writes data_efficiency.json, a markdown table and plots of mean AUC and accuracy vs N, and the
label-saving factor: how many times fewer labels a pretrained mode needs to match the best
from-scratch result (OmniJet-alpha's headline).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from common.cli import UserError, check_output_folder, nonnegative_int, run_cli
from common.config import to_dict
from common.provenance import record_run


def label_factor(rows: list[dict], mode: str, metric: str = "mean_auc") -> dict | None:
    """The smallest N at which `mode` (mean over seeds) reaches scratch's best mean; the factor is
    scratch's N at its best divided by that N. None when it never does."""
    def curve(m):
        ns = sorted({r["n_train"] for r in rows if r["mode"] == m})
        return [(n, float(np.mean([r[metric] for r in rows if r["mode"] == m and r["n_train"] == n]))) for n in ns]

    scratch = curve("scratch")
    if not scratch:
        return None
    n_best, best = max(scratch, key=lambda p: (p[1], -p[0]))
    reached = [n for n, v in curve(mode) if v >= best]
    if not reached:
        return None
    return {"scratch_best": best, "scratch_n": n_best, "n_needed": reached[0], "factor": n_best / reached[0]}


def main(argv: list[str] | None = None) -> int:
    from finetune.classify import add_task_arguments, prepare, task_config, task_inputs, train_and_test
    from finetune.plots import plot_data_efficiency
    from tokenizer.tokenizer import Tokenizer
    from common.runtime import resolve_device

    parser = argparse.ArgumentParser(prog="python -m finetune.data_efficiency", description=__doc__.split("\n\n")[0],
                                     epilog="Any config key can be overridden, e.g. --train.epochs=10")
    add_task_arguments(parser)
    parser.add_argument("--sizes", nargs="+", type=nonnegative_int, default=[100, 1000, 10000, 100000, 0],
                        help="labelled training events per point (0: all)")
    parser.add_argument("--modes", nargs="+", default=["frozen", "full", "scratch"], choices=("frozen", "full", "scratch"))
    parser.add_argument("--seeds", nargs="+", type=nonnegative_int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/finetune/data_efficiency"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args, overrides = parser.parse_known_args(argv)
    cfg = task_config(parser, args, overrides)
    check_output_folder(args.out, task_inputs(cfg), "output folder")
    tokenizer = Tokenizer.from_pretrained(cfg.tokenizer, device=str(resolve_device(cfg.train.device)))
    splits = prepare(cfg, tokenizer)
    available = len(splits.train.indices)
    sizes = sorted({n if 0 < n < available else available for n in args.sizes})
    if not sizes:
        raise UserError("no training sizes")
    rows = []
    args.out.mkdir(parents=True, exist_ok=True)
    record_run(args.out, {**to_dict(cfg), "sizes": sizes, "modes": list(args.modes), "seeds": list(args.seeds)},
               None, cfg.train.device)
    for n in sizes:
        for mode in args.modes:
            for seed in args.seeds:
                run_cfg = replace(cfg, train=replace(cfg.train, mode=mode, seed=seed, max_train=n))
                m = train_and_test(run_cfg, splits, progress=not args.quiet, save=False)
                rows.append({"n_train": m["n_train"], "mode": mode, "seed": seed, "mean_auc": m["mean_auc"],
                             "accuracy": m["accuracy"], "auc": m["auc"], "epochs": m["epochs"]})
                print(f"N={m['n_train']:>7} {mode:<8} seed {seed}: mean AUC {m['mean_auc']:.4f}, "
                      f"accuracy {m['accuracy']:.4f}", flush=True)
                (args.out / "data_efficiency.json").write_text(json.dumps({"rows": rows}, indent=2))
    factors = {m: label_factor(rows, m) for m in args.modes if m != "scratch"}
    result = {"classes": list(splits.classes), "test_events": int(len(splits.test.indices)), "rows": rows,
              "label_factor": factors}
    (args.out / "data_efficiency.json").write_text(json.dumps(result, indent=2))
    table = ["| N labelled | " + " | ".join(args.modes) + " |", "|---" * (len(args.modes) + 1) + "|"]
    for n in sorted({r["n_train"] for r in rows}):
        cells = []
        for mode in args.modes:
            v = [r["mean_auc"] for r in rows if r["n_train"] == n and r["mode"] == mode]
            cells.append(f"{np.mean(v):.4f} ± {np.std(v):.4f}")
        table.append(f"| {n:,} | " + " | ".join(cells) + " |")
    (args.out / "data_efficiency.md").write_text("\n".join(table) + "\n")
    for metric in ("mean_auc", "accuracy"):
        plot_data_efficiency(rows, metric, args.out / f"data_efficiency_{metric}.png")
    print("\n".join(table))
    print(json.dumps(factors, indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m finetune.data_efficiency")
