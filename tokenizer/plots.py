"""Tokenizer plots: feature distributions before/after the round trip, residuals, codebook usage."""
from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from events.kinematics import wrap_phi
from events.model import Events, ObjectType


def plot_tokenizer(original: Events, decoded: Events, ids: np.ndarray, tokenizer, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = ak.flatten(original.objects), ak.flatten(decoded.objects)
    col = lambda arr, k: ak.to_numpy(arr[k]).astype(np.float64)  # noqa: E731
    types = col(a, "type")
    groups = {ObjectType(t).name.lower(): types == t for t in tokenizer.model.types if (types == t).any()}
    features = [("pt [GeV]", "pt", np.logspace(-1, 3.3, 60), True), ("eta", "eta", np.linspace(-3, 3, 61), False),
                ("phi", "phi", np.linspace(-np.pi, np.pi, 61), False), ("mass [GeV]", "mass", np.linspace(0, 80, 61), False)]
    if tokenizer.mode == "event":
        features.append(("b-tag score", "btag", np.linspace(0, 1, 51), False))
    paths = []
    fig, axes = plt.subplots(len(groups), len(features), figsize=(3.3 * len(features), 2.6 * len(groups)), squeeze=False)
    for row, (name, sel) in zip(axes, groups.items()):
        for ax, (label, key, bins, logx) in zip(row, features):
            ax.hist(col(a, key)[sel], bins=bins, histtype="step", label="original")
            ax.hist(col(b, key)[sel], bins=bins, histtype="step", ls="--", label="decoded")
            ax.set_xlabel(f"{name} {label}", fontsize=8)
            if logx:
                ax.set_xscale("log")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "features_round_trip.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    pt = np.maximum(col(a, "pt"), 1e-3)
    residuals = [("(pt' - pt) / pt", (col(b, "pt") - pt) / pt, (-0.5, 0.5)),
                 ("eta' - eta", col(b, "eta") - col(a, "eta"), (-0.3, 0.3)),
                 ("phi' - phi", wrap_phi(col(b, "phi") - col(a, "phi")), (-0.3, 0.3))]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    for ax, (label, values, rng) in zip(axes, residuals):
        for name, sel in groups.items():
            inside = values[sel][(values[sel] > rng[0]) & (values[sel] < rng[1])]
            if len(inside) == 0 or (name == "met" and label.startswith("eta")):
                continue  # MET has no eta: a spike at 0 would flatten the others
            ax.hist(inside, bins=np.linspace(*rng, 81), histtype="step", density=True, label=name)
        ax.set_xlabel(label)
    axes[0].legend(fontsize=7)
    counts = np.sort(np.bincount(ids, minlength=tokenizer.vocab_size))[::-1]
    axes[3].plot(np.arange(1, len(counts) + 1), np.maximum(counts, 0.5))
    axes[3].set_xscale("log")
    axes[3].set_yscale("log")
    axes[3].set_xlabel(f"code rank ({(counts > 0).mean():.1%} of {len(counts)} used)")
    axes[3].set_ylabel("objects per code")
    fig.tight_layout()
    paths.append(out / "residuals_and_usage.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
