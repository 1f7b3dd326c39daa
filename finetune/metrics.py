"""Classification and anomaly-detection figures of merit."""
from __future__ import annotations

import numpy as np


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of class probabilities; 0 log 0 = 0."""
    p = np.asarray(probs, dtype=np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(signal efficiency, background efficiency) over all thresholds, a higher score being more signal-like."""
    from sklearn.metrics import roc_curve

    # every threshold: points on a straight segment of the curve are where the best SIC can lie
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return tpr, fpr


def rejection_at(labels: np.ndarray, scores: np.ndarray, signal_eff: float) -> float:
    """1 / background efficiency at the given signal efficiency (inf where no background passes)."""
    tpr, fpr = roc(labels, scores)
    eb = float(np.interp(signal_eff, tpr, fpr))
    return 1.0 / eb if eb > 0 else float("inf")


def max_sic(labels: np.ndarray, scores: np.ndarray, min_background: int = 10) -> float:
    """Maximum significance improvement eps_s / sqrt(eps_b) over thresholds that keep at least
    `min_background` background events (tighter cuts are statistical noise)."""
    tpr, fpr = roc(labels, scores)
    n_bkg = int((np.asarray(labels) == 0).sum())
    ok = fpr * n_bkg >= min_background
    return float(np.max(tpr[ok] / np.sqrt(fpr[ok]))) if ok.any() else float("nan")


def sic_at(labels: np.ndarray, scores: np.ndarray, background_eff: float, min_background: int = 10) -> float:
    """Significance improvement eps_s / sqrt(eps_b) at the background efficiency `background_eff`, the
    signal efficiency read off the ROC between its two nearest thresholds (a cut there, randomized
    between them); NaN where fewer than `min_background` background events would pass."""
    if not 0 < background_eff <= 1:
        raise ValueError(f"background_eff must be in (0, 1], got {background_eff}")
    tpr, fpr = roc(labels, scores)
    if background_eff * int((np.asarray(labels) == 0).sum()) < min_background:
        return float("nan")
    i = int(np.searchsorted(fpr, background_eff, side="right")) - 1  # the last threshold passing no more
    eps_s = tpr[i] if fpr[i] == background_eff or i + 1 == len(fpr) else (
        tpr[i] + (tpr[i + 1] - tpr[i]) * (background_eff - fpr[i]) / (fpr[i + 1] - fpr[i]))
    return float(eps_s / np.sqrt(background_eff))


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> dict:
    """AUC, maximum SIC and background rejection at 10%, 30% and 50% signal efficiency."""
    from sklearn.metrics import roc_auc_score

    return {"auc": float(roc_auc_score(labels, scores)), "max_sic": max_sic(labels, scores),
            **{f"rejection_at_{int(e * 100)}": rejection_at(labels, scores, e) for e in (0.1, 0.3, 0.5)}}


def classification_metrics(y: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Per-class one-vs-rest ROC AUC and their mean, accuracy, confusion matrix (rows: true class,
    normalized); binary tasks add background rejection at fixed signal efficiency (class 1 = signal)."""
    from sklearn.metrics import confusion_matrix, roc_auc_score

    present = [c for c in range(len(classes)) if 0 < (y == c).sum() < len(y)]
    aucs = {classes[c]: float(roc_auc_score(y == c, probs[:, c])) for c in present}
    out = {"auc": aucs, "mean_auc": float(np.mean(list(aucs.values()))) if aucs else float("nan"),
           "accuracy": float((probs.argmax(1) == y).mean()), "events": int(len(y)),
           "confusion": confusion_matrix(y, probs.argmax(1), labels=range(len(classes)), normalize="true").round(4)
           .tolist()}
    if len(classes) == 2 and len(present) == 2:
        out.update({k: v for k, v in binary_metrics(y, probs[:, 1]).items() if k.startswith("rejection")})
    return out
