"""python -m backbone.evaluate: how close generated events are to real ones.

Wasserstein-1 distances between real and generated distributions of physics observables, each next to
the same distance between two independent real samples of equal size (the statistical floor: a
generator cannot be told from data where its distance is at the floor). Plots overlay real and generated.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import awkward as ak
import numpy as np

from common.cli import UserError, run_cli
from events.model import Events, ObjectType as T


def _constituent_jet_mass(events: Events) -> np.ndarray:
    """Jet mass from the constituents (pt, deta, dphi, m), about the jet axis."""
    from events.kinematics import invariant_mass, ptetaphim_to_cartesian

    c = events.of_type(T.CONSTITUENT)
    px, py, pz, e = ptetaphim_to_cartesian(c.pt, c.eta, c.phi, c.mass)
    return invariant_mass(*(ak.to_numpy(ak.sum(v, axis=1)).astype(np.float64) for v in (px, py, pz, e)))


def observables(events: Events) -> dict[str, np.ndarray]:
    """Per-event observables (NaN where undefined, e.g. no top candidate)."""
    from events.physics import ht, leading_pt, top_candidates

    if events.count(T.CONSTITUENT).any():
        flat = ak.flatten(events.of_type(T.CONSTITUENT))
        return {"constituents": events.count(T.CONSTITUENT).astype(float),
                "jet mass [GeV]": _constituent_jet_mass(events),
                "constituent pt [GeV]": ak.to_numpy(flat.pt).astype(float),
                "constituent deta": ak.to_numpy(flat.eta).astype(float),
                "constituent dphi": ak.to_numpy(flat.phi).astype(float)}
    jets = (T.JET, T.BJET)
    tops = top_candidates(events)
    m_bjj = np.full(len(events), np.nan)
    m_jj = np.full(len(events), np.nan)
    m_bjj[tops.has_candidate], m_jj[tops.has_candidate] = tops.m_bjj, tops.m_jj
    lead = events.of_type(*jets)
    return {"jets": events.count(*jets).astype(float), "b-jets": events.count(T.BJET).astype(float),
            "leptons": events.count(T.ELECTRON, T.MUON).astype(float),
            "leading jet pt [GeV]": leading_pt(events, *jets),
            "leading jet eta": ak.to_numpy(ak.fill_none(ak.firsts(lead.eta), np.nan)).astype(float),
            "HT [GeV]": ht(events), "MET [GeV]": events.met[0].astype(float),
            "m(jj) [GeV]": m_jj, "m(bjj) [GeV]": m_bjj}


def w1_table(real: Events, generated: Events, seed: int = 0) -> dict[str, dict[str, float]]:
    """{observable: {w1, floor, n}}: W1(real, generated) and W1(real half A, real half B), equal sizes."""
    from scipy.stats import wasserstein_distance

    n = min(len(real) // 2, len(generated))
    if n < 10:
        raise UserError(f"too few events for a comparison ({len(real)} real, {len(generated)} generated): the "
                        "floor needs two real halves of at least 10 events")
    order = np.random.default_rng(seed).permutation(len(real))
    half_a, half_b = real[np.sort(order[:n])], real[np.sort(order[n:2 * n])]
    gen = generated[:n]
    obs_a, obs_b, obs_g = observables(half_a), observables(half_b), observables(gen)
    table = {}
    for name in obs_a:
        a, b, g = (x[np.isfinite(x)] for x in (obs_a[name], obs_b[name], obs_g[name]))
        if min(len(a), len(b), len(g)) == 0:
            continue
        table[name] = {"w1": float(wasserstein_distance(a, g)), "floor": float(wasserstein_distance(a, b)),
                       "n": int(n)}
    return table


def plot(real: Events, generated: Events, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs_r, obs_g = observables(real), observables(generated)
    fig, axes = plt.subplots(3, 3, figsize=(13, 10))
    for ax, name in zip(axes.flat, obs_r):
        r, g = obs_r[name][np.isfinite(obs_r[name])], obs_g[name][np.isfinite(obs_g[name])]
        hi = np.quantile(np.concatenate([r, g]), 0.99) if len(r) + len(g) else 1
        lo = min(np.quantile(np.concatenate([r, g]), 0.01), 0)
        bins = np.linspace(lo, hi, 41)
        ax.hist(r, bins=bins, histtype="step", density=True, label="real")
        ax.hist(g, bins=bins, histtype="step", density=True, ls="--", label="generated")
        ax.set_xlabel(name)
    for ax in list(axes.flat)[len(obs_r):]:
        ax.set_visible(False)
    axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    from events.io import read_events

    parser = argparse.ArgumentParser(prog="python -m backbone.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", required=True, type=Path, help="real (or simulated) event file")
    parser.add_argument("--generated", required=True, type=Path, help="generated event file (sample.py)")
    parser.add_argument("--out", type=Path, default=None, help="folder for w1.json and the plot")
    parser.add_argument("--seed", type=int, default=0, help="seed of the real-sample split")
    args = parser.parse_args(argv)
    real, generated = read_events(args.real), read_events(args.generated)
    table = w1_table(real, generated, args.seed)
    print(f"{'observable':<24}{'W1(real, generated)':>22}{'floor W1(real, real)':>22}{'ratio':>8}")
    for name, row in table.items():
        ratio = row["w1"] / row["floor"] if row["floor"] > 0 else float("inf")
        print(f"{name:<24}{row['w1']:>22.4g}{row['floor']:>22.4g}{ratio:>8.1f}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "w1.json").write_text(json.dumps(table, indent=2))
        plot(real, generated, args.out / "real_vs_generated.png")
        print(f"wrote {args.out / 'w1.json'} and {args.out / 'real_vs_generated.png'}")
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m backbone.evaluate")
