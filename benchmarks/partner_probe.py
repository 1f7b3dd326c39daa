"""Does a backbone's trunk know where a jet's partner lies? A tilt over partners, trained on the frozen trunk.

    python benchmarks/partner_probe.py --backbone runs/anom/backbone_multiplicity --train runs/anom/tokens.h5 \
        --events data/anom/ttbar_s4.h5 --out benchmarks/results/partner_probe/multiplicity.json

Completed from real jets (benchmarks/pair_completion.py), the CPU-size backbones place almost none of the W
peak. Either the trunk does not know where a jet's partner lies, or its logits cannot say it: one tilt per
position can put a bump near one direction, not "near one of the earlier jets, at the W mass with it". This
probe adds to the frozen backbone's jet and b-jet logits a mixture over partners,

    p(code) ∝ p_backbone(code) [w_0 + sum_j w_j exp(-|u(code, j) - mu_j|^2 / 2 sigma_j^2)],

j each earlier jet, (w, mu, sigma) from a small network of the hidden state and jet j's real features, u the
pair's variables at the code's centroid, and trains only that network (each type's probability is the
backbone's). `--pair relative` takes u = (ln m^2, Delta R) with jet j: a ring at the W mass is one bump.
`--pair direction` takes u = the code's direction about jet j (Delta eta, cos Delta phi, sin Delta phi):
the same mixture and size, a bump near or away from a partner, but blind to the pair's energies (the
control for what a mixture over partners gives without the pair's mass). The held-out gain in nats per
jet, on events the backbone never saw, is what the trunk knows and its logits do not say. The probe's
weights are written beside the result (`.pt`), for `benchmarks/pair_completion.py --probe` to sample with.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

PAIRS = ("relative", "direction")
PARTNERS = 12  # jets and b-jets come first in an event's sequence, at most 12 of them (Caps().jets)
#: the pair variables' typical centre and spread (ln(1 + m^2 / GeV^2), Delta R), so that the probe starts with
#: bumps of order one
PAIR_CENTRE, PAIR_SCALE = torch.tensor([9.5, 2.5]), torch.tensor([1.5, 1.0])


def kinematics(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(..., 4) pt [GeV], eta, phi, m [GeV] of the tokenizer's normalized event features x (..., 6)."""
    raw = x * std + mean
    return torch.stack([raw[..., 0].exp(), raw[..., 1], torch.atan2(raw[..., 3], raw[..., 2]),
                        raw[..., 4].exp() - 1], -1)


def pair_variables(code: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """(..., C, 2) ln(1 + m^2 / GeV^2) and Delta R of each code's kinematics (C, 4) with each partner's
    (..., 1, 4), standardized by PAIR_CENTRE and PAIR_SCALE."""
    pt1, eta1, phi1, m1 = code.unbind(-1)
    pt2, eta2, phi2, m2 = partner.unbind(-1)
    deta, dphi = eta1 - eta2, torch.remainder(phi1 - phi2 + torch.pi, 2 * torch.pi) - torch.pi
    mass2 = 2 * pt1 * pt2 * (torch.cosh(deta) - torch.cos(dphi)) + m1.clamp(min=0) ** 2 + m2.clamp(min=0) ** 2
    return (torch.stack([torch.log1p(mass2), torch.sqrt(deta ** 2 + dphi ** 2)], -1) - PAIR_CENTRE) / PAIR_SCALE


class PartnerTilt(nn.Module):
    """The mixture over partners: (hidden (N, E), partners' features (N, J, F), which are partners (N, J),
    each partner's and code's variables u and their squares (N, J, C, 2V)) -> the log tilt of every code
    (N, C). Each bump, -|u - mu|^2 / 2 sigma^2, is linear in (u, u^2): one product per partner."""

    def __init__(self, n_embd: int, n_features: int, n_vars: int, width: int = 128):
        super().__init__()
        self.n_vars = n_vars
        self.net = nn.Sequential(nn.Linear(n_embd + n_features, width), nn.GELU(), nn.Linear(width, 1 + 2 * n_vars))
        self.none = nn.Linear(n_embd, 1)
        # scales every bump: zero at the start, so that the probe starts as the backbone itself
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, hidden, partners, valid, basis):
        out = self.net(torch.cat([hidden[:, None].expand(-1, partners.shape[1], -1), partners], -1))
        weight = torch.cat([self.none(hidden), out[..., 0].masked_fill(~valid, float("-inf"))], -1).log_softmax(-1)
        mu, inv_var = out[..., 1:1 + self.n_vars], torch.exp(-2 * out[..., 1 + self.n_vars:].clamp(-4, 3))
        coefficients = torch.cat([mu * inv_var, -0.5 * inv_var], -1)  # of u and u^2
        bump = torch.einsum("njcv,njv->njc", basis, coefficients) - 0.5 * (mu ** 2 * inv_var).sum(-1)[..., None]
        bump = self.gate * bump
        none = weight[:, :1, None].expand(-1, 1, basis.shape[2])
        return torch.logsumexp(torch.cat([none, weight[:, 1:, None] + bump], 1), 1)


class Probe:
    """The backbone's jet codes and what the probe reads of them."""

    def __init__(self, model, tokenizer, pair: str):
        from events.model import ObjectType

        self.model, self.pair = model, pair
        jets = [int(ObjectType.JET), int(ObjectType.BJET)]
        offsets, sizes = tokenizer.model.offsets, tokenizer.model.codes_per_type
        self.codes = torch.cat([torch.arange(offsets[t], offsets[t] + sizes[t]) for t in jets])
        self.group = torch.cat([torch.full((sizes[t],), i) for i, t in enumerate(jets)])  # 0 jet, 1 b-jet
        self.is_jet = torch.zeros(model.config.vocab_size, dtype=torch.bool)
        self.is_jet[self.codes] = True
        self.mean, self.std = model.density.feature_mean, model.density.feature_std
        self.code_kin = kinematics(model.code_features[self.codes], self.mean, self.std)  # (C, 4)
        self.column = torch.full((model.config.vocab_size,), -1, dtype=torch.long)
        self.column[self.codes] = torch.arange(len(self.codes))

    def targets(self, idx: torch.Tensor):
        """(rows, columns) of every jet and b-jet token in `idx[:, 1:]`: the hidden state at (row, column)
        predicts it."""
        return torch.nonzero(self.is_jet[idx[:, 1:].clamp(min=0)] & (idx[:, 1:] >= 0), as_tuple=True)

    def basis(self, partner_x: torch.Tensor) -> torch.Tensor:
        """(B, J, C, 2V) what each bump is linear in, for partners of normalized features (B, J, F): the pair
        variables with each partner (`relative`: ln m^2, Delta R; `direction`: Delta eta / 1.5, cos and sin
        Delta phi) and their squares."""
        partner = kinematics(partner_x, self.mean, self.std)[:, :, None]
        if self.pair == "relative":
            u = pair_variables(self.code_kin, partner)
        else:
            dphi = self.code_kin[:, 2] - partner[..., 2]
            u = torch.stack([(self.code_kin[:, 1] - partner[..., 1]) / 1.5, dphi.cos(), dphi.sin()], -1)
        return torch.cat([u, u ** 2], -1)

    def partners(self, idx: torch.Tensor, features: torch.Tensor, first: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The event's first PARTNERS objects in `idx` (B, T), which start at position `first`: (their positions
        (J,), which are jets or b-jets (B, J), their normalized features (B, J, F)). Positions past the end are
        read at the last one and marked as no jet."""
        positions = torch.arange(first, first + PARTNERS, device=idx.device)
        where = positions.clamp(max=idx.shape[1] - 1)
        ids = idx[:, where]
        is_jet = self.is_jet[ids.clamp(min=0)] & (ids >= 0) & (positions[None] < idx.shape[1])
        return positions, is_jet, features[:, where].float()

    def tilted(self, tilt: PartnerTilt, logits: torch.Tensor, hidden: torch.Tensor, tokens: torch.Tensor,
               features: torch.Tensor, first: int) -> torch.Tensor:
        """`logits` (B, V) of the next token after `tokens` (B, n) with the jet and b-jet codes' tilted, each
        type's probability kept: what `generate` samples from with the probe (its `adjust`)."""
        _, valid, partner_x = self.partners(tokens, features, first)  # every object so far was read
        part = logits[:, self.codes]
        new = part + tilt(hidden.float(), partner_x, valid, self.basis(partner_x))
        for g in (0, 1):
            cols = self.group == g
            new[:, cols] += part[:, cols].logsumexp(-1, keepdim=True) - new[:, cols].logsumexp(-1, keepdim=True)
        out = logits.clone()
        out[:, self.codes] = new
        return out

    def nll(self, tilt: PartnerTilt | None, idx, features, hidden, first: int) -> torch.Tensor:
        """(targets,) the negative log-probability of each jet's code among its type's codes; the event's
        objects start at position `first`."""
        rows, cols = self.targets(idx)
        h = hidden[rows, cols]
        with torch.no_grad():
            base = self.model.logits(h).float()[:, self.codes]
        target = self.column[idx[rows, cols + 1]]
        group = self.group[target]
        logits = base
        if tilt is not None:
            # partners: the jets that the trunk read before the target
            positions, is_jet, partner_x = self.partners(idx, features, first)
            valid = is_jet[rows] & (positions[None] <= cols[:, None])
            logits = base + tilt(h, partner_x[rows], valid, self.basis(partner_x)[rows])
        logits = logits.masked_fill(self.group[None] != group[:, None], float("-inf"))
        return -(logits.gather(1, target[:, None])[:, 0] - logits.logsumexp(-1))


def save(tilt: PartnerTilt, pair: str, path: Path) -> None:
    torch.save({"pair": pair, "n_vars": tilt.n_vars, "state": tilt.state_dict()}, path)


def load(path: Path, model, tokenizer) -> tuple[Probe, PartnerTilt]:
    """The probe and tilt `save`d by this script, for `model` and its `tokenizer`."""
    saved = torch.load(path, weights_only=True)
    tilt = PartnerTilt(model.config.n_embd, model.config.n_features, saved["n_vars"])
    tilt.load_state_dict(saved["state"])
    return Probe(model, tokenizer, saved["pair"]), tilt.eval()


def train(probe: Probe, tilt: PartnerTilt, idx, features, hidden, first: int, steps: int, batch_size: int,
          lr: float, seed: int) -> None:
    """AdamW on random batches of the events, with a linear warm-up and a cosine to a tenth of `lr`."""
    from tqdm import tqdm

    from common.schedule import warmup_cosine

    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(tilt.parameters(), lr=lr, weight_decay=0.0)
    bar = tqdm(range(steps), desc="partner tilt", unit="step")
    for step in bar:
        for g in optimizer.param_groups:
            g["lr"] = warmup_cosine(step, steps, min(100, steps // 10), 0.1, peak=lr)
        rows = torch.from_numpy(rng.choice(len(idx), batch_size))
        loss = probe.nll(tilt, idx[rows], features[rows], hidden[rows], first).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tilt.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")


@torch.no_grad()
def held_out(probe: Probe, tilt: PartnerTilt | None, idx, features, hidden, first: int,
             batch_size: int = 32) -> np.ndarray:
    """Each held-out jet's negative log-probability."""
    return np.concatenate([probe.nll(tilt, idx[s:s + batch_size], features[s:s + batch_size],
                                     hidden[s:s + batch_size], first).numpy() for s in range(0, len(idx), batch_size)])


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.model import GPT, check_pair
    from common.cli import nonnegative_int, positive_float, positive_int
    from common.errors import UserError
    from events.io import read_events
    from head_retrain import trunk_states
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path, help="a trained hybrid event backbone")
    parser.add_argument("--tokenizer", type=Path, help="its tokenizer (default: the backbone's folder's sibling "
                        "tokenizer)")
    parser.add_argument("--train", required=True, type=Path, help="its training token store (with --features)")
    parser.add_argument("--events", required=True, type=Path, help="held-out events of the process")
    parser.add_argument("--process", default="ttbar")
    parser.add_argument("--pair", choices=PAIRS, default="relative")
    parser.add_argument("--steps", type=positive_int, default=1500)
    parser.add_argument("--batch-size", type=positive_int, default=32, help="events per step")
    parser.add_argument("--lr", type=positive_float, default=3e-3)
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    model = GPT.from_pretrained(args.backbone).eval()
    tokenizer = Tokenizer.from_pretrained(args.tokenizer or args.backbone.parent / "tokenizer")
    check_pair(model, tokenizer)
    for p in model.parameters():
        p.requires_grad_(False)
    if not model.config.n_features or model.config.density_mode != "event":
        raise UserError(f"{args.backbone}: the probe needs a hybrid event backbone (it reads the jets' features)")
    if not model.conditional or args.process not in model.vocab.processes:
        raise UserError(f"{args.backbone} was not trained on process {args.process!r}")
    start = time.time()
    seqs = TokenSequences.from_store(args.train, True, model.vocab)
    if seqs.features is None:
        raise UserError(f"{args.train}: no features (write it with python -m tokenizer.tokenize --features)")
    mine = np.flatnonzero(seqs.process_tokens == model.vocab.process_token(args.process))
    if not len(mine):
        raise UserError(f"{args.train}: no events of process {args.process!r}")
    tokens = tokenizer.encode(read_events(args.events), features=True)
    test = TokenSequences([tokens], model.vocab.n_codes, True, model.vocab, source=str(args.events))
    test.process_tokens[:] = model.vocab.process_token(args.process)
    idx, features, hidden = trunk_states(model, seqs, mine)
    t_idx, t_features, t_hidden = trunk_states(model, test)
    probe = Probe(model, tokenizer, args.pair)
    torch.manual_seed(args.seed)
    tilt = PartnerTilt(model.config.n_embd, model.config.n_features, 2 if args.pair == "relative" else 3)
    base = held_out(probe, None, t_idx, t_features, t_hidden, test.prefix)
    train(probe, tilt, idx, features, hidden, seqs.prefix, args.steps, args.batch_size, args.lr, args.seed)
    tilted = held_out(probe, tilt, t_idx, t_features, t_hidden, test.prefix)
    rows, cols = probe.targets(t_idx)
    rank = (cols + 2 - test.prefix).numpy()  # the jet's place among the event's objects, from 1
    result = {"date": time.strftime("%Y-%m-%d"), "backbone": str(args.backbone), "train": str(args.train),
              "events": str(args.events), "process": args.process, "pair": args.pair, "steps": args.steps,
              "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "training_events": int(len(mine)),
              "held_out_events": len(test), "held_out_jets": int(len(base)),
              "nll_backbone": float(base.mean()), "nll_probe": float(tilted.mean()),
              "gain_per_jet": float((base - tilted).mean()),
              "gain_per_event": float((base - tilted).sum() / len(test)),
              "gain_by_position": {int(k): float((base - tilted)[rank == k].mean()) for k in range(1, 9)
                                   if (rank == k).any()},
              "seconds": round(time.time() - start, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    save(tilt, args.pair, args.out.with_suffix(".pt"))
    print(json.dumps({k: result[k] for k in ("pair", "nll_backbone", "nll_probe", "gain_per_jet", "gain_per_event",
                                             "gain_by_position", "seconds")}, indent=1))
    print(f"wrote {args.out} and the probe's weights, {args.out.with_suffix('.pt').name}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/partner_probe.py")
