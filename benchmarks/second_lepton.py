"""Teacher forced on held-out events, the chance a backbone gives a second lepton right after the first,
per process, beside the data's fraction of events with a lepton that have a second one.

    python benchmarks/second_lepton.py --backbone runs/more/feature_logits_seed0 --tokenizer runs/anom/tokenizer \
        --store runs/anom/test_tokens.h5 --out benchmarks/results/second_lepton_feature_logits_seed0.json

Processes with one W (W+jets, single top) almost never have two leptons; if the backbone still gives a
second one a few percent, generated events inherit it: the miss is in the fit, not in the sampling.
Objects come type by type, so a second lepton, if any, is the token after the first.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def after_first_lepton(probs: torch.Tensor, targets: torch.Tensor, is_lepton: torch.Tensor) -> tuple[list, int]:
    """(the predicted chance of a lepton code at the token after each sequence's first lepton, the number
    of sequences with two or more leptons), from `probs` (B, T, vocab) predicting `targets` (B, T)."""
    n_codes = len(is_lepton)
    lepton = (targets >= 0) & (targets < n_codes) & is_lepton[targets.clamp(0, n_codes - 1)]
    rows, at = (lepton & (lepton.cumsum(1) == 1)).nonzero(as_tuple=True)
    keep = at + 1 < targets.shape[1]
    rows, at = rows[keep], at[keep]
    return probs[rows, at + 1, :n_codes][:, is_lepton].sum(-1).tolist(), int((lepton.sum(1) >= 2).sum())


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.model import GPT
    from common.errors import UserError
    from conditional_generation import codes_of
    from events.model import ObjectType as T
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--store", required=True, type=Path, help="held-out token store with the process names")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    backbone = GPT.from_pretrained(args.backbone).eval()
    if backbone.vocab.multiplicities is not None:
        raise UserError(f"{args.backbone} announces each event's leptons in its multiplicity token: teacher forced, "
                        "the lepton after the first is told, not predicted; conditional_generation.py measures the "
                        "count shapes")
    is_lepton = codes_of(backbone, Tokenizer.from_pretrained(args.tokenizer), T.ELECTRON, T.MUON)
    data = TokenSequences.from_store(args.store, True, backbone.vocab)
    result = {"backbone": str(args.backbone), "store": str(args.store), "processes": {}}
    for process in backbone.vocab.processes:
        rows = np.flatnonzero(data.process_tokens == backbone.vocab.process_token(process))
        predicted, two = [], 0
        with torch.no_grad():
            for _, batch, features in data.sorted_batches(512, rows):
                logits = backbone(batch[:, :-1], features=None if features is None else features[:, :-1])[0]
                p, n = after_first_lepton(logits.float().softmax(-1), batch[:, 1:], is_lepton)
                predicted += p
                two += n
        if predicted:
            result["processes"][process] = {"events_with_a_lepton": len(predicted), "model": float(np.mean(predicted)),
                                            "data": two / len(predicted)}
            print(f"{process:14s} {len(predicted):6d} events with a lepton: P(a second lepton next) model "
                  f"{np.mean(predicted):.4f}, data {two / len(predicted):.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/second_lepton.py")
