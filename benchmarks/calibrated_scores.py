"""The `calibrated` score against the density scores and the one-variable cuts, and its uniformity.

    python benchmarks/calibrated_scores.py --data data/bundled --model event-small \
        --out benchmarks/results/calibrated_scores_event_small.json

Each Standard Model file (PROCESS_s2.h5, held out from training) is cut in two: its second half,
in the training mix's proportions (the PROCESS_s1.h5 event counts), is the reference the `calibrated`
method is calibrated on; its first half, in the same proportions, is the held-out SM mix. On the
held-out mix: the p-values exp(-calibrated) per object count (a histogram per count, and the
Kolmogorov-Smirnov distance to uniform beside the bound that uniform p-values of as many events stay
under in 99% of samples), and the Spearman correlation of every score with the object count. Then
the ROC AUC of every signal (all of PROCESS_s2.h5) against the held-out mix, for every score and
for the cuts of benchmarks/anomaly_table.py, and each score's worst case over the signals.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SM = ("ttbar", "wjets", "ww", "single_top_t", "single_top_s", "tw_proxy")
SIGNALS = ("zprime_ttbar", "wprime_lnu", "qstar_qg", "tttt_proxy", "ttt_proxy")
SCORES = ("calibrated", "composition", "kinematics", "density_nll", "surprise")


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import kstwo, spearmanr

    from anomaly_table import REFERENCES, mix_counts, references  # benchmarks/ is on sys.path as a script
    from events.io import open_events, read_events
    from events.model import Events
    from finetune.metrics import binary_metrics
    from finetune.plots import plot_uniformity
    from finetune.scorer import AnomalyScorer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/bundled"), help="folder of PROCESS_s1.h5, _s2.h5")
    parser.add_argument("--model", default="event-small", help="bundled model name or backbone folder")
    parser.add_argument("--tokenizer", help="tokenizer folder (a backbone folder needs one)")
    parser.add_argument("--background", nargs="+", default=list(SM))
    parser.add_argument("--signals", nargs="+", default=list(SIGNALS))
    parser.add_argument("--class-events", type=int, default=200, help="method calibrated: events per class")
    parser.add_argument("--out", type=Path, required=True, help="results JSON (the plot beside it, .png)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    scorer = AnomalyScorer.from_pretrained(args.model, args.tokenizer, ["calibrated", "density"], device="cpu",
                                           class_events=args.class_events)
    weights = {}
    for p in args.background:
        with open_events(args.data / f"{p}_s1.h5") as reader:
            weights[p] = float(len(reader))
    events = {p: read_events(args.data / f"{p}_s2.h5") for p in [*args.background, *args.signals]}
    halves = {p: len(events[p]) // 2 for p in args.background}
    take = mix_counts(halves, weights)
    scorer.fit([events[p][halves[p]:halves[p] + take[p]] for p in args.background])
    held_out = {p: np.arange(take[p]) for p in args.background}
    held_out.update({p: np.arange(len(events[p])) for p in args.signals})
    columns = {}
    for p, rows in held_out.items():
        scores = scorer.score(events[p][rows])
        refs = references(args.data / f"{p}_s2.h5")
        columns[p] = {**{k: scores[k] for k in SCORES}, **{k: refs[k][rows] for k in REFERENCES}}
        print(f"scored {p}: {len(rows)} events", flush=True)
    mix = {k: np.concatenate([columns[p][k] for p in args.background]) for k in columns[args.background[0]]}

    counts = mix["objects"].astype(int)
    p_values, uniformity = {}, {}
    for n in np.unique(counts):
        p = np.exp(-mix["calibrated"][counts == n])
        if len(p) >= 20:
            ecdf = np.arange(1, len(p) + 1) / len(p)
            q = np.sort(p)
            distance = float(max(np.max(ecdf - q), np.max(q - (ecdf - 1 / len(p)))))
            p_values[f"{n} objects"] = p
            uniformity[int(n)] = {"events": len(p), "ks_distance": round(distance, 4),
                                  "ks_99": round(float(kstwo(len(p)).isf(0.01)), 4),
                                  "below_0.05": round(float((p < 0.05).mean()), 4)}
    plot = args.out.with_suffix(".png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_uniformity(p_values, plot)

    names = [*SCORES, *REFERENCES]
    auc = {}
    for signal in args.signals:
        auc[signal] = {}
        for k in names:
            b, s = mix[k][np.isfinite(mix[k])], columns[signal][k][np.isfinite(columns[signal][k])]
            auc[signal][k] = round(binary_metrics(np.r_[np.zeros(len(b)), np.ones(len(s))], np.r_[b, s])["auc"], 4)
    result = {
        "model": args.model, "class_events": args.class_events, "reference": {p: int(take[p]) for p in take},
        "classes": scorer.calibration.starts.tolist(), "class_sizes": scorer.calibration.class_events,
        "uniformity_per_object_count": uniformity,
        "spearman_with_objects_sm": {k: round(float(spearmanr(mix[k], mix["objects"])[0]), 3)
                                     for k in names if k != "objects"},
        "auc_vs_sm_mix": auc,
        "worst_auc": {k: min(auc[s][k] for s in args.signals) for k in names},
        "best_cut_per_signal": {s: max(REFERENCES, key=lambda r: auc[s][r]) for s in args.signals},
        "date": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - start, 1), "plot": plot.name,
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(f"reference {sum(take.values())} events, held-out SM mix {len(counts)}; classes from "
          f"{result['classes']} objects ({result['class_sizes']} events)")
    for n, u in uniformity.items():
        print(f"  {n:>2} objects: {u['events']:>4} events, KS {u['ks_distance']:.3f} (99%: {u['ks_99']:.3f}), "
              f"P(p < 0.05) {u['below_0.05']:.3f}")
    for signal in args.signals:
        best = result["best_cut_per_signal"][signal]
        print(f"{signal:<14} " + "  ".join(f"{k} {auc[signal][k]:.3f}" for k in SCORES)
              + f"  | best cut {best} {auc[signal][best]:.3f}")
    print("worst over signals: " + "  ".join(f"{k} {result['worst_auc'][k]:.3f}" for k in SCORES))
    print("Spearman with the object count (SM mix): " + ", ".join(
        f"{k} {result['spearman_with_objects_sm'][k]:+.2f}" for k in SCORES))
    print(f"wrote {args.out} and {plot}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/calibrated_scores.py")
