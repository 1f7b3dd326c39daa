"""Does a conditional backbone's sampling follow its process? Per process of the pretraining mix, against
that process's own events:

- the first object's group (jets, leptons, photons, MET) in the data, in the backbone's own prediction
  after [BOS, process] and in generated events;
- mean numbers of jets (b-jets included), b-jets and leptons, the fraction of events with no jet;
- W1 over its floor (events.compare) of the multiplicities, HT, m(jj), m(bjj), leading-jet pt and MET;
- how the leading two jets lie (mean |dphi| and |deta|, events with two) and the fractions of top
  candidates (events.physics) with m(jj) in the W window and m(bjj) in the top window;
- the next-token loss per target of the process's events in the token store (given their process);
- where multiplicities go wrong: the chance that another jet follows k jets, P(n_jets > k | n_jets >= k), in
  the data, in generated events, and as the backbone predicts it on the store's events (teacher forced,
  restricted to codes as the grammar is there). A backbone that matches the data teacher forced but not
  in its own events drifts on its own prefixes; one that misses it teacher forced has not fitted it.
- with a multiplicity token, the W1 of the counts its distribution gives, exactly (no sampling noise),
  over the same floor: what the generated counts' W1 would be without the noise of drawing them.

Each process is sampled from its own random stream (`process_seed`), the same for every backbone: two
backbones are compared on the same noise, but one process's draw does not repeat in the next.

    python benchmarks/conditional_generation.py --backbone runs/x/backbone --tokenizer runs/x/tokenizer \
        --store runs/x/tokens.h5 --real data/ttbar.h5 data/wjets.h5 --events 2000 \
        --out benchmarks/results/conditional_generation_cpu.json
"""
from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import awkward as ak
import numpy as np
import torch

FIRST_GROUPS = ("jets", "leptons", "photons", "met")
W1_OBSERVABLES = ("jets", "b-jets", "leptons", "HT [GeV]", "m(jj) [GeV]", "m(bjj) [GeV]", "leading jet pt [GeV]",
                  "MET [GeV]")
MAX_JETS = 8  # hazards for k = 0..MAX_JETS-1 jets so far
COUNT_TOP = 3  # b-jet and lepton counts as fractions of events with 0, 1, 2 and 3 or more
W_WINDOW, TOP_WINDOW = (60.0, 100.0), (140.0, 200.0)  # GeV


def first_groups(events) -> dict[str, float]:
    """Fractions of events whose first object (canonical order) is of each group."""
    from events.model import GROUP_OF_TYPE, ObjectType

    first = ak.to_numpy(ak.fill_none(ak.firsts(events.objects["type"]), -1))
    groups = np.array([GROUP_OF_TYPE[ObjectType(t)] if t >= 0 else "none" for t in first])
    return {g: float((groups == g).mean()) for g in FIRST_GROUPS}


def predicted_first_groups(backbone, tokenizer, process: str | None) -> dict[str, float]:
    """The backbone's probability, after [BOS, process] (MASK for None), that the first object is of each
    group, restricted to codes (what the grammar allows first). With a multiplicity token, the first
    counted group its distribution announces, and where it announces none, the codes' after it."""
    from backbone.sampling import sampling_prompt
    from events.model import GROUP_OF_TYPE, GROUPS, ObjectType

    prompt = sampling_prompt(backbone, process)
    counts = backbone.vocab.multiplicities
    out = dict.fromkeys(FIRST_GROUPS, 0.0)
    weight = 1.0
    if counts is not None:
        p_counts = count_distribution(backbone, prompt)
        first = [next((GROUPS[g][0] for n, g in zip(row, counts.groups) if n), None) for row in counts.table]
        for group, p in zip(first, p_counts):
            if group:
                out[group] += float(p)
        none = int(np.flatnonzero([g is None for g in first])[0])
        weight = float(p_counts[none])  # nothing counted: photons or MET first, as the codes after it say
        prompt = prompt + [backbone.vocab.first_count + none]
    with torch.no_grad():
        logits = backbone(torch.tensor([prompt], device=backbone.wte.weight.device))[0][0, -1, :backbone.vocab.n_codes]
    p = logits.float().softmax(-1).cpu().numpy()
    for t in tokenizer.model.types:
        lo, n = tokenizer.model.offsets[t], tokenizer.model.codes_per_type[t]
        out[GROUP_OF_TYPE[ObjectType(t)]] += weight * float(p[lo:lo + n].sum())
    return out


def count_distribution(backbone, prompt: list[int], guidance: float = 1.0, unconditional: list[int] | None = None
                       ) -> np.ndarray:
    """The backbone's distribution over its multiplicity tokens (rows of `multiplicities.table`) after
    `prompt`, guided by `guidance` against the `unconditional` prompt as sampling does."""
    vocab = backbone.vocab
    with torch.no_grad():
        logits = backbone(torch.tensor([prompt], device=backbone.wte.weight.device))[0][0, -1].float()
        if guidance != 1.0:
            free = backbone(torch.tensor([unconditional], device=logits.device))[0][0, -1].float()
            logits = torch.lerp(free, logits, guidance)  # free + guidance (logits - free), as sampling guides
    return logits[vocab.first_count:vocab.size].softmax(-1).cpu().numpy()


def count_hazards(table: np.ndarray, p: np.ndarray) -> list:
    """P(n_jets > k | n_jets >= k), k = 0..MAX_JETS-1, of the distribution `p` over multiplicity tokens whose
    counts are `table` (tokens, kinds; jets and b-jets the first two)."""
    jets = table[:, :2].sum(1)
    return [float(p[jets > k].sum() / p[jets >= k].sum()) if p[jets >= k].sum() > 0 else None for k in range(MAX_JETS)]


#: the W1_OBSERVABLES counts that a multiplicity token announces, as sums of its kinds (Multiplicities.names)
COUNTED = {"jets": ("jet", "bjet"), "b-jets": ("bjet",), "leptons": ("electron+muon",)}


def counted(table: np.ndarray, names: tuple[str, ...], observable: str) -> np.ndarray:
    """(tokens,) the `observable` (a COUNTED key) that each row of a multiplicity table of kinds `names` holds."""
    return table[:, [names.index(k) for k in COUNTED[observable]]].sum(1)


def count_fit_w1(table: np.ndarray, names: tuple[str, ...], p: np.ndarray, real) -> dict[str, float]:
    """Exact W1 between the counts of the multiplicity-token distribution `p` (over `table`'s rows, kinds
    `names`) and those of the events `real`: jets (b-jets included), b-jets and leptons, under
    W1_OBSERVABLES' names. On integers W1 is the sum over k of |F_model(k) - F_real(k)|."""
    from events.model import ObjectType as T

    real_counts = {"jets": real.count(T.JET, T.BJET), "b-jets": real.count(T.BJET),
                   "leptons": real.count(T.ELECTRON, T.MUON)}
    out = {}
    for name, kind in COUNTED.items():
        if not set(kind) <= set(names):
            continue
        model = counted(table, names, name)
        top = int(max(model.max(), real_counts[name].max())) + 1
        f_model = np.cumsum(np.bincount(model, weights=p, minlength=top)[:top])
        f_real = np.cumsum(np.bincount(real_counts[name], minlength=top)[:top]) / len(real_counts[name])
        out[name] = float(np.abs(f_model / p.sum() - f_real).sum())
    return out


def process_seed(seed: int, process: str) -> int:
    """The sampling seed of `process`'s events under run `seed`: a stream of its own, so that the processes'
    sampling noise is independent (one seed for all drew every process with the same noise), and the
    same for every backbone, so that two backbones are compared on the same noise."""
    return int(np.random.SeedSequence([seed, zlib.crc32(process.encode())]).generate_state(1)[0])


def codes_of(backbone, tokenizer, *types) -> torch.Tensor:
    """A (n_codes,) mask of the codes of objects of `types` (ObjectType)."""
    mask = torch.zeros(backbone.vocab.n_codes, dtype=torch.bool)
    for t in types:
        if int(t) in tokenizer.model.types:
            lo, n = tokenizer.model.offsets[int(t)], tokenizer.model.codes_per_type[int(t)]
            mask[lo:lo + n] = True
    return mask


def jet_codes(backbone, tokenizer) -> torch.Tensor:
    """A (n_codes,) mask of the codes of jets and b-jets."""
    from events.model import ObjectType as T

    return codes_of(backbone, tokenizer, T.JET, T.BJET)


def leading_jets(tokens: torch.Tensor, is_jet: torch.Tensor) -> torch.Tensor:
    """(B,) the number of jets each sequence (BOS, process, objects...) opens its objects with; `is_jet` is
    `jet_codes`' mask."""
    objects = tokens[:, 2:]
    n_codes = len(is_jet)
    return ((objects < n_codes) & is_jet[objects.clamp(0, n_codes - 1)]).cumprod(1).sum(1)


def hazard_sums(logits: torch.Tensor, tokens: torch.Tensor, is_jet: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per k, (the sum of the predicted chance that a jet follows k jets, restricted to codes, over the
    sequences `tokens` (B, T) with at least k jets; their number), from `logits` (B, T - 1, vocab), the
    predictions teacher forced on them: objects start at position 2 and jets come first, so the logits at
    1 + k predict the object after k jets."""
    n_codes = len(is_jet)
    p_jet = (logits[:, 1:1 + MAX_JETS, :n_codes].float().softmax(-1) * is_jet).sum(-1)  # (B, <= MAX_JETS)
    n_jets = leading_jets(tokens, is_jet)
    total, count = np.zeros(MAX_JETS), np.zeros(MAX_JETS)
    for k in range(p_jet.shape[1]):
        at = n_jets >= k
        total[k], count[k] = float(p_jet[at, k].sum()), int(at.sum())
    return total, count


def teacher_forced(backbone, tokenizer, store: Path, process: str, guidance: float = 1.0,
                   batch_size: int = 512) -> tuple[float, list]:
    """On the store's events of `process`, each given its process token: the mean next-token cross-entropy per
    target (objects and EOS), and per k the mean predicted chance that a jet follows k jets (None where no
    event has k jets), of the distribution sampled with classifier-free `guidance`."""
    from backbone.data import TokenSequences, to_device

    vocab = backbone.vocab
    data = TokenSequences.from_store(store, True, vocab)
    rows = np.flatnonzero(data.process_tokens == vocab.process_token(process))
    is_jet = jet_codes(backbone, tokenizer).to(backbone.wte.weight.device)
    total, count = 0.0, 0
    hazard_sum, hazard_n = np.zeros(MAX_JETS), np.zeros(MAX_JETS)
    with torch.no_grad():
        for _, batch, features in data.sorted_batches(batch_size, rows):
            batch, features = to_device(batch, features, backbone.wte.weight.device)
            targets = torch.where(batch[:, 1:] == backbone.vocab.pad, -100, batch[:, 1:])
            targets[:, 0] = -100  # the process token is the prompt, not a prediction
            inputs = None if features is None else features[:, :-1]
            logits = backbone(batch[:, :-1], features=inputs)[0].float()
            if guidance != 1.0:
                unknown = batch[:, :-1].clone()
                unknown[:, 1] = backbone.vocab.mask  # the process left unknown, as guided sampling runs it
                free = backbone(unknown, features=inputs)[0].float()
                logits = free + guidance * (logits - free)
            total += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                             ignore_index=-100, reduction="sum"))
            # per target of the events' objects and end: the multiplicity token's loss is in the total, so
            # that backbones with and without one are compared by the same -log p(event)
            count += int(((targets != -100) & (targets < vocab.first_count)).sum())
            if vocab.multiplicities is None:
                total_k, count_k = hazard_sums(logits, batch, is_jet)
                hazard_sum += total_k
                hazard_n += count_k
    if vocab.multiplicities is not None:
        # teacher forced after its multiplicity token, each object's type is announced: the fit of the
        # multiplicities is the token's distribution
        from backbone.sampling import sampling_prompt

        p = count_distribution(backbone, sampling_prompt(backbone, process), guidance, sampling_prompt(backbone, None)
                               if guidance != 1.0 else None)
        return total / count, count_hazards(vocab.multiplicities.table, p)
    return total / count, [float(s / n) if n else None for s, n in zip(hazard_sum, hazard_n)]


def jet_hazards(events) -> list:
    """P(n_jets > k | n_jets >= k) for k = 0..MAX_JETS-1 (None where no event has k jets)."""
    from events.model import ObjectType as T

    jets = events.count(T.JET, T.BJET)
    return [float((jets[jets >= k] > k).mean()) if (jets >= k).any() else None for k in range(MAX_JETS)]


def pair_angles(events) -> dict[str, float]:
    """Mean |dphi| and |deta| of the leading two jets (b-jets count; events with two), and the fractions of
    top candidates with m(jj) in W_WINDOW and m(bjj) in TOP_WINDOW (NaN where there are none)."""
    from events.kinematics import wrap_phi
    from events.model import ObjectType as T
    from events.physics import top_candidates

    jets = events.of_type(T.JET, T.BJET)
    two = jets[ak.num(jets) >= 2]
    tops = top_candidates(events)
    inside = lambda m, window: float(((m > window[0]) & (m < window[1])).mean()) if len(m) else float("nan")  # noqa: E731
    mean = lambda x: float(np.mean(x)) if len(x) else float("nan")  # noqa: E731
    return {"dphi_j1j2": mean(np.abs(wrap_phi(ak.to_numpy(two.phi[:, 0] - two.phi[:, 1]).astype(np.float64)))),
            "deta_j1j2": mean(np.abs(ak.to_numpy(two.eta[:, 0] - two.eta[:, 1]))),
            "w_window": inside(tops.m_jj, W_WINDOW), "top_window": inside(tops.m_bjj, TOP_WINDOW)}


def count_fractions(counts: np.ndarray, top: int = COUNT_TOP) -> list[float]:
    """Fractions of events with 0, 1, ..., top - 1 and at least `top` of something: the shape a mean hides
    (b-jets with the right mean can still be too often 0 and 2)."""
    return [float((counts == k).mean()) for k in range(top)] + [float((counts >= top).mean())]


def summary(events) -> dict[str, float]:
    from events.model import ObjectType as T

    jets = events.count(T.JET, T.BJET)
    bjets, leptons = events.count(T.BJET), events.count(T.ELECTRON, T.MUON)
    return {"mean_jets": float(jets.mean()), "mean_bjets": float(bjets.mean()),
            "mean_leptons": float(leptons.mean()), "no_jet": float((jets == 0).mean()),
            "bjet_fractions": count_fractions(bjets), "lepton_fractions": count_fractions(leptons),
            "first": first_groups(events), "jet_hazard": jet_hazards(events), **pair_angles(events)}


def measure(backbone, tokenizer, store: Path, real, process: str, n: int, seed: int, guidance: float,
            top_p: float, decode: str | None = None) -> dict:
    """Everything above for one process, `n` generated events against `real`, the process's events,
    sampled with classifier-free `guidance` and each object type's `top_p` nucleus, decoded as `decode`
    (None: the sampler's default)."""
    from backbone.sampling import sample_events
    from events.compare import ratio, w1_table
    from events.model import Events

    seed = process_seed(seed, process)
    generated = Events.concatenate(sample_events(backbone, tokenizer, n, process=process, seed=seed,
                                                 guidance=guidance, top_p=top_p, decode=decode))
    table = w1_table(real, generated, seed=seed)
    loss, hazard = teacher_forced(backbone, tokenizer, store, process, guidance)
    out = {"real": summary(real), "generated": summary(generated),
           "predicted_first": predicted_first_groups(backbone, tokenizer, process),
           "next_token_loss": loss, "predicted_jet_hazard": hazard,
           "w1_over_floor": {k: ratio(table[k]) for k in W1_OBSERVABLES if k in table}, "n_generated": n,
           "n_real": len(real), "seed": seed}
    counts = backbone.vocab.multiplicities
    if counts is not None:
        from backbone.sampling import sampling_prompt

        p = count_distribution(backbone, sampling_prompt(backbone, process), guidance,
                               sampling_prompt(backbone, None) if guidance != 1.0 else None)
        out["count_fit_w1_over_floor"] = {k: ratio({"w1": w1, "floor": table[k]["floor"]}) for k, w1 in
                                          count_fit_w1(counts.table, counts.names, p, real).items()}
    return out


def print_table(results: dict) -> None:
    print(f"{'process':14s} {'jets gen/real':>14s} {'b-jets':>12s} {'leptons':>12s} {'no jet %':>12s} "
          f"{'P(1st jet) data/model/gen':>26s} {'loss':>6s}  W1/floor " + " ".join(W1_OBSERVABLES))
    for process, r in results.items():
        g, d = r["generated"], r["real"]
        pair = lambda k, f=".2f": f"{format(g[k], f)}/{format(d[k], f)}"  # noqa: E731
        print(f"{process:14s} {pair('mean_jets'):>14s} {pair('mean_bjets'):>12s} {pair('mean_leptons'):>12s} "
              f"{100 * g['no_jet']:5.1f}/{100 * d['no_jet']:4.1f}  "
              f"{d['first']['jets']:8.3f}/{r['predicted_first']['jets']:.3f}/{g['first']['jets']:.3f} "
              f"{r['next_token_loss']:6.3f}  " + " ".join(f"{r['w1_over_floor'].get(k, float('nan')):.1f}"
                                                           for k in W1_OBSERVABLES))
    print("P(another jet after k jets), data / teacher forced / generated, k = 0..%d" % (MAX_JETS - 1))
    fmt = lambda v: " -  " if v is None else f"{v:.3f}"  # noqa: E731
    for process, r in results.items():
        rows = zip(r["real"]["jet_hazard"], r["predicted_jet_hazard"], r["generated"]["jet_hazard"])
        print(f"{process:14s} " + "  ".join(f"{fmt(d)}/{fmt(m)}/{fmt(g)}" for d, m, g in rows))
    fits = {process: r["count_fit_w1_over_floor"] for process, r in results.items() if "count_fit_w1_over_floor" in r}
    if fits:
        print("the multiplicity token's counts, exactly: W1/floor of jets, b-jets, leptons")
        for process, fit in fits.items():
            print(f"{process:14s} " + " ".join(f"{v:.1f}" for v in fit.values()))
    print(f"leading two jets and mass windows, generated / data: |dphi(j1, j2)|, |deta(j1, j2)|, "
          f"m(jj) in {W_WINDOW[0]:.0f}-{W_WINDOW[1]:.0f} GeV, m(bjj) in {TOP_WINDOW[0]:.0f}-{TOP_WINDOW[1]:.0f} GeV")
    for process, r in results.items():
        print(f"{process:14s} " + "  ".join(f"{r['generated'][k]:.3f}/{r['real'][k]:.3f}"
                                            for k in ("dphi_j1j2", "deta_j1j2", "w_window", "top_window")))


def main(argv: list[str] | None = None) -> int:
    from backbone.model import GPT
    from backbone.sampling import DECODES, TOP_P
    from common.cli import kept_fraction
    from common.errors import UserError
    from events.io import read_events
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--snapshot", type=Path, help="a training checkpoint folder of the backbone's run: its weights "
                        "(as masked_study.py reads them), measured instead of the final ones")
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--store", required=True, type=Path, help="the token store the backbone was trained on")
    parser.add_argument("--real", required=True, nargs="+", type=Path, help="event files of the processes")
    parser.add_argument("--events", type=int, default=2000, help="generated events per process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance w (sample.py --guidance)")
    parser.add_argument("--top-p", type=kept_fraction, default=TOP_P,
                        help="each object type's nucleus (sample.py --top-p; default %(default)s)")
    parser.add_argument("--decode", choices=DECODES,
                        help="how generated codes become kinematics (sample.py --decode; default: continuous where "
                        "the backbone has a density head): centroid tells the codes' part from the density head's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/conditional_generation_cpu.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    if args.snapshot:
        from masked_study import load_snapshot  # a sibling script

        if not (args.snapshot / "model.safetensors").is_file():
            raise UserError(f"--snapshot {args.snapshot}: not a training checkpoint (no model.safetensors)")

        backbone = load_snapshot(args.backbone, args.snapshot)[0].to(args.device)
    else:
        backbone = GPT.from_pretrained(args.backbone, args.device)
    tokenizer = Tokenizer.from_pretrained(args.tokenizer, device=args.device)
    results = {}
    for path in args.real:
        events = read_events(path)
        for process in backbone.vocab.processes:
            if (events.process == process).any():
                results[process] = measure(backbone, tokenizer, args.store, events[events.process == process],
                                           process, args.events, args.seed, args.guidance, args.top_p, args.decode)
    mixture = {"predicted_first": predicted_first_groups(backbone, tokenizer, None)}
    print_table(results)
    print(f"process unknown (MASK): P(first jet) = {mixture['predicted_first']['jets']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"backbone": str(args.backbone), "snapshot": args.snapshot and str(args.snapshot),
                                    "guidance": args.guidance, "top_p": args.top_p, "decode": args.decode,
                                    "store": str(args.store),
                                    "config": backbone.pretrained_config.get("train_config"),
                                    "processes": results, "unknown": mixture}, indent=1))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/conditional_generation.py")
