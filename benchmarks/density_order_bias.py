"""How far the sampler's pt order moves the density head's draws, given the true event before each object.

For every object that follows an object of its group (a jet after a jet, a lepton after a lepton) in a
held-out token store, teacher forced on the true tokens and features: the fraction of the head's free
draws of log pt above the log pt of the object before it (the mass the head leaks past the bound), and
the mean shift, against the true log pt, of draws made free and truncated at the bound as the sampler
makes them (in percent of pt). A head trained with `model.density_pt_order` is trained on the truncated
density, so its truncated draws should not be shifted.

    python benchmarks/density_order_bias.py --backbone runs/ema/seed0 --store runs/anom/test_tokens.h5 \\
        --out benchmarks/results/density_order_bias_ema_seed0.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@torch.no_grad()
def measure(model, seqs, seed: int = 0, batch_size: int = 512) -> dict:
    """Per process and overall: objects bounded, leak fraction, mean shift of free and truncated draws."""
    from backbone.density import code_group, upper_log_pt

    hybrid = bool(model.config.n_features)
    generator = torch.Generator().manual_seed(seed)
    head = model.density
    groups = code_group(seqs.code_info[0].tolist())  # the bounds the sampler keeps, whatever the head was trained on
    rows_of, true, free, truncated, bound = [], [], [], [], []
    for rows, idx, features in seqs.sorted_batches(batch_size):
        hidden = model.hidden_states(idx[:, :-1], features=features[:, :-1] if hybrid else None)
        targets = idx[:, 1:]
        mixture, z, _ = model.object_densities(hidden, targets, features[:, 1:])
        is_object = (targets >= 0) & (targets < model.config.n_codes)
        z_all = head.to_density(features[:, 1:].flatten(0, 1)).view(*targets.shape, -1)[..., 0]
        upper = upper_log_pt(targets, z_all, groups)[is_object]
        rows_of.append(np.repeat(np.asarray(rows), is_object.sum(1).numpy()))
        true.append(z[:, 0])
        free.append(mixture.sample(generator)[:, 0])
        truncated.append(mixture.sample(generator, upper)[:, 0])
        bound.append(upper)
    rows, true, free, truncated, bound = (np.concatenate(x) if isinstance(x[0], np.ndarray) else torch.cat(x).numpy()
                                          for x in (rows_of, true, free, truncated, bound))
    scale = float(head.feature_std[0])  # density log pt is normalized: back to log pt, then percent of pt
    bounded = np.isfinite(bound)
    process = seqs.info["process"][rows]

    def stats(sel: np.ndarray) -> dict:
        shift = lambda draws: float(100 * np.expm1(scale * np.mean(draws[sel] - true[sel])))  # noqa: E731
        return {"objects": int(sel.sum()), "leak": float(np.mean(free[sel] > bound[sel])),
                "free_shift_percent": shift(free), "truncated_shift_percent": shift(truncated)}

    out = {"all": stats(bounded)}
    for i, name in enumerate(seqs.process_names):
        out[name] = stats(bounded & (process == i))
    return out


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.model import GPT
    from common.cli import nonnegative_int
    from common.errors import UserError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, help="a backbone with a density head")
    parser.add_argument("--store", required=True, type=Path, help="held-out token store with features")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed of the draws")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    model = GPT.from_pretrained(args.backbone)
    if not model.config.density_components:
        raise UserError(f"{args.backbone} has no density head: nothing to measure")
    seqs = TokenSequences.from_store(args.store, model.conditional, model.vocab)
    result = {"backbone": args.backbone, "store": str(args.store),
              "pt_order": model.config.density_pt_order, "processes": measure(model, seqs, args.seed)}
    print(f"{args.backbone} (density_pt_order {model.config.density_pt_order}): objects after one of their group")
    print(f"{'process':14s} {'objects':>8s} {'leak':>6s} {'free draw shift':>16s} {'truncated draw shift':>21s}")
    for name, r in result["processes"].items():
        print(f"{name:14s} {r['objects']:8d} {r['leak']:6.3f} {r['free_shift_percent']:+15.2f}% "
              f"{r['truncated_shift_percent']:+20.2f}%")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "benchmarks/density_order_bias.py")
