"""Where does a conditional backbone's generation part from its process? On the held-out store's events of
one process:

1. the chance that another jet follows k jets, P(n_jets > k | n_jets >= k), as the backbone predicts it
   (teacher forced, restricted to codes) on the real tokens read with the real features, with features
   its density head draws one object after the other (what generation feeds back), and with each code's
   centroid. Equal rows clear the features: the drift is then in the tokens;
2. the events completed by the backbone from their first m real objects (tokens and features), m = 0
   (plain generation), 1, 2, 3: the mean number of jets against the same events' own. Where the deficit
   vanishes once m objects are given, it comes from the first m draws;
3. the first object's codes: the backbone's probability and the data's frequency in bins of the code's
   pt (its centroid). An 8192-code softmax leaks mass into codes a process never has.

Sampling takes sample.py's --top-p and --guidance, so a remedy is measured on the same events.

    python benchmarks/generation_drift.py --backbone runs/more/uniform_batches_seed0 \
        --tokenizer runs/anom/tokenizer --store runs/anom/test_tokens.h5 --process ttbar --top-p 1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from conditional_generation import MAX_JETS, hazard_sums, jet_codes, leading_jets

PREFIXES = (0, 1, 2, 3)
PT_BINS = (0, 30, 50, 70, 100, 150, 200, 300, np.inf)  # GeV, of the first object's code centroid


@torch.no_grad()
def drawn_features(backbone, tokenizer, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, T, n_features) hybrid input features for the objects of `batch`, each drawn after the tokens and
    drawn features before it as the sampler draws and feeds them back (`draw_features`, bounded by the
    grammar's pt order)."""
    from backbone.generate import draw_features
    from backbone.grammar import Grammar

    n_codes = backbone.config.n_codes
    fed = torch.zeros(*batch.shape, backbone.config.n_features)
    grammar = Grammar(backbone.vocab, tokenizer, len(batch), "cpu")
    for t in range(1, batch.shape[1]):
        tokens, z = batch[:, t], None
        is_code = tokens < n_codes
        if is_code.any():
            hidden = backbone.hidden_states(batch[:, :t], features=fed[:, :t])[:, -1]
            z, x = draw_features(backbone, hidden, tokens.clamp(max=n_codes - 1), generator,
                                 grammar.upper_log_pt(tokens))
            fed[:, t] = torch.where(is_code[:, None], x, fed[:, t])
        grammar.update(tokens, None if z is None else z[:, 0])
    return fed


@torch.no_grad()
def predicted_hazards(backbone, batch: torch.Tensor, features: torch.Tensor, is_jet: torch.Tensor
                      ) -> tuple[np.ndarray, np.ndarray]:
    """`hazard_sums` of the backbone's predictions on `batch` read with `features`."""
    return hazard_sums(backbone(batch[:, :-1], features=features[:, :-1])[0], batch, is_jet)


@torch.no_grad()
def completed_jets(backbone, tokenizer, batch: torch.Tensor, features: torch.Tensor, m: int,
                   generator: torch.Generator, top_p: float, guidance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(the rows of `batch` with at least `m` objects, the number of jets of each completed from its first
    `m` objects by the backbone, sampled as sample.py samples)."""
    from backbone.generate import generate
    from backbone.grammar import Grammar
    from backbone.sampling import truncation_groups

    vocab, n_codes = backbone.vocab, backbone.config.n_codes
    rows = (batch[:, 2:2 + m] < n_codes).all(1) if m else torch.ones(len(batch), dtype=torch.bool)
    prompt, given = batch[rows, :2 + m], features[rows, :2 + m]
    budget = backbone.config.block_size - prompt.shape[1]
    grammar = Grammar(vocab, tokenizer, len(prompt), "cpu", max_new=budget + m)  # it counts the prompt's m
    log_pt = backbone.density.to_density(given.flatten(0, 1)).view(*prompt.shape, -1)[..., 0]
    for t in range(2, 2 + m):
        grammar.update(prompt[:, t], log_pt[:, t])
    unconditional = None
    if guidance != 1.0:
        unconditional = prompt.clone()
        unconditional[:, 1] = vocab.mask
    tokens, _ = generate(backbone, prompt, budget, eos_id=vocab.eos, pad_id=vocab.pad, generator=generator,
                         grammar=grammar, density=True, prompt_features=given, top_p=top_p,
                         groups=truncation_groups(vocab, tokenizer), unconditional=unconditional, guidance=guidance)
    return rows, leading_jets(tokens, jet_codes(backbone, tokenizer))


def first_code_mass(backbone, first: np.ndarray, process: str) -> list[dict]:
    """Per bin of code pt (its centroid): the backbone's probability that the first object's code lies
    there, after [BOS, process], and the frequency of `first`, the data's first codes."""
    from backbone.sampling import sampling_prompt

    with torch.no_grad():
        logits = backbone(torch.tensor([sampling_prompt(backbone, process)]))[0][0, -1].float()
    n_codes = backbone.config.n_codes
    p = logits.softmax(-1)[:n_codes].numpy()
    head = backbone.density  # its centroids' log pt, in its coordinates, to GeV
    pt = torch.exp(head.code_centroid[:, 0] * head.feature_std[0] + head.feature_mean[0]).numpy()
    out = []
    for lo, hi in zip(PT_BINS[:-1], PT_BINS[1:]):
        codes = np.flatnonzero((pt >= lo) & (pt < hi))
        out.append({"pt_bin": [lo, None if np.isinf(hi) else hi], "codes": int(len(codes)),
                    "model": float(p[codes].sum()), "data": float(np.isin(first, codes).mean())})
    return out


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.model import GPT
    from backbone.sampling import TOP_P
    from common.cli import kept_fraction, nonnegative_float, positive_int
    from common.errors import UserError
    from events.errors import require_file
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--store", required=True, type=Path, help="a held-out token store with features")
    parser.add_argument("--process", default="ttbar")
    parser.add_argument("--events", type=positive_int, default=2000, help="store events used")
    parser.add_argument("--top-p", type=kept_fraction, default=TOP_P,
                        help="each object type's nucleus (sample.py --top-p; default %(default)s)")
    parser.add_argument("--guidance", type=nonnegative_float, default=1.0, help="as sample.py --guidance")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/generation_drift.json"))
    args = parser.parse_args(argv)
    require_file(args.store)
    torch.manual_seed(args.seed)
    backbone = GPT.from_pretrained(args.backbone).eval()
    tokenizer = Tokenizer.from_pretrained(args.tokenizer)
    if not backbone.conditional or args.process not in backbone.vocab.processes:
        raise UserError(f"{args.backbone} was not trained on process {args.process!r}")
    if not backbone.config.density_components or not backbone.config.n_features:
        raise UserError(f"{args.backbone}: the study needs a hybrid backbone with a density head")
    if backbone.vocab.multiplicities is not None:
        raise UserError(f"{args.backbone} draws each event's multiplicities first (data.multiplicity_token): its "
                        "jets cannot drift from them; benchmarks/conditional_generation.py measures its counts")
    data = TokenSequences.from_store(args.store, True, backbone.vocab)
    if data.features is None:
        raise UserError(f"{args.store}: no object features (tokenize with --features)")
    rows = np.flatnonzero(data.process_tokens == backbone.vocab.process_token(args.process))[:args.events]
    if not len(rows):
        raise UserError(f"{args.store}: no events of process {args.process!r}")
    is_jet = jet_codes(backbone, tokenizer)
    generator = torch.Generator().manual_seed(args.seed)
    sums = {k: [np.zeros(MAX_JETS), np.zeros(MAX_JETS)] for k in ("real features", "drawn features", "centroids")}
    completed = {m: [[], []] for m in PREFIXES}  # data's jets, completed jets
    real_jets, first = [], []
    for _, batch, features in data.sorted_batches(512, rows):
        centroids = backbone.code_features[batch.clamp(max=backbone.config.n_codes - 1)] * \
            (batch < backbone.config.n_codes)[..., None]
        drawn = drawn_features(backbone, tokenizer, batch, generator)
        for name, f in (("real features", features), ("drawn features", drawn), ("centroids", centroids)):
            s, c = predicted_hazards(backbone, batch, f, is_jet)
            sums[name][0] += s
            sums[name][1] += c
        jets = leading_jets(batch, is_jet)
        real_jets.append(jets.numpy())
        first.append(batch[:, 2].numpy())
        for m in PREFIXES:
            kept, n = completed_jets(backbone, tokenizer, batch, features, m, generator, args.top_p, args.guidance)
            completed[m][0].append(jets[kept].numpy())
            completed[m][1].append(n.numpy())
    real_jets = np.concatenate(real_jets)
    hazards = {"data": [float((real_jets[real_jets >= k] > k).mean()) if (real_jets >= k).any() else None
                        for k in range(MAX_JETS)],
               **{k: [float(s / c) if c else None for s, c in zip(*v)] for k, v in sums.items()}}
    completions = [{"prefix": m, "events": int(sum(len(x) for x in completed[m][0])),
                    "data_jets": float(np.concatenate(completed[m][0]).mean()),
                    "completed_jets": float(np.concatenate(completed[m][1]).mean())} for m in PREFIXES]
    mass = first_code_mass(backbone, np.concatenate(first), args.process)
    result = {"backbone": str(args.backbone), "process": args.process, "events": int(len(rows)),
              "top_p": args.top_p, "guidance": args.guidance, "jet_hazard": hazards, "completions": completions,
              "first_code_mass": mass}
    fmt = lambda v: "  -  " if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{args.process}, {len(rows)} held-out events; P(another jet | k jets), k = 0..{MAX_JETS - 1}")
    for name, values in hazards.items():
        print(f"  {name:16s} " + " ".join(fmt(v) for v in values))
    print(f"completed from the first m real objects (top-p {args.top_p}, guidance {args.guidance}): mean jets")
    for c in completions:
        print(f"  m = {c['prefix']}: {c['completed_jets']:.3f} against the data's {c['data_jets']:.3f} "
              f"({c['events']} events)")
    print("first object's code, by its centroid pt: backbone's probability / data's frequency")
    for b in mass:
        hi = "inf" if b["pt_bin"][1] is None else f"{b['pt_bin'][1]:.0f}"
        print(f"  {b['pt_bin'][0]:>4.0f}-{hi:<4s} GeV ({b['codes']:4d} codes): {b['model']:.4f} / {b['data']:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/generation_drift.py")
