"""Control plots of event samples: multiplicities, kinematics, top and W candidate masses, jet mass."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from events.model import Events, ObjectType
from events.physics import ht, leading_pt, top_candidates


def figure_grid(n_panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(n_panels, 3)
    rows = (n_panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_event_overview(samples: dict[str, Events], path: str | Path) -> Path:
    """One panel per observable, one line per sample (unit-normalized)."""
    panels = [
        ("jet multiplicity", lambda e: e.count(ObjectType.JET, ObjectType.BJET), np.arange(-0.5, 13.5, 1)),
        ("b-jet multiplicity", lambda e: e.count(ObjectType.BJET), np.arange(-0.5, 6.5, 1)),
        ("lepton multiplicity", lambda e: e.count(ObjectType.ELECTRON, ObjectType.MUON), np.arange(-0.5, 5.5, 1)),
        ("leading jet pt [GeV]", lambda e: leading_pt(e, ObjectType.JET, ObjectType.BJET), np.linspace(0, 500, 51)),
        ("HT [GeV]", ht, np.linspace(0, 1500, 61)),
        ("MET [GeV]", lambda e: e.met[0], np.linspace(0, 300, 61)),
        ("m(bjj), max-pt triplet [GeV]", lambda e: top_candidates(e).m_bjj, np.linspace(0, 400, 41)),
        ("m(jj) of that triplet [GeV]", lambda e: top_candidates(e).m_jj, np.linspace(0, 250, 51)),
    ]
    fig, axes = figure_grid(len(panels))
    for ax, (label, func, bins) in zip(axes, panels):
        for name, events in samples.items():
            values = func(events)
            values = values[np.isfinite(values)]
            # per event, not per entry: a sample that rarely forms a top candidate shows as rare
            ax.hist(values, bins=bins, histtype="step", weights=np.full(len(values), 1 / max(len(events), 1)),
                    label=name)
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of events")
    if "m(bjj)" in panels[6][0]:
        axes[6].axvline(172.5, color="grey", ls=":", lw=1)
        axes[7].axvline(80.4, color="grey", ls=":", lw=1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def plot_jet_overview(samples: dict[str, Events], path: str | Path) -> Path:
    """Constituent-mode samples: jet mass, constituent multiplicity, constituent pt and angles."""
    import awkward as ak

    def flat(e, field):
        return ak.to_numpy(ak.flatten(e.objects[field]))

    panels = [
        ("jet mass [GeV]", lambda e: e.info["jet_mass"], np.linspace(0, 300, 61)),
        ("constituents per jet", lambda e: e.info.get("jet_nparticles", e.count(ObjectType.CONSTITUENT)),
         np.linspace(0, 200, 51)),
        ("constituent pt [GeV]", lambda e: flat(e, "pt"), np.logspace(-1, 3, 41)),
        ("constituent deta", lambda e: flat(e, "eta"), np.linspace(-0.8, 0.8, 41)),
        ("constituent dphi", lambda e: flat(e, "phi"), np.linspace(-0.8, 0.8, 41)),
    ]
    fig, axes = figure_grid(len(panels))
    for ax, (label, func, bins) in zip(axes, panels):
        for name, events in samples.items():
            ax.hist(func(events), bins=bins, histtype="step", density=True, label=name)
        ax.set_xlabel(label)
        if "pt" in label:
            ax.set_xscale("log")
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
