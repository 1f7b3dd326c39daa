"""How much of a process's W and top peaks a backbone places, against a floor that knows no pairs.

    python benchmarks/pair_completion.py --backbone runs/anom/backbone_multiplicity --tokenizer runs/anom/tokenizer \
        --events data/anom/ttbar_s4.h5 --out benchmarks/results/pair_completion/multiplicity_seed0.json

Real events of one process are tokenized, and the backbone completes each from its first m real objects
(tokens and features), given the process and, where the backbone has one, the event's own multiplicity
token (so the counts are the data's and only where the objects lie is the backbone's); `scratch` gives
neither objects nor counts. It samples as sample.py does, the head's means fed back (with `--probe`, the jet
logits tilted by a benchmarks/partner_probe.py mixture over partners), and the completed events are read two
ways: at the codes' centroids (the token model's choice alone) and at the head's means; with `--reference`,
also their W1 over the floor against other real events of the process.

The fractions of top candidates with m(jj) in the W window and m(bjj) in the top window are set between
two references on the same events: the data (their real tokens at the centroids; their real features),
and a pairless floor, the same events with every object from the m-th on turned about the beam by its own
uniform angle (each object's pt, eta and mass kept, its azimuth to the others lost). The share placed,
(completed - its floor) / (data - its floor), is 1 where the backbone knows the pairs as the data have
them and 0 where it knows nothing of them; m = 0 is generation from scratch with the counts given.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import awkward as ak
import numpy as np
import torch

PREFIXES = ("scratch", 0, 1, 2, 3, 4)
WINDOWS = ("w_window", "top_window")
TURNS = 4  # random turns averaged in each floor


def turned(x: np.ndarray, first: np.ndarray, mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Normalized features `x` (objects, 6: log pt, eta, cos phi, sin phi, ...) with the objects where
    `first` is false each at a uniform random azimuth."""
    out = x.copy()
    phi = rng.uniform(-np.pi, np.pi, int((~first).sum()))
    out[~first, 2] = (np.cos(phi) - mean[2]) / std[2]
    out[~first, 3] = (np.sin(phi) - mean[3]) / std[3]
    return out


def decoded(tokenizer, ids: ak.Array, x: np.ndarray, info: dict, process: str):
    """The events of `ids` with normalized features `x` (objects, 6)."""
    from tokenizer.tokenizer import TokenBatch

    return tokenizer.decode(TokenBatch(ids, info, (process,), ak.unflatten(x, ak.num(ids))))


def windows(events) -> dict[str, float]:
    """The mass-window fractions of `events`' top candidates."""
    from conditional_generation import pair_angles

    return {k: v for k, v in pair_angles(events).items() if k in WINDOWS}


def floor(tokenizer, ids: ak.Array, x: np.ndarray, first: np.ndarray, info: dict, process: str,
          rng: np.random.Generator) -> dict[str, float]:
    """`windows` of the events with their objects from the m-th on (`first` false) turned, over `TURNS` turns."""
    mean, std = tokenizer.transform.mean, tokenizer.transform.std
    draws = [windows(decoded(tokenizer, ids, turned(x, first, mean, std, rng), info, process)) for _ in range(TURNS)]
    return {k: float(np.mean([d[k] for d in draws])) for k in WINDOWS}


def placed(completed: dict, floor: dict, data: dict, data_floor: dict) -> dict[str, float]:
    """Per window, (completed - floor) / (data - data_floor); NaN where the data sit on their floor."""
    span = {k: data[k] - data_floor[k] for k in WINDOWS}
    return {k: (completed[k] - floor[k]) / span[k] if span[k] else float("nan") for k in WINDOWS}


@torch.no_grad()
def complete(backbone, tokenizer, seqs, rows: np.ndarray, given: int | str, generator: torch.Generator,
             batch_size: int = 1000, adjust=None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Events `rows` of `seqs` completed from their first `given` objects (with the multiplicity token),
    or from `scratch`: (each event's codes, their normalized features (objects, n_features): the given
    objects' real ones, then the head's means). `adjust`: generate's logits processor, where given."""
    from backbone.generate import generate
    from backbone.grammar import Grammar
    from backbone.sampling import TOP_P, truncation_groups

    vocab, n_codes = backbone.vocab, backbone.config.n_codes
    head = backbone.density
    start = 2 if given == "scratch" else seqs.prefix + given  # the prompt's length
    codes, features = [None] * len(rows), [None] * len(rows)
    for order, batch, real in seqs.sorted_batches(batch_size, rows):
        prompt, prompt_features = batch[:, :start], real[:, :start]
        budget = backbone.config.block_size - start
        grammar = Grammar(vocab, tokenizer, len(prompt), "cpu", max_new=budget + start - 2)  # it counts the prompt
        log_pt = head.to_density(prompt_features.flatten(0, 1)).view(*prompt.shape, -1)[..., 0]
        for t in range(2, start):
            grammar.update(prompt[:, t], log_pt[:, t])
        tokens, z = generate(backbone, prompt, budget, eos_id=vocab.eos, pad_id=vocab.pad, generator=generator,
                             grammar=grammar, density=True, prompt_features=prompt_features, top_p=TOP_P,
                             groups=truncation_groups(vocab, tokenizer), mean=True, adjust=adjust)
        for row, seq, drawn, fed in zip(order, tokens, z, real):
            is_code = seq < n_codes
            n = int(is_code[seqs.prefix:].long().cumprod(0).sum())  # codes up to the first non-code
            span = slice(seqs.prefix, seqs.prefix + n)
            code = seq[span]
            x = head.from_density(drawn[span].float(), backbone.code_features[code], head.code_mask[code])
            x = head.clamp_features(x, head.code_mask[code])
            # the given objects keep their real features (the generator left zeros there)
            known = max(0, min(n, start - seqs.prefix))
            x[:known] = fed[seqs.prefix:seqs.prefix + known]
            codes[row], features[row] = code.numpy(), x.numpy()
    return codes, features


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.model import GPT, check_pair
    from common.cli import nonnegative_int, positive_int
    from common.errors import UserError
    from events.compare import ratio, w1_table
    from events.errors import require_file
    from events.io import read_events
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--events", required=True, type=Path, help="real events of one process, unseen in training")
    parser.add_argument("--process", default="ttbar", help="the process they are (default %(default)s)")
    parser.add_argument("--n", type=positive_int, default=5000, help="events completed (default %(default)s)")
    parser.add_argument("--seed", type=nonnegative_int, default=1)
    parser.add_argument("--given", nargs="+", default=[str(g) for g in PREFIXES], choices=[str(g) for g in PREFIXES],
                        help="the numbers of real objects to complete from (default: all of %(default)s)")
    parser.add_argument("--probe", type=Path, help="sample with this benchmarks/partner_probe.py tilt (its .pt)")
    parser.add_argument("--reference", type=Path, help="more real events of the process: each completion's "
                        "W1 over the floor against them, read at the head's means")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    backbone = GPT.from_pretrained(args.backbone).eval()
    tokenizer = Tokenizer.from_pretrained(args.tokenizer)
    check_pair(backbone, tokenizer)
    if not backbone.conditional or args.process not in backbone.vocab.processes:
        raise UserError(f"{args.backbone} was not trained on process {args.process!r}")
    if not backbone.config.density_components or not backbone.config.n_features:
        raise UserError(f"{args.backbone}: the study needs a hybrid backbone with a density head")
    if args.probe:
        require_file(args.probe, " (write one with python benchmarks/partner_probe.py)")
    reference = read_events(args.reference) if args.reference else None
    events = read_events(args.events)[:args.n]
    tokens = tokenizer.encode(events, features=True)
    seqs = TokenSequences([tokens], backbone.vocab.n_codes, True, backbone.vocab, source=str(args.events))
    seqs.process_tokens[:] = backbone.vocab.process_token(args.process)
    adjust, batch_size = None, 1000
    if args.probe:
        import partner_probe

        probe, tilt = partner_probe.load(args.probe, backbone, tokenizer)
        batch_size = 250  # the tilt holds (batch, partners, codes) terms
        adjust = lambda logits, hidden, ids, x: probe.tilted(tilt, logits, hidden, ids, x, seqs.prefix)  # noqa: E731
    rng = np.random.default_rng(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    n_objects = np.diff(seqs.offsets)
    real_codes = ak.unflatten(seqs.codes, n_objects)
    real = {"centroid": backbone.code_features[torch.from_numpy(seqs.codes)].numpy(), "mean": seqs.features}
    result = {"date": time.strftime("%Y-%m-%d"), "backbone": str(args.backbone), "events": str(args.events),
              "process": args.process, "completed": len(events), "seed": args.seed,
              "probe": str(args.probe) if args.probe else None,
              "reference": str(args.reference) if args.reference else None, "prefixes": []}
    for given in (g if g == "scratch" else int(g) for g in args.given):
        m = 0 if given == "scratch" else given
        rows = np.flatnonzero(n_objects >= m)
        info = {k: v[rows] for k, v in tokens.info.items()}
        t0 = time.perf_counter()
        codes, features = complete(backbone, tokenizer, seqs, rows, given, generator, batch_size, adjust)
        lengths = np.array([len(c) for c in codes])
        ids = ak.unflatten(np.concatenate(codes), lengths)
        first = np.concatenate([np.arange(k) < m for k in lengths])
        data_ids = real_codes[rows]
        data_first = np.concatenate([np.arange(k) < m for k in n_objects[rows]])
        where = seqs.object_indices(rows)
        entry = {"given": given, "events": int(len(rows)), "seconds": round(time.perf_counter() - t0, 1),
                 "mean_objects": {"data": float(n_objects[rows].mean()), "completed": float(lengths.mean())}}
        completed = {}  # the completed events read each way
        for view in ("centroid", "mean"):
            x = np.concatenate(features) if view == "mean" else \
                backbone.code_features[torch.from_numpy(np.concatenate(codes))].numpy()
            x_data = real[view][where]
            completed[view] = decoded(tokenizer, ids, x, info, args.process)
            out = {"completed": windows(completed[view]),
                   "completed_floor": floor(tokenizer, ids, x, first, info, args.process, rng),
                   "data": windows(decoded(tokenizer, data_ids, x_data, info, args.process)),
                   "data_floor": floor(tokenizer, data_ids, x_data, data_first, info, args.process, rng)}
            out["placed"] = placed(out["completed"], out["completed_floor"], out["data"], out["data_floor"])
            entry[view] = out
        if reference is not None:
            entry["w1_over_floor"] = {k: ratio(v) for k, v in w1_table(reference, completed["mean"]).items()}
        result["prefixes"].append(entry)
        print(f"{str(given):>8}: {len(rows)} events, {entry['seconds']:.0f} s; W window / top window, "
              + "; ".join(f"{view}: completed {e['completed']['w_window']:.3f} / {e['completed']['top_window']:.3f}, "
                          f"floor {e['completed_floor']['w_window']:.3f} / {e['completed_floor']['top_window']:.3f}, "
                          f"data {e['data']['w_window']:.3f} / {e['data']['top_window']:.3f}, "
                          f"data floor {e['data_floor']['w_window']:.3f} / {e['data_floor']['top_window']:.3f}, "
                          f"placed {e['placed']['w_window']:.2f} / {e['placed']['top_window']:.2f}"
                          for view, e in ((v, entry[v]) for v in ("centroid", "mean"))))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/pair_completion.py")
