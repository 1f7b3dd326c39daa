"""Held-out log-likelihood of objects' features under a backbone's density head, beside the per-code
Gaussian reference (no context), both in the stated space (log pt, eta, phi, log(1 + m), b-tag).

    python -m backbone.likelihood --backbone RUN --train tokens.h5 --test test_tokens.h5

Both stores must hold the objects' features (`tokenizer.tokenize --features`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from common.cli import add_model_arguments, resolve_models, run_cli


@torch.no_grad()
def object_coordinates(model, seqs, device="cpu", batch_size: int = 512):
    """(codes (N,), density coordinates z (N, D), feature masks (N, D), head log-density in the stated
    space (N,)) of every object of `seqs`, in store order."""
    from backbone.data import to_device

    n = len(seqs.codes)
    dims = model.density.n_dims
    codes, z_all = np.empty(n, np.int64), np.empty((n, dims), np.float32)
    mask_all, logp = np.empty((n, dims), np.float32), np.empty(n)
    hybrid = bool(model.config.n_features)
    for rows, idx, features in seqs.sorted_batches(batch_size):
        idx, features = to_device(idx, features, device)
        hidden = model.hidden_states(idx[:, :-1], causal=True, features=features[:, :-1] if hybrid else None)
        targets = idx[:, 1:]
        mixture, z, mask = model.object_densities(hidden, targets, features[:, 1:])
        lp = mixture.log_prob(z, mask) + model.density.log_jacobian(z, mask, physical=False)
        where = seqs.object_indices(rows)
        codes[where] = targets[(targets >= 0) & (targets < model.config.n_codes)].cpu().numpy()
        z_all[where], mask_all[where], logp[where] = z.cpu().numpy(), mask.cpu().numpy(), lp.cpu().numpy()
    return codes, z_all, mask_all, logp


def compare(model, train, test, device="cpu") -> dict:
    """Mean per-object log-density of the `test` objects under the head and under the per-code Gaussian
    fitted on the `train` objects (both TokenSequences), overall and per object type."""
    from backbone.density import PerCodeGaussian
    from events.model import ObjectType

    codes, z, _, _ = object_coordinates(model, train, device)
    reference = PerCodeGaussian.fit(torch.from_numpy(codes), torch.from_numpy(z), model.config.n_codes,
                                    model.density.circular)
    codes, z, mask, head = object_coordinates(model, test, device)
    # on the model's device: the Jacobian reads the head's buffers
    zt, mt, ct = (torch.from_numpy(a).to(device) for a in (z, mask, codes))
    ref = (reference.mixture(ct).log_prob(zt, mt) + model.density.log_jacobian(zt, mt, physical=False)).cpu().numpy()
    types = np.asarray(train.code_info[0])[codes] if train.code_info is not None else np.zeros(len(codes), int)
    out = {"objects": int(len(codes)), "head": float(head.mean()), "per_code_gaussian": float(ref.mean()),
           "space": "log pt, eta, phi, log(1 + m), b-tag (the features each type has)", "per_type": {}}
    for t in np.unique(types):
        sel = types == t
        out["per_type"][ObjectType(int(t)).name] = {"objects": int(sel.sum()), "head": float(head[sel].mean()),
                                                    "per_code_gaussian": float(ref[sel].mean())}
    return out


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.model import GPT

    parser = argparse.ArgumentParser(prog="python -m backbone.likelihood", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser, tokenizer=None)
    parser.add_argument("--train", required=True, type=Path, help="token store the reference is fitted on")
    parser.add_argument("--test", required=True, type=Path, help="held-out token store")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    resolve_models(args)
    model = GPT.from_pretrained(args.backbone)
    train = TokenSequences.from_store(args.train, model.conditional, model.vocab)
    test = TokenSequences.from_store(args.test, model.conditional, model.vocab)
    result = compare(model, train, test)
    print(f"held-out mean log-density per object ({result['objects']:,} objects; {result['space']}):")
    print(f"  density head {result['head']:.3f}   per-code Gaussian {result['per_code_gaussian']:.3f}")
    for t, r in result["per_type"].items():
        print(f"  {t:<9} head {r['head']:.3f}   per-code Gaussian {r['per_code_gaussian']:.3f}   ({r['objects']:,})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m backbone.likelihood")
