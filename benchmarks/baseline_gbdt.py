"""Baseline: gradient-boosted trees (XGBoost) on high-level features, for the 0t..4t classification of
the real event-mode run, with the same files, label counts, stratified subsamples and test metric as
`finetune.data_efficiency`, so that its rows sit beside the token model's.

    python benchmarks/baseline_gbdt.py --train data/real/{ttbar,...}_s1.h5 --test data/real/{ttbar,...}_s2.h5 \
        --sizes 100 1000 10000 --seeds 0 1 --max-events-per-file 3000

Features per event (the observables of `backbone.evaluate`, what a physicist would cut on): jet, b-jet
and lepton multiplicities, leading-jet pt and eta, HT, MET, and m(jj), m(bjj) of the hadronic top
candidate (missing where undefined; the trees learn a direction for missing values). Writes
benchmarks/results/baseline_gbdt_<tag>.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
from baseline_data import capped_events, training_split

RESULTS = Path(__file__).resolve().parent / "results"


def features(files: list[str], max_events: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features (N, F), ntop labels (N,), feature names) of the first `max_events` of each file."""
    from backbone.evaluate import observables

    events = capped_events(files, max_events)
    obs = observables(events)
    return np.stack(list(obs.values()), axis=1), events.info["ntop"].astype(np.int64), list(obs)


def main() -> None:
    import xgboost

    from finetune.config import TOP_CLASSES
    from finetune.metrics import classification_metrics

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--test", nargs="+", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-events-per-file", type=int, default=3000)
    parser.add_argument("--val-fraction", type=float, default=0.15, help="early-stopping split of the training set")
    parser.add_argument("--tag", default="cpu")
    args = parser.parse_args()
    x, y, names = features(args.train, args.max_events_per_file)
    x_test, y_test, _ = features(args.test, args.max_events_per_file)
    classes = TOP_CLASSES[:int(max(y.max(), y_test.max())) + 1]
    rows = []
    for n in args.sizes:
        for seed in args.seeds:
            train, val, weight = training_split(y, n, seed, args.val_fraction)
            start = time.perf_counter()
            model = xgboost.XGBClassifier(n_estimators=500, learning_rate=0.05, max_depth=4, subsample=0.8,
                                          colsample_bytree=0.8, early_stopping_rounds=30, random_state=seed,
                                          n_jobs=2, objective="multi:softprob", num_class=len(classes))
            model.fit(x[train], y[train], sample_weight=weight, eval_set=[(x[val], y[val])], verbose=False)
            m = classification_metrics(y_test, model.predict_proba(x_test), classes)
            rows.append({"n_train": int(len(train)), "seed": seed, "mean_auc": m["mean_auc"], "auc": m["auc"],
                         "accuracy": m["accuracy"], "trees": int(model.best_iteration) + 1,
                         "seconds": round(time.perf_counter() - start, 2)})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "auc"}), flush=True)
    result = {"tag": args.tag, "date": str(date.today()), "host": platform.node(), "model": "xgboost "
              + xgboost.__version__, "features": names, "classes": list(classes), "test_events": int(len(y_test)),
              "train_files": args.train, "test_files": args.test, "rows": rows}
    out = RESULTS / f"baseline_gbdt_{args.tag}.json"
    out.write_text(json.dumps(result, indent=2))
    print("\n| labelled events | XGBoost on high-level features (mean AUC) |\n|---|---|")
    for n in sorted({r["n_train"] for r in rows}):
        v = [r["mean_auc"] for r in rows if r["n_train"] == n]
        print(f"| {n:,} | {np.mean(v):.4f} ± {(max(v) - min(v)) / 2:.4f} |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
