"""Invertible per-object feature transforms with normalization fitted on training data.

Event mode: log pt, eta, cos phi, sin phi (phi is periodic), log(1 + mass), b-tag score.
Constituent mode: log pt, deta, dphi, log(1 + mass). Charge and type are categorical, handled apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from events.model import Events, ObjectType

FEATURES = {
    "event": ("log_pt", "eta", "cos_phi", "sin_phi", "log_mass", "btag"),
    "constituent": ("log_pt", "eta", "phi", "log_mass"),
}
TYPES = {
    "event": (ObjectType.JET, ObjectType.BJET, ObjectType.ELECTRON, ObjectType.MUON, ObjectType.PHOTON,
              ObjectType.MET),
    "constituent": (ObjectType.CONSTITUENT,),
}
PT_FLOOR = 1e-3  # GeV; log pt of a zero-pt object (e.g. MET exactly 0) is taken at this floor


def in_frame(events: Events, azimuth: str) -> tuple[Events, np.ndarray | None]:
    """The events as a tokenizer of this `azimuth` (ModelConfig) sees them, with the angle each was turned
    by (None: as they are)."""
    if azimuth == "absolute":
        return events, None
    from events.azimuth import leading_azimuth, rotate_azimuth

    angle = leading_azimuth(events)
    return rotate_azimuth(events, angle), angle


def flat_objects(objects: ak.Array) -> dict[str, np.ndarray]:
    """The objects of all events as flat numpy columns, plus `counts` per event."""
    flat = ak.flatten(objects)
    out = {k: ak.to_numpy(flat[k]) for k in flat.fields}
    out["counts"] = ak.to_numpy(ak.num(objects)).astype(np.int64)
    return out


def raw_features(mode: str, obj: dict[str, np.ndarray]) -> np.ndarray:
    """(n_objects, n_features) features before normalization."""
    pt = np.log(np.maximum(obj["pt"].astype(np.float64), PT_FLOOR))
    mass = np.log1p(np.maximum(obj["mass"].astype(np.float64), 0.0))
    if mode == "event":
        phi = obj["phi"].astype(np.float64)
        cols = [pt, obj["eta"], np.cos(phi), np.sin(phi), mass, obj["btag"]]
    else:
        cols = [pt, obj["eta"], obj["phi"], mass]
    return np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)


@dataclass
class FeatureTransform:
    """Normalization (mean, std per feature) fitted on training objects; invertible."""

    mode: str
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, mode: str, obj: dict[str, np.ndarray]) -> "FeatureTransform":
        x = raw_features(mode, obj)
        std = x.std(axis=0)
        return cls(mode, x.mean(axis=0), np.where(std > 1e-6, std, 1.0))

    @property
    def names(self) -> tuple[str, ...]:
        return FEATURES[self.mode]

    def transform(self, obj: dict[str, np.ndarray]) -> np.ndarray:
        return ((raw_features(self.mode, obj) - self.mean) / self.std).astype(np.float32)

    def inverse(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """pt, eta, phi, mass, btag from normalized features (n_objects, n_features)."""
        raw = x.astype(np.float64) * self.std + self.mean
        log_mass = raw[:, self.names.index("log_mass")]
        out = {"pt": np.exp(raw[:, 0]), "eta": raw[:, 1], "mass": np.expm1(np.maximum(log_mass, 0.0))}
        if self.mode == "event":
            out["phi"] = np.arctan2(raw[:, 3], raw[:, 2])
            out["btag"] = raw[:, 5]
        else:
            out["phi"] = raw[:, 2]
            out["btag"] = np.zeros(len(raw))
        return out

    def to_dict(self) -> dict:
        return {"mode": self.mode, "names": list(self.names), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureTransform":
        return cls(d["mode"], np.asarray(d["mean"]), np.asarray(d["std"]))


def event_chunks(counts: np.ndarray, max_objects: int) -> list[tuple[int, int]]:
    """Consecutive event ranges [start, stop) holding about `max_objects` objects each (whole events)."""
    if len(counts) == 0:
        return []
    before = np.cumsum(counts) - counts
    chunk = before // max(max_objects, 1)
    bounds = np.flatnonzero(np.diff(chunk)) + 1
    edges = np.concatenate([[0], bounds, [len(counts)]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))
