"""What the baselines share with each other and with `finetune.data_efficiency`: the first events of
each file, and the same stratified training subsamples and class weights."""
from __future__ import annotations

import warnings
from pathlib import Path

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
    from finetune.train import class_weights

    is_val = np.random.default_rng([seed, 5]).random(len(y)) < val_fraction
    train = subsample(y, np.flatnonzero(~is_val), n, seed)
    val = subsample(y, np.flatnonzero(is_val), max(n // 5, 50), seed + 1)
    return train, val, class_weights(y[train], int(y.max()) + 1).numpy()[y[train]]


RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, tag: str, result: dict, folder: Path = RESULTS) -> None:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}_{tag}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {out}")


def run_baseline(args, name: str, title: str, y: np.ndarray, y_test: np.ndarray, classes: tuple[str, ...],
                 train_and_predict, meta: dict) -> None:
    """Every size x seed: `train_and_predict(train, val, weight, seed, n_classes)` -> (test probabilities,
    extra row fields); mean AUC (binary tasks: and background rejection) per row, written to
    benchmarks/results/<name>_<tag>.json with `meta`, and a markdown table of `title`."""
    import json
    import platform
    import time
    from datetime import date

    from finetune.metrics import classification_metrics

    rows = []
    for n in args.sizes:
        for seed in args.seeds:
            train, val, weight = training_split(y, n, seed, args.val_fraction)
            start = time.perf_counter()
            probs, extra = train_and_predict(train, val, weight, seed, len(classes))
            m = classification_metrics(y_test, probs, classes)
            rows.append({"n_train": int(len(train)), "seed": seed, "mean_auc": m["mean_auc"], "auc": m["auc"],
                         "accuracy": m["accuracy"], **{k: v for k, v in m.items() if k.startswith("rejection")},
                         **extra, "seconds": round(time.perf_counter() - start, 2)})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "auc"}), flush=True)
    result = {"tag": args.tag, "date": str(date.today()), "host": platform.node(), **meta, "classes": list(classes),
              "test_events": int(len(y_test)), "train_files": args.train, "test_files": args.test, "rows": rows}
    print(f"\n| labelled events | {title} (mean AUC) |\n|---|---|")
    for n in sorted({r["n_train"] for r in rows}):
        v = [r["mean_auc"] for r in rows if r["n_train"] == n]
        print(f"| {n:,} | {np.mean(v):.4f} ± {(max(v) - min(v)) / 2:.4f} |")
    write_result(name, args.tag, result, args.out)


def n_subjettiness(events, n_max: int = 3, radius: float = 0.8) -> np.ndarray:
    """(N, n_max) N-subjettiness tau_1..tau_n of each jet from its constituents, with exclusive-kt axes
    (NaN where the jet has fewer than n_max constituents)."""
    import awkward as ak
    import fastjet

    from events.kinematics import cartesian_to_ptetaphi, delta_r, ptetaphim_to_cartesian
    from events.model import ObjectType
    from events.reco import silence_fastjet_banner

    silence_fastjet_banner()
    c = events.of_type(ObjectType.CONSTITUENT)
    ok = ak.to_numpy(ak.num(c)) >= n_max
    c = c[ok]
    px, py, pz, e = ptetaphim_to_cartesian(c.pt, c.eta, c.phi, c.mass)
    vectors = ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D")
    sequence = fastjet.ClusterSequence(vectors, fastjet.JetDefinition(fastjet.kt_algorithm, radius))
    total = ak.sum(c.pt, axis=1)
    tau = np.full((len(events), n_max), np.nan)
    for n in range(1, n_max + 1):
        with warnings.catch_warnings():  # fastjet's Python layer warns about kt, the algorithm it names as safe
            warnings.simplefilter("ignore", UserWarning)
            axes = sequence.exclusive_jets(n_jets=n)
        _, eta, phi = cartesian_to_ptetaphi(axes.px, axes.py, axes.pz)
        pairs = ak.cartesian([ak.zip({"eta": c.eta, "phi": c.phi}), ak.zip({"eta": eta, "phi": phi})], nested=True)
        nearest = ak.min(delta_r(pairs["0"].eta, pairs["0"].phi, pairs["1"].eta, pairs["1"].phi), axis=2)
        tau[ok, n - 1] = ak.to_numpy(ak.sum(c.pt * nearest, axis=1) / (total * radius))
    return tau


def jet_features(events) -> dict[str, np.ndarray]:
    """What a top tagger cuts on, per jet: constituent count, pt and mass of the constituent sum, tau_21 and
    tau_32, pT_D, girth, and the leading constituent's pt fraction."""
    import awkward as ak

    from events.compare import constituent_jet_mass
    from events.model import ObjectType

    c = events.of_type(ObjectType.CONSTITUENT)
    pt = ak.sum(c.pt, axis=1)
    tau = n_subjettiness(events)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"constituents": events.count(ObjectType.CONSTITUENT).astype(float),
                "pt": ak.to_numpy(pt).astype(float), "mass": constituent_jet_mass(events),
                "tau21": tau[:, 1] / tau[:, 0], "tau32": tau[:, 2] / tau[:, 1],
                "ptD": ak.to_numpy(np.sqrt(ak.sum(c.pt ** 2, axis=1)) / pt).astype(float),
                "girth": ak.to_numpy(ak.sum(c.pt * np.hypot(c.eta, c.phi), axis=1) / pt).astype(float),
                "leading fraction": ak.to_numpy(ak.max(c.pt, axis=1) / pt).astype(float)}
