"""What the baselines share with each other and with `finetune.data_efficiency`: the first events of
each file, and the same stratified training subsamples and class weights."""
from __future__ import annotations

import numpy as np


def capped_events(files: list[str], max_events: int):
    """The first `max_events` events of each file (0: all), concatenated in order."""
    from events.io import iter_events
    from events.model import Events

    out = []
    for path in files:
        left = max_events or float("inf")
        for chunk in iter_events(path):
            out.append(chunk[:left] if len(chunk) > left else chunk)
            left -= len(out[-1])
            if left <= 0:
                break
    return Events.concatenate(out)


def training_split(y: np.ndarray, n: int, seed: int, val_fraction: float = 0.15):
    """(train indices: `n` stratified, validation indices for early stopping, per-event class weights
    of the training events: inverse frequency, as the token model's)."""
    from finetune.classify import subsample

    is_val = np.random.default_rng([seed, 5]).random(len(y)) < val_fraction
    train = subsample(y, np.flatnonzero(~is_val), n, seed)
    val = subsample(y, np.flatnonzero(is_val), max(n // 5, 50), seed + 1)
    counts = np.bincount(y[train], minlength=int(y.max()) + 1)
    weight = len(train) / (np.count_nonzero(counts) * np.maximum(counts, 1))
    return train, val, weight[y[train]]


def baseline_parser(doc: str):
    """The arguments every baseline shares (files, label counts, seeds, output tag); `doc` is the
    script's docstring (summary, then usage)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--test", nargs="+", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-events-per-file", type=int, default=3000)
    parser.add_argument("--val-fraction", type=float, default=0.15, help="early-stopping split of the training set")
    parser.add_argument("--tag", default="cpu")
    return parser


def run_baseline(args, name: str, title: str, y: np.ndarray, y_test: np.ndarray, train_and_predict,
                 meta: dict) -> None:
    """Every size x seed: `train_and_predict(train, val, weight, seed, n_classes)` -> (test probabilities,
    extra row fields); mean AUC per row, written to benchmarks/results/<name>_<tag>.json with `meta`,
    and a markdown table of `title`."""
    import json
    import platform
    import time
    from datetime import date
    from pathlib import Path

    from finetune.config import TOP_CLASSES
    from finetune.metrics import classification_metrics

    classes = TOP_CLASSES[:int(max(y.max(), y_test.max())) + 1]
    rows = []
    for n in args.sizes:
        for seed in args.seeds:
            train, val, weight = training_split(y, n, seed, args.val_fraction)
            start = time.perf_counter()
            probs, extra = train_and_predict(train, val, weight, seed, len(classes))
            m = classification_metrics(y_test, probs, classes)
            rows.append({"n_train": int(len(train)), "seed": seed, "mean_auc": m["mean_auc"], "auc": m["auc"],
                         "accuracy": m["accuracy"], **extra, "seconds": round(time.perf_counter() - start, 2)})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "auc"}), flush=True)
    result = {"tag": args.tag, "date": str(date.today()), "host": platform.node(), **meta, "classes": list(classes),
              "test_events": int(len(y_test)), "train_files": args.train, "test_files": args.test, "rows": rows}
    out = Path(__file__).resolve().parent / "results" / f"{name}_{args.tag}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\n| labelled events | {title} (mean AUC) |\n|---|---|")
    for n in sorted({r["n_train"] for r in rows}):
        v = [r["mean_auc"] for r in rows if r["n_train"] == n]
        print(f"| {n:,} | {np.mean(v):.4f} ± {(max(v) - min(v)) / 2:.4f} |")
    print(f"\nwritten to {out}")
