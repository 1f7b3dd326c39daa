"""A density head variant measured in minutes: a fresh head trained alone on a backbone's frozen trunk.

    python benchmarks/head_retrain.py --backbone runs/anom/backbone_multiplicity --train runs/anom/tokens.h5 \
        --components 32 --out runs/anom/backbone_multiplicity_k32

A trained backbone's density head is replaced by a fresh one (`--components` mixture components; default
the backbone's own number, the control), and only the head is trained, on the trunk's hidden states of the
training store's events, which stay fixed (computed once). The trunk and the token model are the
backbone's, so what the new backbone does differently is the head's alone: compare the folders written with
`backbone.likelihood` and `benchmarks/decode_fidelity.py`. Training a whole backbone with the change is the
recipe's way; this one isolates the head and costs minutes, not an hour. The held-out density per object
(`val_density`, head coordinates) is given beside the backbone's own jointly trained head on the same events.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


@torch.no_grad()
def trunk_states(model, seqs, rows: np.ndarray | None = None, batch_size: int = 1024):
    """(token ids (N, T), features (N, T, F), final hidden states (N, T - 1, n_embd)) of events `rows` (default
    every event), padded to the longest, the hidden states of the causal pass that predicts each next token."""
    rows = np.arange(len(seqs)) if rows is None else rows
    length = int(seqs.lengths[rows].max())
    idx, features = seqs.tensors(rows, length=length)
    hidden = torch.empty(len(rows), length - 1, model.config.n_embd)
    for start in range(0, len(rows), batch_size):
        part = slice(start, start + batch_size)
        hidden[part] = model.hidden_states(idx[part, :-1], features=features[part, :-1] if model.config.n_features
                                           else None)
    return idx, features, hidden


def with_fresh_head(model, components: int | None = None):
    """A copy of `model` whose density head is new (untrained), with `components` mixture components
    (default: the model's); everything else (the trunk, the token model, the head's view of the tokenizer)
    is the model's and frozen."""
    from backbone.model import GPT

    torch.manual_seed(0)
    fresh = GPT(replace(model.config, density_components=components or model.config.density_components))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("density.net.")}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    learnt = [k for k in missing if not k.startswith("density.net.")]
    if learnt or unexpected:
        raise ValueError(f"the backbone's weights do not fit its own config: missing {learnt}, unexpected {unexpected}")
    for name in model.DESCRIPTION:  # its source too, until save_pretrained names the new folder
        setattr(fresh, name, getattr(model, name))
    for name, p in fresh.named_parameters():
        p.requires_grad_(name.startswith("density."))
    return fresh


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out, training) event indices of n events: 2% held out, the same for every run."""
    order = np.random.default_rng(0).permutation(n)
    return order[:max(1, n // 50)], order[max(1, n // 50):]


def held_out(model, idx, features, hidden, rows: np.ndarray) -> float:
    """The mean density loss per object (head coordinates) of events `rows`."""
    with torch.no_grad():
        parts = [rows[i:i + 1024] for i in range(0, len(rows), 1024)]
        n = [int(((idx[r, 1:] >= 0) & (idx[r, 1:] < model.config.n_codes)).sum()) for r in parts]
        losses = [float(model.density_loss(hidden[r], idx[r, 1:], features[r, 1:])) for r in parts]
        return float(np.dot(losses, n) / sum(n))


def train_head(model, idx, features, hidden, train: np.ndarray, steps: int, batch_size: int, lr: float,
               seed: int) -> None:
    """Trains the head's parameters on random batches of events `train` (AdamW, warm-up, then cosine to a
    tenth of `lr`)."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = min(100, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup)) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    model.train()
    bar = tqdm(range(steps), desc="head", unit="step")
    for step in bar:
        rows = torch.from_numpy(rng.choice(train, batch_size))
        loss = model.density_loss(hidden[rows], idx[rows, 1:], features[rows, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.model import GPT
    from common.cli import UserError, nonnegative_int, positive_float, positive_int

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path, help="a trained backbone with a density head")
    parser.add_argument("--train", required=True, type=Path, help="its training token store (with --features)")
    parser.add_argument("--components", type=positive_int, help="the new head's mixture components "
                        "(default: the backbone's)")
    parser.add_argument("--steps", type=positive_int, default=3000)
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--lr", type=positive_float, default=2e-3)
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--out", required=True, type=Path, help="the backbone with the new head is written here")
    args = parser.parse_args(argv)
    model = GPT.from_pretrained(args.backbone)
    if not model.config.density_components or model.config.density_mode != "event":
        raise UserError(f"{args.backbone}: no event-mode density head to replace")
    seqs = TokenSequences.from_store(args.train, model.conditional, model.vocab)
    if seqs.features is None:
        raise UserError(f"{args.train}: no features (write it with python -m tokenizer.tokenize --features)")
    start = time.time()
    idx, features, hidden = trunk_states(model, seqs)
    fresh = with_fresh_head(model, args.components)
    val, train = split(len(seqs))  # the backbone's own head is measured on the held-out events too
    train_head(fresh, idx, features, hidden, train, args.steps, args.batch_size, args.lr, args.seed)
    result = {"backbone": str(args.backbone), "train": str(args.train), "events": len(seqs),
              "components": fresh.config.density_components, "steps": args.steps, "batch_size": args.batch_size,
              "lr": args.lr, "seed": args.seed,
              "held_out_events": len(val), "val_density": held_out(fresh, idx, features, hidden, val),
              "val_density_backbone_head": held_out(model, idx, features, hidden, val),
              "seconds": round(time.time() - start, 1)}
    fresh.save_pretrained(args.out, head_retrained=result)
    (args.out / "head_training.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("components", "val_density", "val_density_backbone_head", "seconds")}))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/head_retrain.py")
