"""Every anomaly score beside the one-variable cuts a physicist would try first, on the same events.

    python benchmarks/anomaly_table.py --events data/anom --scores runs/anom/scores \
        --background ttbar wjets ww single_top_t single_top_s tw_proxy \
        --signals zprime_ttbar zprime2500_ttbar wprime_tb wprime_lnu qstar_qg scalar_zz4l ttt_proxy tttt_proxy \
        --out benchmarks/results/anomaly_density_cpu.json

For each signal, against ttbar alone and against the SM mix (the background files together): ROC
AUC and maximum SIC of every score column of the score files (`<process>_s2.scores.h5` in --scores) and of
the references computed from the event files (`<process>_s2.h5` in --events): HT, leading-jet pt,
leading-lepton pt, MET and the numbers of jets, b-jets, leptons and objects. Also, on the SM mix,
the Spearman correlation of each score with the number of objects (a score that follows it counts
objects instead of finding oddities).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REFERENCES = ("HT", "leading jet pt", "leading lepton pt", "MET", "jets", "b-jets", "leptons", "objects")


def references(path: Path) -> dict[str, np.ndarray]:
    """The one-variable references of every event of an event file, in file order."""
    from events.io import read_events

    return cut_variables(read_events(path))


def cut_variables(events) -> dict[str, np.ndarray]:
    """The event number and the one-variable references (REFERENCES) of every event of `events`."""
    import awkward as ak

    from events.model import ObjectType as T
    from events.physics import ht, leading_pt

    jets, leptons = (T.JET, T.BJET), (T.ELECTRON, T.MUON)
    # no jet (lepton): a leading pt of 0, where a cut puts such events
    return {"event": events.info["event"], "HT": ht(events),
            "leading jet pt": np.nan_to_num(leading_pt(events, *jets), nan=0.0),
            "leading lepton pt": np.nan_to_num(leading_pt(events, *leptons), nan=0.0),
            "MET": events.met[0].astype(float), "jets": events.count(*jets).astype(float),
            "b-jets": events.count(T.BJET).astype(float), "leptons": events.count(*leptons).astype(float),
            "objects": ak.to_numpy(ak.num(events.objects)).astype(float)}


def mix_counts(available: dict[str, int], weights: dict[str, float] | None) -> dict[str, int]:
    """How many events of each background process make the SM mix: all of them (None), or the largest
    sample in the proportions `weights` (the training mix's event counts) that the files hold."""
    if not weights:
        return dict(available)
    if set(weights) != set(available):
        raise SystemExit(f"--mix names {sorted(weights)}, the background is {sorted(available)}")
    total = sum(weights.values())
    size = min(available[p] * total / weights[p] for p in available)  # the process that runs out first
    return {p: int(size * weights[p] / total) for p in available}


def table(events_dir: Path, scores_dir: Path, background: list[str], signals: list[str], suffix: str,
          mix_weights: dict[str, float] | None = None) -> dict:
    from scipy.stats import spearmanr

    from finetune.metrics import binary_metrics
    from finetune.score_store import NOT_SCORES, read_scores

    columns: dict[str, dict[str, np.ndarray]] = {}
    for process in background + signals:
        refs = references(events_dir / f"{process}{suffix}.h5")
        scores = read_scores(scores_dir / f"{process}{suffix}.scores.h5")  # as `anomaly score --out FOLDER/` names it
        if not np.array_equal(scores["event"], refs["event"]):
            raise SystemExit(f"{process}: the score file's events are not the event file's, in order")
        columns[process] = {**{k: v for k, v in scores.items() if k not in NOT_SCORES},
                            **{k: refs[k] for k in REFERENCES}}
    names = list(columns[background[0]])
    counts = mix_counts({p: len(columns[p]["objects"]) for p in background}, mix_weights)
    mix = {k: np.concatenate([columns[p][k][:counts[p]] for p in background]) for k in names}
    out = {"scores": [n for n in names if n not in REFERENCES], "references": list(REFERENCES), "signals": {},
           "spearman_with_objects_sm": {n: float(spearmanr(mix[n], mix["objects"], nan_policy="omit")[0])
                                        for n in names if n != "objects"}}
    for signal in signals:
        out["signals"][signal] = {}
        for label, bkg in (("ttbar", columns[background[0]]), ("SM mix", mix)):
            rows = {}
            for n in names:
                b, s = bkg[n][np.isfinite(bkg[n])], columns[signal][n][np.isfinite(columns[signal][n])]
                m = binary_metrics(np.r_[np.zeros(len(b)), np.ones(len(s))], np.r_[b, s])
                rows[n] = {"auc": round(m["auc"], 4), "max_sic": round(m["max_sic"], 3)}
            out["signals"][signal][label] = rows
    out["events"] = {p: int(len(columns[p]["objects"])) for p in columns}
    out["sm_mix"] = counts
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", required=True, type=Path, help="folder of the event files")
    parser.add_argument("--scores", required=True, type=Path,
                        help="folder of their score files (NAME.scores.h5, as anomaly score --out FOLDER/ writes)")
    parser.add_argument("--background", nargs="+", required=True, help="SM processes, the first alone as well")
    parser.add_argument("--signals", nargs="+", required=True)
    parser.add_argument("--suffix", default="_s2", help="file name suffix (default _s2: the test samples)")
    parser.add_argument("--mix", nargs="+", default=[], metavar="PROCESS=COUNT",
                        help="the SM mix in these proportions (the training mix's event counts), as many events as "
                             "the files allow (default: every event of every background file)")
    parser.add_argument("--note", default="", help="what was run, recorded with the numbers")
    parser.add_argument("--out", required=True, type=Path, help="results JSON")
    args = parser.parse_args(argv)
    weights = {k: float(v) for k, v in (item.split("=", 1) for item in args.mix)}
    result = table(args.events, args.scores, args.background, args.signals, args.suffix, weights)
    result.update(date=time.strftime("%Y-%m-%d"), note=args.note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for signal, by_bkg in result["signals"].items():
        rows = by_bkg["SM mix"]
        best_ref = max(REFERENCES, key=lambda r: rows[r]["auc"])
        print(f"{signal:<18} vs SM mix: " + "  ".join(f"{k} {rows[k]['auc']:.3f}" for k in result["scores"])
              + f"  | best cut {best_ref} {rows[best_ref]['auc']:.3f}")
    print("Spearman with the object count (SM mix): " + ", ".join(
        f"{k} {v:+.2f}" for k, v in result["spearman_with_objects_sm"].items() if k in result["scores"]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/anomaly_table.py")
