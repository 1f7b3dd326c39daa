"""How much gradient clipping weights each training batch, by the batches' event length.

Pretraining draws each batch from a chunk of `data.length_bucket` batches' events sorted by length, so a
batch holds events of about one length (one multiplicity), and every step's gradient is clipped to
`train.clip`. Where the batches' gradient norms differ, clipping weights the batches differently: a
batch of norm g above the clip counts clip/g of its gradient. This measures, for a backbone and a token
store, the gradient norm of the loss pretraining minimizes (weighted and masked as the backbone was
trained) on the first chunk's batches, grouped by their mean sequence length, and on uniform batches.

    python benchmarks/batch_gradient_norms.py --backbone runs/more/steps3000_seed0 --store runs/more/tokens.h5 \\
        --out benchmarks/results/batch_gradient_norms_steps3000_seed0.json
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def gradient_norm(model, seqs, rows: np.ndarray, seed: int, tc) -> float:
    """The norm of the gradient of the loss pretraining minimizes (the losses weighted as in `tc`, the
    backbone's TrainSection) on the events `rows`, masks drawn from `seed`."""
    from backbone.pretrain import losses, weighted_loss

    model.zero_grad()
    batch, features = seqs.tensors(rows)
    terms = losses(model, batch, seqs, tc.mask_rate, torch.Generator().manual_seed(seed), nullcontext(),
                   features=features, density=bool(model.config.density_components), group=tc.weight_type > 0)
    weighted_loss(terms, tc).backward()
    return float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))  # the total norm, unclipped


def measure(model, seqs, batch_size: int, bucket: int, n_uniform: int, seed: int) -> dict:
    """Per mean length of the first chunk's length-sorted batches: how many and their mean gradient norm;
    and the norms of `n_uniform` uniform batches."""
    from backbone.config import TrainSection

    tc = TrainSection(**{k: v for k, v in model.pretrained_config.get("train_config", {}).get("train", {}).items()
                         if k in TrainSection.__dataclass_fields__})
    rng = np.random.default_rng(seed)
    model.train()
    by_length: dict[int, list[float]] = {}
    for i, rows in zip(range(bucket), seqs.index_batches(rng, batch_size, bucket=bucket)):
        by_length.setdefault(int(round(seqs.lengths[rows].mean())), []).append(gradient_norm(model, seqs, rows, i, tc))
    uniform = [gradient_norm(model, seqs, rng.choice(len(seqs), batch_size, replace=False), i, tc) for i in range(n_uniform)]
    return {"sorted": {str(k): {"batches": len(v), "mean_norm": float(np.mean(v))} for k, v in sorted(by_length.items())},
            "uniform": {"batches": n_uniform, "mean_norm": float(np.mean(uniform)), "norms": uniform}}


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.model import GPT
    from common.cli import nonnegative_int, positive_float, positive_int
    from common.errors import UserError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, help="a pretrained backbone")
    parser.add_argument("--store", required=True, type=Path, help="its training token store")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="events per batch (pretraining's)")
    parser.add_argument("--bucket", type=positive_int, default=50, help="batches per length-sorted chunk")
    parser.add_argument("--uniform", type=positive_int, default=5, help="uniform batches to measure beside")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the batches and masks")
    parser.add_argument("--clip", type=positive_float, default=1.0, help="the gradient clip to compare with")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = GPT.from_pretrained(args.backbone)
    seqs = TokenSequences.from_store(args.store, model.conditional, model.vocab)
    if args.batch_size > len(seqs):
        raise UserError(f"--batch-size {args.batch_size} is more than the {len(seqs)} events of {args.store}")
    result = {"backbone": args.backbone, "store": str(args.store), "batch_size": args.batch_size, "clip": args.clip,
              **measure(model, seqs, args.batch_size, args.bucket, args.uniform, args.seed)}
    print(f"{'mean length':>11s} {'batches':>8s} {'gradient norm':>14s} {'weight after clipping':>22s}")
    for length, r in result["sorted"].items():
        print(f"{length:>11s} {r['batches']:8d} {r['mean_norm']:14.2f} {min(1.0, args.clip / r['mean_norm']):22.3f}")
    u = result["uniform"]["mean_norm"]
    print(f"{'uniform':>11s} {args.uniform:8d} {u:14.2f} {min(1.0, args.clip / u):22.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "benchmarks/batch_gradient_norms.py")
