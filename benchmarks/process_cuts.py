"""The one-variable cuts beside a process classifier: per process, the one-vs-rest ROC AUC of each cut
variable of benchmarks/anomaly_table.py (HT, leading pts, MET, multiplicities) on the same test files,
each cut in its better direction (as a physicist would place it), and their mean over processes.

    python benchmarks/process_cuts.py --test data/anom/{ttbar,wjets,ww,single_top_t,single_top_s,tw_proxy}_s2.h5 \
        --out benchmarks/results/process_cuts.json

The process of a file is its name up to `_s<seed>` (the classifier's labels for generated files).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cut_aucs(variables: dict[str, np.ndarray], y: np.ndarray, classes: list[str]) -> dict[str, dict]:
    """{variable: {"auc": {class: AUC}, "mean_auc": mean}}, each AUC max(a, 1 - a)."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for name, x in variables.items():
        aucs = {c: float(roc_auc_score(y == k, x)) for k, c in enumerate(classes)}
        aucs = {c: max(a, 1 - a) for c, a in aucs.items()}
        out[name] = {"auc": aucs, "mean_auc": float(np.mean(list(aucs.values())))}
    return out


def main(argv: list[str] | None = None) -> int:
    from anomaly_table import REFERENCES, references  # benchmarks/ is on sys.path as a script

    parser = argparse.ArgumentParser(prog="python benchmarks/process_cuts.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", nargs="+", required=True, help="event files, one process each")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    classes = [re.sub(r"_s\d+$", "", Path(f).name.split(".")[0]) for f in args.test]
    refs = [references(Path(f)) for f in args.test]
    y = np.concatenate([np.full(len(r["event"]), k) for k, r in enumerate(refs)])
    result = cut_aucs({v: np.concatenate([r[v] for r in refs]) for v in REFERENCES}, y, classes)
    print("| cut | mean one-vs-rest AUC | " + " | ".join(classes) + " |")
    for name, r in result.items():
        print(f"| {name} | {r['mean_auc']:.4f} | " + " | ".join(f"{r['auc'][c]:.3f}" for c in classes) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps({"test": args.test, "classes": classes, "cuts": result}, indent=2))
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "benchmarks/process_cuts.py")
