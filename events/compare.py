"""python -m events.compare REFERENCE OTHER: how far one event sample is from another, in physics observables.

Wasserstein-1 distances between the distributions of physics observables (multiplicities, leading jet pt,
HT, MET, top candidate masses; jet mass and constituents for jet files) of OTHER and of REFERENCE, the
larger sample (simulation, or the real events a generator is compared with). Each distance stands next
to its statistical floor: the distance a sample of the same size as OTHER drawn from REFERENCE itself
has from the rest of REFERENCE (median over random draws, with the 95% quantile and a p-value). A
distance at the floor means OTHER cannot be told from REFERENCE with this many events.

    python -m events.compare simulation.h5 data.root --labels simulation data --out runs/compare

`backbone.evaluate` (real against generated events) is this comparison with other labels.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import awkward as ak
import numpy as np

from common.cli import UserError, nonnegative_int, positive_int, run_cli
from common.paths import as_path
from events.model import Events, ObjectType as T

#: the smallest samples a floor is drawn for: OTHER's events, and REFERENCE's (subsample and rest)
MIN_OTHER, MIN_REFERENCE = 5, 20
DRAWS = 100


def constituent_jet_mass(events: Events) -> np.ndarray:
    """Jet mass from the constituents (pt, deta, dphi, m), about the jet axis."""
    from events.kinematics import invariant_mass, ptetaphim_to_cartesian

    c = events.of_type(T.CONSTITUENT)
    px, py, pz, e = ptetaphim_to_cartesian(c.pt, c.eta, c.phi, c.mass)
    return invariant_mass(*(ak.to_numpy(ak.sum(v, axis=1)).astype(np.float64) for v in (px, py, pz, e)))


_PER_CONSTITUENT = ("constituent pt [GeV]", "constituent deta", "constituent dphi")


def _indexed_observables(events: Events) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (values, the event of each value)}."""
    every = np.arange(len(events))
    return {name: (values, np.repeat(every, events.count(T.CONSTITUENT)) if name in _PER_CONSTITUENT else every)
            for name, values in observables(events).items()}


def observables(events: Events) -> dict[str, np.ndarray]:
    """Per-event observables (NaN where undefined, e.g. no top candidate); for jet files (constituents)
    also the constituents' pt, deta and dphi, one value per constituent."""
    from events.physics import ht, leading_pt, top_candidates

    if events.count(T.CONSTITUENT).any():
        flat = ak.flatten(events.of_type(T.CONSTITUENT))
        return {"constituents": events.count(T.CONSTITUENT).astype(float),
                "jet mass [GeV]": constituent_jet_mass(events),
                **{name: ak.to_numpy(flat[field]).astype(float)
                   for name, field in zip(_PER_CONSTITUENT, ("pt", "eta", "phi"))}}
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


def _w1(cdf_a: np.ndarray, cdf_b: np.ndarray, widths: np.ndarray) -> float:
    """W1 of two empirical CDFs tabulated on the same sorted values (scipy's wasserstein_distance)."""
    return float(np.sum(np.abs(cdf_a - cdf_b)[:-1] * widths))


def _cdf(members: np.ndarray) -> np.ndarray | None:
    """Empirical CDF, on the pooled sorted values, of the sample whose values are flagged in `members`."""
    total = members.sum()
    return np.cumsum(members) / total if total else None


def w1_table(reference: Events, other: Events, seed: int = 0, draws: int = DRAWS) -> dict[str, dict[str, float]]:
    """{observable: {w1, floor, floor_q95, p_value, n}}: how far `other` is from `reference`, against
    how far it would be if it were drawn from `reference`.

    Each draw splits `reference` at random into a subsample of `n` events (the size of `other`; at most
    half the reference: a larger `other` is cut to its first len(reference) // 2 events) and the rest.
    `w1` is the median over draws of W1(other, rest), `floor` and `floor_q95` the median and 95% quantile
    of W1(subsample, rest) (the same rests, so both are alike in size and noise), `p_value` the fraction
    of draws whose W1(subsample, rest) >= `w1`, as (k + 1) / (draws + 1). A draw whose subsample has no
    value of an observable (e.g. no top candidate) does not count for it; an observable without values in
    either sample is left out.
    """
    n = min(len(other), len(reference) // 2)
    if len(other) < MIN_OTHER or len(reference) < MIN_REFERENCE:
        raise UserError(f"too few events for a comparison ({len(reference)} reference, {len(other)} other): the "
                        f"floor needs at least {MIN_REFERENCE} reference and {MIN_OTHER} other events")
    if draws < 1:
        raise UserError(f"draws must be at least 1 (got {draws})")
    ref_obs, other_obs = _indexed_observables(reference), _indexed_observables(other[:n])
    if set(ref_obs) != set(other_obs):
        kinds = ["jets with constituents" if "jet mass [GeV]" in o else "events" for o in (ref_obs, other_obs)]
        raise UserError(f"the samples hold different kinds of events (reference: {kinds[0]}, other: {kinds[1]})")
    pooled = {}  # per observable: both samples' values sorted together, whose event each is, W1 inputs
    for name, (ref_values, ref_events) in ref_obs.items():
        values = np.concatenate([ref_values, other_obs[name][0]])
        event = np.concatenate([ref_events, np.full(len(other_obs[name][0]), len(reference))])  # other: last
        keep = np.isfinite(values)
        order = np.argsort(values[keep], kind="stable")
        values, event = values[keep][order], event[keep][order]
        is_other = event == len(reference)
        if is_other.any() and not is_other.all():
            pooled[name] = (event, is_other, _cdf(is_other), np.diff(values), [], [])
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        in_sub = np.zeros(len(reference) + 1, dtype=bool)
        in_sub[rng.choice(len(reference), n, replace=False)] = True
        for event, is_other, cdf_other, widths, observed, floor in pooled.values():
            sub = in_sub[event]
            cdf_sub, cdf_rest = _cdf(sub), _cdf(~sub & ~is_other)
            if cdf_sub is not None and cdf_rest is not None:
                observed.append(_w1(cdf_other, cdf_rest, widths))
                floor.append(_w1(cdf_sub, cdf_rest, widths))
    table = {}
    for name, (*_, observed, floor) in pooled.items():
        if floor:
            w1, floor = float(np.median(observed)), np.array(floor)
            table[name] = {"w1": w1, "floor": float(np.median(floor)), "floor_q95": float(np.quantile(floor, 0.95)),
                           "p_value": float((np.sum(floor >= w1) + 1) / (len(floor) + 1)), "n": int(n)}
    return table


def ratio(row: dict[str, float]) -> float:
    """W1 over its floor (inf where the floor is 0)."""
    return row["w1"] / row["floor"] if row["floor"] > 0 else float("inf")


def _bins(samples: list[np.ndarray], n_bins: int = 40) -> tuple[np.ndarray, bool]:
    """Bins from the 1% and 99% quantiles of each sample, and whether they hold whole numbers each."""
    both = np.concatenate(samples)
    if not len(both):
        return np.linspace(0, 1, n_bins + 1), False
    lo = min(min(np.quantile(s, 0.01) for s in samples if len(s)), 0)
    hi = max(np.quantile(s, 0.99) for s in samples if len(s))
    if np.all(both == np.round(both)):  # whole-number bins, as many as n_bins at most
        width = max(1, int(np.ceil((np.ceil(hi) - np.floor(lo) + 1) / n_bins)))
        return np.arange(np.floor(lo) - 0.5, np.ceil(hi) + width, width), True
    return np.linspace(lo, hi if hi > lo else lo + 1, n_bins + 1), False


def plot(reference: Events, other: Events, path: str | Path, labels: tuple[str, str] = ("reference", "other"),
         table: dict[str, dict[str, float]] | None = None) -> Path:
    """One panel per observable, both samples density-normalized. A sample with fewer than 200 values in a
    panel is drawn as points with Poisson errors in wider bins (every k-th edge of the other's, about
    2 sqrt(values) bins). With `table` (w1_table's), each panel shows W1/floor and the p-value."""
    from events.plots import figure_grid

    obs = [observables(reference), observables(other)]
    fig, axes = figure_grid(len(obs[0]))
    for ax, name in zip(axes, obs[0]):
        values = [o[name][np.isfinite(o[name])] if name in o else np.array([]) for o in obs]
        bins, whole = _bins(values)
        for v, label, style in zip(values, labels, ("-", "--")):
            label = f"{label} ({len(v)})"
            if len(v) >= 200:
                ax.hist(v, bins=bins, histtype="step", density=True, ls=style, label=label)
                continue
            k = 1 if whole else min((1, 2, 4, 5, 8, 10), key=lambda d: abs(40 / d - 2 * np.sqrt(len(v))))
            edges = bins[::k]
            counts, _ = np.histogram(v, bins=edges)
            scale = 1 / max(len(v), 1) / np.diff(edges)
            shown = counts > 0
            ax.errorbar(((edges[:-1] + edges[1:]) / 2)[shown], (counts * scale)[shown],
                        yerr=(np.sqrt(counts) * scale)[shown], fmt="o", ms=3, label=label)
        if table and name in table:
            ax.set_title(f"W1/floor {ratio(table[name]):.1f}, p = {table[name]['p_value']:.2g}", fontsize=9)
        ax.set_xlabel(name)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def report(reference: Events, other: Events, labels: tuple[str, str], out: Path | None = None, seed: int = 0,
           draws: int = DRAWS, plot_name: str = "compare.png") -> dict[str, dict[str, float]]:
    """Print the W1 table (and with `out`, write w1.json and the plot there); returns the table."""
    table = w1_table(reference, other, seed, draws)
    n = min(len(other), len(reference) // 2)
    used = f"its first {n} of {len(other)} events" if n < len(other) else f"{n} events"
    print(f"reference: {labels[0]} ({len(reference)} events); compared: {labels[1]} ({used}); floor: {n}-event "
          f"subsamples of the reference against its rest, {draws} draws (seed {seed})")
    print(f"{'observable':<24}{'W1':>11}{'floor':>11}{'ratio':>8}{'p-value':>9}{'n':>7}")
    for name, row in table.items():
        print(f"{name:<24}{row['w1']:>11.4g}{row['floor']:>11.4g}{ratio(row):>8.1f}{row['p_value']:>9.3f}"
              f"{row['n']:>7}")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "w1.json").write_text(json.dumps(table, indent=2))
        plot(reference, other, out / plot_name, labels, table)
        print(f"wrote {out / 'w1.json'} and {out / plot_name}")
    return table


def main(argv: list[str] | None = None) -> int:
    from events.io import read_events
    from events.options import add_read_arguments, read_options

    parser = argparse.ArgumentParser(
        prog="python -m events.compare", formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s REFERENCE OTHER [--labels REFERENCE OTHER] [--format FMT [FMT]] [--out DIR] [--seed N] "
              "[--draws N] [--selection S] [--era E] [--btag-wp WP] [--bad-kinematics error|flag]",
        description="\n\n".join(__doc__.split("\n\n")[1:3]),
        epilog="columns: W1 = median over draws of W1(OTHER, rest of REFERENCE); floor = median of W1(subsample,\n"
               "rest); ratio = W1 / floor; p-value = fraction of draws with W1(subsample, rest) >= W1, as\n"
               "(k + 1) / (draws + 1); n = events of OTHER used (its first len(REFERENCE) // 2 if it is larger).\n"
               "With --out: w1.json (the table) and compare.png (both samples' distributions, density-normalized).")
    parser.add_argument("reference", type=as_path, metavar="REFERENCE",
                        help="the larger sample, e.g. simulation (ROOT or HDF5)")
    parser.add_argument("other", type=as_path, metavar="OTHER", help="the sample compared with it, e.g. real data")
    parser.add_argument("--labels", nargs=2, metavar=("REFERENCE", "OTHER"), default=None,
                        help="names in the table and plot legend (default: the file names)")
    parser.add_argument("--format", nargs="+", metavar="FMT", default=["auto"],
                        help="input format, one for both files or one each: auto (default), hdf5, a built-in "
                             "schema name (nanoaod, delphes, ...) or a YAML branch map")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="folder for w1.json and compare.png")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N", help="seed of the reference subsamples (default 0)")
    parser.add_argument("--draws", type=positive_int, default=DRAWS, metavar="N",
                        help=f"random reference subsamples for the floor and p-value (default {DRAWS}; the "
                             f"smallest p-value is 1 / (N + 1))")
    add_read_arguments(parser, selection="auto")
    args = parser.parse_args(argv)
    if len(args.format) > 2:
        raise UserError(f"--format takes one format, or one per file (got {len(args.format)})")
    formats = args.format * 2 if len(args.format) == 1 else args.format
    names = tuple(Path(p).name for p in (args.reference, args.other))  # a URL's last part, too
    labels = args.labels or (names if names[0] != names[1] else (str(args.reference), str(args.other)))
    # real data read with the selection that defines objects as the simulation does (--selection auto)
    reference, other = (read_events(p, f, options=read_options(args))
                        for p, f in zip((args.reference, args.other), formats))
    report(reference, other, tuple(labels), args.out, args.seed, args.draws)
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m events.compare")
