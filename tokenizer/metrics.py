"""What a tokenizer must show: codebook usage and perplexity, per-feature round-trip resolution."""
from __future__ import annotations

import awkward as ak
import numpy as np

from events.kinematics import wrap_phi
from events.model import Events, ObjectType


def codebook_usage(ids: np.ndarray, vocab_size: int) -> dict[str, float]:
    """Fraction of codes used at least once, and the perplexity exp(H) of the code distribution."""
    counts = np.bincount(ids, minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return {"codebook_size": int(vocab_size), "codebook_usage": float((counts > 0).mean()),
            "perplexity": float(np.exp(-(p * np.log(p)).sum()))}


def _width(residuals: np.ndarray) -> float:
    """Half the 16-84 % interval: a Gaussian's sigma, robust to tails."""
    if len(residuals) == 0:
        return float("nan")
    lo, hi = np.quantile(residuals, [0.16, 0.84])
    return float(0.5 * (hi - lo))


def resolution(original: Events, decoded: Events) -> dict[str, float]:
    """Round-trip resolution per feature (objects matched one to one, same order)."""
    a, b = ak.flatten(original.objects), ak.flatten(decoded.objects)
    col = lambda arr, k: ak.to_numpy(arr[k]).astype(np.float64)  # noqa: E731
    t = col(a, "type")
    if len(t) != len(b):
        raise ValueError("original and decoded events hold different numbers of objects")
    out = {"type_accuracy": float((t == col(b, "type")).mean()),
           "pt_rel_resolution": _width((col(b, "pt") - col(a, "pt")) / np.maximum(col(a, "pt"), 1e-3)),
           "phi_resolution": _width(wrap_phi(col(b, "phi") - col(a, "phi"))),
           "n_objects": int(len(t))}
    has_eta = t != ObjectType.MET
    out["eta_resolution"] = _width(col(b, "eta")[has_eta] - col(a, "eta")[has_eta])
    massive = has_eta & (col(a, "mass") > 1.0)
    out["mass_rel_resolution"] = _width((col(b, "mass") - col(a, "mass"))[massive] / col(a, "mass")[massive])
    jets = np.isin(t, (ObjectType.JET, ObjectType.BJET))
    if jets.any():
        out["btag_resolution"] = _width(col(b, "btag")[jets] - col(a, "btag")[jets])
    charged = np.isin(t, (ObjectType.ELECTRON, ObjectType.MUON, ObjectType.CONSTITUENT))
    if charged.any():
        out["charge_agreement"] = float((col(b, "charge")[charged] == col(a, "charge")[charged]).mean())
    return out
