"""How much of the kinematics the density head restores, with the token model's errors taken out.

    python benchmarks/decode_fidelity.py --backbone runs/anom/backbone --tokenizer runs/anom/tokenizer \
        --events data/anom/ttbar_s1.h5 --n 10000 --out benchmarks/results/anomaly_density_cpu/decode_fidelity.json

Real events are tokenized, then decoded four ways from their own tokens: each code's centroid,
features drawn from the head given the real tokens and features before each object (teacher forcing:
`continuous`), drawn given the real tokens with the features drawn before fed back (`fed_back`, as
sampling does), and the head's means fed back (`mean`, as `sample.py --decode mean` does). Each is
compared with other real events of the same file (W1 against the floor, events.compare; and the top
candidates' mass windows). Sampling from scratch adds the token model's own errors (multiplicities,
which jets are b-tagged); this shows what the head itself does to pt, masses and angles.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import awkward as ak
import numpy as np
import torch


@torch.no_grad()
def head_decoded(model, tokenizer, tokens, vocab, conditional: bool, seed: int = 0, feedback: bool = False,
                 mean: bool = False):
    """The events of `tokens` with every object's features drawn from the head, given the real tokens
    before it: in the hybrid with their real features, and under the pt order below the real pt of the
    object before it, as in training; (events, objects clamped). With `feedback` the objects before
    each draw bring the features drawn for them instead (as sampling does), one position at a time: the
    head's own joint over an event's objects, with the token model's choices taken from the data. With
    `mean`, each object gets its mixture's mean instead of a draw."""
    from finetune.data import unlabelled_sequences

    seqs = unlabelled_sequences([tokens], vocab, conditional, model.config.block_size, "tokens")
    centroids = torch.from_numpy(tokenizer.code_features())
    drawn = np.empty(seqs.features.shape, dtype=np.float32)
    generator = torch.Generator().manual_seed(seed)
    clamped = 0
    for rows, idx, features in seqs.sorted_batches(512):
        targets = idx[:, 1:]
        is_object = (targets >= 0) & (targets < vocab.n_codes)
        codes = targets[is_object]
        mask = model.density.code_mask[codes]
        column = torch.arange(targets.shape[1]).expand_as(targets)[is_object]
        fed = features.clone()  # (B, T, n_features): what each position brings as input
        x = torch.empty(len(codes), fed.shape[-1])
        # fed back, one pass per position that holds an object (the prefix and the ends hold none)
        for step in column.unique().tolist() if feedback else (None,):
            hidden = model.hidden_states(idx[:, :-1], features=fed[:, :-1] if model.config.n_features else None)
            mixture, _, _ = model.object_densities(hidden, targets, fed[:, 1:])
            pick = column == step if feedback else slice(None)
            part = mixture.select(pick)
            z = part.mean(part.upper) if mean else part.sample(generator, part.upper)
            x[pick], n = model.density.clamp(model.density.from_density(z, centroids[codes[pick]], mask[pick]), mask[pick])
            clamped += n
            if feedback:
                fed[:, step + 1][is_object[:, step]] = x[pick]
        drawn[seqs.object_indices(rows)] = x.numpy()
    batch = type(tokens)(tokens.ids, tokens.info, tokens.process_names, ak.unflatten(drawn, np.diff(seqs.offsets)))
    return tokenizer.decode(batch), clamped


def main(argv: list[str] | None = None) -> int:
    from common.cli import UserError, positive_int
    from conditional_generation import pair_angles
    from events.compare import ratio, w1_table
    from backbone.model import GPT
    from events.io import read_events
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--events", required=True, type=Path, help="real events (one process)")
    parser.add_argument("--n", type=positive_int, default=10000, help="events decoded; the rest of the file is the reference")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    model = GPT.from_pretrained(args.backbone)
    tokenizer = Tokenizer.from_pretrained(args.tokenizer)
    events = read_events(args.events)
    if args.n >= len(events):
        raise UserError(f"{args.events}: {len(events)} events, so --n {args.n} leaves none as the reference: "
                        "decode fewer")
    decoded, reference = events[:args.n], events[args.n:]
    tokens = tokenizer.encode(decoded, features=True)
    centroid = tokenizer.decode(type(tokens)(tokens.ids, tokens.info, tokens.process_names))
    continuous, clamped = head_decoded(model, tokenizer, tokens, model.vocab, model.conditional)
    fed_back, clamped_fed_back = head_decoded(model, tokenizer, tokens, model.vocab, model.conditional, feedback=True)
    means, clamped_means = head_decoded(model, tokenizer, tokens, model.vocab, model.conditional, feedback=True,
                                        mean=True)
    result = {"date": time.strftime("%Y-%m-%d"), "events": str(args.events), "decoded": len(decoded),
              "reference": len(reference), "clamped_objects": clamped, "clamped_objects_fed_back": clamped_fed_back,
              "centroid": w1_table(reference, centroid), "continuous": w1_table(reference, continuous),
              "fed_back": w1_table(reference, fed_back), "mean": w1_table(reference, means),
              "clamped_objects_mean": clamped_means,
              # the leading jet pair's angles and the top candidates' mass windows, the data's first
              "pairs": {k: pair_angles(e) for k, e in (("data", reference), ("centroid", centroid),
                                                       ("continuous", continuous), ("fed_back", fed_back),
                                                       ("mean", means))}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    columns = ("centroid", "continuous", "fed_back", "mean")
    print(f"{'W1/floor':<24}" + "".join(f"{c:>12}" for c in columns))
    for name in result["centroid"]:
        print(f"{name:<24}" + "".join(f"{ratio(result[c][name]):>12.1f}" for c in columns))
    print("m(jj) in the W window / m(bjj) in the top window: " + ", ".join(
        f"{k} {v['w_window']:.3f} / {v['top_window']:.3f}" for k, v in result["pairs"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/decode_fidelity.py")
