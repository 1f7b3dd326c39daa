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


import numpy as np
from baseline_data import baseline_parser, capped_events, run_baseline


def features(files: list[str], max_events: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features (N, F), ntop labels (N,), feature names) of the first `max_events` of each file."""
    from backbone.evaluate import observables

    events = capped_events(files, max_events)
    obs = observables(events)
    return np.stack(list(obs.values()), axis=1), events.info["ntop"].astype(np.int64), list(obs)


def main() -> None:
    import xgboost

    args = baseline_parser(__doc__).parse_args()
    x, y, names = features(args.train, args.max_events_per_file)
    x_test, y_test, _ = features(args.test, args.max_events_per_file)

    def train_and_predict(train, val, weight, seed, n_classes):
        model = xgboost.XGBClassifier(n_estimators=500, learning_rate=0.05, max_depth=4, subsample=0.8,
                                      colsample_bytree=0.8, early_stopping_rounds=30, random_state=seed,
                                      n_jobs=2, objective="multi:softprob", num_class=n_classes)
        model.fit(x[train], y[train], sample_weight=weight, eval_set=[(x[val], y[val])], verbose=False)
        return model.predict_proba(x_test), {"trees": int(model.best_iteration) + 1}

    run_baseline(args, "baseline_gbdt", "XGBoost on high-level features", y, y_test, train_and_predict,
                 {"model": "xgboost " + xgboost.__version__, "features": names})


if __name__ == "__main__":
    main()
