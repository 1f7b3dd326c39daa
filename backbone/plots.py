"""Pretraining loss curves."""
from __future__ import annotations

from pathlib import Path

from events.plots import figure_grid


def plot_losses(metrics: dict, path: str | Path) -> Path:
    """Training loss (running mean) and validation loss of both objectives against the step."""
    import matplotlib.pyplot as plt

    fig, axes = figure_grid(2)
    for ax, key, title in zip(axes, ("next", "masked"), ("next-token", "masked-token")):
        curve = metrics.get("curve") or [[h["step"], h["train_loss_next"], h["train_loss_masked"]]
                                         for h in metrics["history"]]
        column = 1 if key == "next" else 2
        ax.plot([c[0] for c in curve], [c[column] for c in curve], label="training (running mean)")
        ax.plot([h["step"] for h in metrics["history"]], [h[f"val_loss_{key}"] for h in metrics["history"]], "o-",
                label="validation")
        ax.set(xlabel="step", ylabel="cross-entropy", title=f"{title} prediction")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
