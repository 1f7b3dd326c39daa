"""Event-level physics observables on `Events`: HT, multiplicities, top and W candidate masses.

The top candidate is the three-jet combination with the largest vector-sum pt that holds exactly
one b-jet (the CMS "M3" choice): no mass is targeted, so a peak at the top mass is real physics
and not an artefact of the selection. The W candidate is the two light jets of that triplet.
"""
from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from events.kinematics import invariant_mass, ptetaphim_to_cartesian
from events.model import Events, ObjectType


def ht(events: Events) -> np.ndarray:
    """Scalar pt sum of jets and b-jets per event."""
    jets = events.of_type(ObjectType.JET, ObjectType.BJET)
    return ak.to_numpy(ak.sum(jets.pt, axis=1)).astype(np.float64)


def leading_pt(events: Events, *types: ObjectType) -> np.ndarray:
    """pt of the leading object of the given types per event (NaN where there is none)."""
    objs = events.of_type(*types)
    return ak.to_numpy(ak.fill_none(ak.firsts(objs.pt), np.nan)).astype(np.float64)


@dataclass
class TopCandidates:
    """Hadronic top candidates: m(bjj), m(jj) of the chosen triplet, and which events have one."""

    m_bjj: np.ndarray
    m_jj: np.ndarray
    has_candidate: np.ndarray


def top_candidates(events: Events) -> TopCandidates:
    """The max-pt triplet with exactly one b-jet, per event with >= 1 b-jet and >= 2 light jets."""
    jets = events.of_type(ObjectType.JET, ObjectType.BJET)
    px, py, pz, e = ptetaphim_to_cartesian(jets.pt, jets.eta, jets.phi, jets.mass)
    vec = ak.zip({"px": px, "py": py, "pz": pz, "e": e, "b": jets["type"] == int(ObjectType.BJET)})
    a, b, c = ak.unzip(ak.combinations(vec, 3))
    n_b = ak.values_astype(a.b, np.int64) + b.b + c.b
    sx, sy, sz, se = a.px + b.px + c.px, a.py + b.py + c.py, a.pz + b.pz + c.pz, a.e + b.e + c.e
    score = ak.where(n_b == 1, np.hypot(sx, sy), -1.0)
    best = ak.argmax(score, axis=1, keepdims=True)
    has = ak.to_numpy(ak.fill_none(ak.firsts(score[best]), -1.0)) > 0
    first = lambda x: ak.to_numpy(ak.fill_none(ak.firsts(x[best]), 0.0)).astype(np.float64)  # noqa: E731
    m_bjj = invariant_mass(first(sx), first(sy), first(sz), first(se))
    # the light pair is the triplet minus its b-jet
    bx = first(ak.where(a.b, a.px, ak.where(b.b, b.px, c.px)))
    by = first(ak.where(a.b, a.py, ak.where(b.b, b.py, c.py)))
    bz = first(ak.where(a.b, a.pz, ak.where(b.b, b.pz, c.pz)))
    be = first(ak.where(a.b, a.e, ak.where(b.b, b.e, c.e)))
    m_jj = invariant_mass(first(sx) - bx, first(sy) - by, first(sz) - bz, first(se) - be)
    return TopCandidates(m_bjj[has], m_jj[has], has)


def peak_position(values: np.ndarray, lo: float, hi: float, bin_width: float) -> float:
    """Centre of the most populated bin after a 3-bin running mean (a robust histogram mode)."""
    edges = np.arange(lo, hi + bin_width, bin_width)
    counts, _ = np.histogram(values, edges)
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    i = int(np.argmax(smooth))
    return float(0.5 * (edges[i] + edges[i + 1]))
