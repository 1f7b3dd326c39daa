"""Pretraining loss curves."""
from __future__ import annotations

from pathlib import Path

from events.plots import figure_grid


def plot_losses(metrics: dict, path: str | Path) -> Path:
    """Training loss (running mean) and validation loss of each objective against the step (the density
    head's negative log-likelihood per object too, where the backbone has one)."""
    import matplotlib.pyplot as plt

    panels = [("next", "next-token prediction", "cross-entropy"), ("masked", "masked-token prediction", "cross-entropy")]
    if "val_loss_density" in metrics["history"][-1]:
        panels.append(("density", "density head", "-log p per object (head coordinates)"))
    fig, axes = figure_grid(len(panels))
    curve = metrics.get("curve") or [[h["step"], *(h[f"train_loss_{k}"] for k, _, _ in panels)]
                                     for h in metrics["history"]]
    for column, (ax, (key, title, ylabel)) in enumerate(zip(axes, panels), start=1):
        ax.plot([c[0] for c in curve], [c[column] for c in curve], label="training (running mean)")
        ax.plot([h["step"] for h in metrics["history"]], [h[f"val_loss_{key}"] for h in metrics["history"]], "o-",
                label="validation")
        ax.set(xlabel="step", ylabel=ylabel, title=title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
