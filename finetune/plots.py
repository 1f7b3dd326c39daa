"""Plots of fine-tuning and anomaly results: ROC curves, confusion matrix, data efficiency, SIC."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from events.plots import figure_grid
from finetune.metrics import roc


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return Path(path)


def plot_classification(y: np.ndarray, probs: np.ndarray, classes: tuple[str, ...], metrics: dict,
                        path: str | Path) -> Path:
    """One-vs-rest ROC curves (background rejection vs signal efficiency) and the confusion matrix."""
    fig, (ax_roc, ax_cm) = figure_grid(2)
    for c, name in enumerate(classes):
        if name in metrics["auc"]:
            tpr, fpr = roc(y == c, probs[:, c])
            ok = fpr > 0
            ax_roc.plot(tpr[ok], 1 / fpr[ok], label=f"{name} (AUC {metrics['auc'][name]:.3f})")
    ax_roc.set(yscale="log", xlabel="signal efficiency", ylabel="background rejection", title="one vs rest")
    ax_roc.legend(fontsize=8)
    cm = np.array(metrics["confusion"])
    ax_cm.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(cm):
        ax_cm.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v > 0.5 else "black")
    ax_cm.set(xticks=range(len(classes)), xticklabels=classes, yticks=range(len(classes)), yticklabels=classes,
              xlabel="predicted", ylabel="true", title=f"accuracy {metrics['accuracy']:.3f}")
    return _save(fig, path)


def plot_data_efficiency(rows: list[dict], metric: str, path: str | Path) -> Path:
    """`metric` against the number of labelled training events, one line (mean, min-max band over seeds) per mode."""
    fig, (ax,) = figure_grid(1)
    for mode in dict.fromkeys(r["mode"] for r in rows):
        ns = sorted({r["n_train"] for r in rows if r["mode"] == mode})
        vals = [[r[metric] for r in rows if r["mode"] == mode and r["n_train"] == n] for n in ns]
        ax.plot(ns, [np.mean(v) for v in vals], "o-", label=mode)
        ax.fill_between(ns, [min(v) for v in vals], [max(v) for v in vals], alpha=0.2)
    ax.set(xscale="log", xlabel="labelled training events", ylabel=metric.replace("_", " "))
    ax.legend()
    return _save(fig, path)


def plot_anomaly(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """Per method: background rejection and significance improvement vs signal efficiency."""
    fig, (ax_roc, ax_sic) = figure_grid(2)
    for name, (labels, scores) in curves.items():
        tpr, fpr = roc(labels, scores)
        ok = fpr * (labels == 0).sum() >= 10
        ax_roc.plot(tpr[ok], 1 / fpr[ok], label=name)
        ax_sic.plot(tpr[ok], tpr[ok] / np.sqrt(fpr[ok]), label=name)
    ax_roc.plot([0, 1], [1, 1], "k:", lw=0.8)
    ax_roc.set(yscale="log", xlabel="signal efficiency", ylabel="background rejection")
    ax_sic.axhline(1, color="k", ls=":", lw=0.8)
    ax_sic.set(xlabel="signal efficiency", ylabel="significance improvement")
    ax_roc.legend(fontsize=8)
    return _save(fig, path)


def plot_uniformity(p_values: dict[str, np.ndarray], path: str | Path, bins: int = 20) -> Path:
    """Histograms of p-values, one panel per group (e.g. object count), each against the flat line and
    its +-1 sigma band that uniform p-values of that many events fill."""
    fig, axes = figure_grid(len(p_values))
    for ax, (name, p) in zip(axes, p_values.items()):
        expected = len(p) / bins
        ax.hist(p, bins=bins, range=(0, 1), histtype="step", color="C0")
        ax.axhspan(expected - np.sqrt(expected), expected + np.sqrt(expected), color="0.85")
        ax.axhline(expected, color="k", lw=0.8)
        ax.set(xlabel="p-value", ylabel="events", title=f"{name} ({len(p)} events)", xlim=(0, 1))
    return _save(fig, path)
