"""Why the masked-token score ranks signals below the background, and gets worse with training.

    python benchmarks/masked_study.py --backbone runs/anom/backbone --tokenizer runs/anom/tokenizer \
        --snapshots runs/anom/snap_500 runs/anom/snap_1000 runs/anom/snap_1500 runs/anom/snap_2000 \
        --background data/anom/{ttbar,wjets,ww,single_top_t,single_top_s,tw_proxy}_s2.h5 \
        --signal data/anom/tttt_proxy_s2.h5 --out benchmarks/results/masked_study_cpu.json

For each pretraining checkpoint (the weights of `--snapshots`, the architecture of `--backbone`):
the four-top AUC against the SM mix of the masked cross-entropy and of its calibrated form
(`masked_surprise`), the Spearman correlation of each with the number of objects on the SM mix, and
the mean masked cross-entropy per object count (what the model finds easy to fill in).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import awkward as ak
import numpy as np


def load_snapshot(backbone: Path, snapshot: Path):
    """The backbone of folder `backbone` with the weights of training checkpoint `snapshot`."""
    from safetensors.torch import load_file

    from backbone.model import GPT

    model = GPT.from_pretrained(backbone)
    tensors = load_file(str(snapshot / "model.safetensors"))  # the model's state dict, the RNG and extras
    model.load_state_dict({k: v for k, v in tensors.items() if k in model.state_dict()})
    step = json.loads((snapshot / "state.json").read_text())["loop"]["step"]
    return model.eval(), step


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import spearmanr

    from events.io import read_events
    from finetune.data import unlabelled_sequences
    from finetune.metrics import binary_metrics
    from finetune.scores import masked_scores
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--snapshots", nargs="+", required=True, type=Path, help="checkpoint folders")
    parser.add_argument("--background", nargs="+", required=True, type=Path)
    parser.add_argument("--signal", required=True, type=Path)
    parser.add_argument("--events", type=int, default=1000, help="events read per file")
    parser.add_argument("--n-masks", type=int, default=4)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    tokenizer = Tokenizer.from_pretrained(args.tokenizer)
    samples = {p: read_events(p)[:args.events] for p in [*args.background, args.signal]}
    tokens = {p: tokenizer.encode(e, features=True) for p, e in samples.items()}
    n_objects = {p: ak.to_numpy(ak.num(e.objects)) for p, e in samples.items()}
    rows = []
    for snap in args.snapshots:
        model, step = load_snapshot(args.backbone, snap)
        scores = {p: masked_scores(model, unlabelled_sequences([t], model.vocab, model.conditional,
                                                               model.config.block_size, str(p)), "cpu",
                                   n_masks=args.n_masks) for p, t in tokens.items()}
        row = {"step": step}
        bkg_objects = np.concatenate([n_objects[p] for p in args.background])
        for c in ("masked", "masked_surprise"):
            b = np.concatenate([scores[p][c] for p in args.background])
            s = scores[args.signal][c]
            ok_b, ok_s = np.isfinite(b), np.isfinite(s)
            row[c] = {"auc": round(binary_metrics(np.r_[np.zeros(ok_b.sum()), np.ones(ok_s.sum())],
                                                  np.r_[b[ok_b], s[ok_s]])["auc"], 4),
                      "spearman_with_objects_sm": round(float(spearmanr(b[ok_b], bkg_objects[ok_b])[0]), 3),
                      "mean_by_objects_sm": {int(k): round(float(b[ok_b][bkg_objects[ok_b] == k].mean()), 3)
                                             for k in np.unique(bkg_objects[ok_b]) if (bkg_objects[ok_b] == k).sum() >= 20}}
        rows.append(row)
        print(f"step {step}: four tops vs SM mix AUC masked {row['masked']['auc']:.3f} "
              f"(Spearman with objects {row['masked']['spearman_with_objects_sm']:+.2f}), masked_surprise "
              f"{row['masked_surprise']['auc']:.3f} ({row['masked_surprise']['spearman_with_objects_sm']:+.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "events_per_file": args.events,
                                    "n_masks": args.n_masks, "signal": args.signal.stem, "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/masked_study.py")
