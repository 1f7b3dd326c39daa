"""Empirical calibration of the `calibrated` score against a Standard Model reference.

An event's density splits exactly in two (finetune.scores.composition_kinematics): its composition
(which objects, in which order, and where it ends) and its kinematics given the composition, one term
per object. Neither is comparable across events as it stands: per-object terms carry offsets set by
the units of each type's features (a muon costs more nats than a jet), and both sums grow with the
number of objects. So each is turned into a probability under the reference, never through a formula
that assumes the model is exact:

    per object   u = P_ref[kinematic NLL of an object of the same type >= this one's]
    kinematics   the sum of the objects' -log u, then its tail probability among reference events of
                 the same multiplicity class
    composition  the composition NLL's tail probability in that class
    calibrated   Fisher's sum of the two -log p, its tail probability in that class; reported as
                 -log p, an Exp(1) score for the reference's events whatever their object count

A multiplicity class is an object count, or neighbouring counts pooled until each class holds at
least `min_events` reference events. An empirical tail probability is (1 + #{reference >= x}) / (n + 1),
exactly uniform on its grid for events from the reference's distribution; beyond the largest
reference value it continues as an exponential fitted to the largest few, so that events more extreme
than every reference event keep their order. The reference's own events are placed leaving themselves
out (rank / n), as a new event would be.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.errors import UserError

#: the fewest reference events of a multiplicity class (neighbouring counts are pooled up to it)
CLASS_EVENTS = 200
#: the fewest reference objects of a type to have its own per-object quantiles (others share everyone's)
TYPE_OBJECTS = 20
#: the largest reference values the exponential beyond the largest is fitted to
TAIL_POINTS = 20


@dataclass(frozen=True)
class EmpiricalTail:
    """The tail probabilities P[X >= x] of a sample, and beyond its largest value an exponential decay
    with the mean excess of its largest `TAIL_POINTS` values."""

    values: np.ndarray  # sorted ascending
    scale: float

    @classmethod
    def fit(cls, values: np.ndarray) -> "EmpiricalTail":
        values = np.sort(np.asarray(values, dtype=np.float64))
        if len(values) == 0:
            raise UserError("a calibration class without reference values")
        top = values[-min(TAIL_POINTS, len(values)):]
        return cls(values, max(float(np.mean(top - top[0])), 1e-9 * (1 + abs(float(top[-1])))))

    def log_p(self, x: np.ndarray) -> np.ndarray:
        """log P[X >= x] of new values x: log((1 + #{values >= x}) / (n + 1))."""
        x = np.asarray(x, dtype=np.float64)
        n = len(self.values)
        above = n - np.searchsorted(self.values, x, side="left")
        out = np.log1p(above) - math.log(n + 1)
        beyond = x > self.values[-1]
        out[beyond] = -math.log(n + 1) - (x[beyond] - self.values[-1]) / self.scale
        return out

    def log_p_own(self, x: np.ndarray) -> np.ndarray:
        """log P of the fitted values themselves, each leaving itself out: log(#{values >= x} / n)."""
        n = len(self.values)
        return np.log(n - np.searchsorted(self.values, np.asarray(x, dtype=np.float64), side="left")) - math.log(n)


def multiplicity_classes(counts: np.ndarray, min_events: int) -> np.ndarray:
    """The smallest object count of each class (ascending): counts pooled upwards until a class holds
    at least `min_events` of `counts`, a short remainder joined to the class below."""
    values, n = np.unique(counts, return_counts=True)
    starts, held = [], min_events
    for value, k in zip(values, n):
        if held >= min_events:
            starts.append(value)
            held = 0
        held += k
    if len(starts) > 1 and held < min_events:
        starts.pop()
    return np.asarray(starts, dtype=np.int64)


def class_of(counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The class index of each count; counts below the first class fall in it."""
    return np.clip(np.searchsorted(starts, counts, side="right") - 1, 0, None)


def kinematic_statistic(object_surprise: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The sum of each event's objects' -log u (flat, events delimited by `offsets`; 0 without objects):
    Fisher's statistic, which on the bundled model separates signals better within a multiplicity
    class than the larger of Fisher's and Tippett's (the surprise's finetune.scores.combined)."""
    return np.bincount(np.repeat(np.arange(len(offsets) - 1), np.diff(offsets)), object_surprise,
                       minlength=len(offsets) - 1)


@dataclass
class Calibration:
    """Per-type quantiles of the per-object kinematic NLL and, per multiplicity class, the reference
    distributions of the composition NLL, the kinematic statistic and their Fisher combination."""

    types: dict[int, EmpiricalTail]  # per object type, and -1: every object (types with few objects)
    starts: np.ndarray  # smallest object count of each multiplicity class
    composition: list[EmpiricalTail]
    kinematics: list[EmpiricalTail]
    combined: list[EmpiricalTail]
    class_events: list[int]

    @classmethod
    def fit(cls, parts: dict, min_events: int = CLASS_EVENTS) -> "Calibration":
        """From the reference events' `parts` (finetune.scores.composition_kinematics: `composition` per
        event, `kinematics` and `type` per object, `offsets`)."""
        offsets = np.asarray(parts["offsets"])
        counts = np.diff(offsets)
        if len(counts) < 2:
            raise UserError(f"method calibrated needs a reference of at least 2 events, got {len(counts)}")
        kin, types = np.asarray(parts["kinematics"], np.float64), np.asarray(parts["type"])
        if len(kin) == 0:
            raise UserError("method calibrated: the reference holds no objects")
        tails = {-1: EmpiricalTail.fit(kin)}
        own = tails[-1].log_p_own(kin)
        for t in np.unique(types):
            pick = types == t
            if pick.sum() >= TYPE_OBJECTS:
                tails[int(t)] = EmpiricalTail.fit(kin[pick])
                own[pick] = tails[int(t)].log_p_own(kin[pick])
        kin_stat = kinematic_statistic(-own, offsets)
        composition = np.asarray(parts["composition"], np.float64)
        starts = multiplicity_classes(counts, min_events)
        cls_of = class_of(counts, starts)
        comp_tails, kin_tails, both_tails, sizes = [], [], [], []
        for c in range(len(starts)):
            pick = cls_of == c
            comp, kins = EmpiricalTail.fit(composition[pick]), EmpiricalTail.fit(kin_stat[pick])
            fisher = -comp.log_p_own(composition[pick]) - kins.log_p_own(kin_stat[pick])
            comp_tails.append(comp)
            kin_tails.append(kins)
            both_tails.append(EmpiricalTail.fit(fisher))
            sizes.append(int(pick.sum()))
        return cls(tails, starts, comp_tails, kin_tails, both_tails, sizes)

    def object_surprise(self, kinematics: np.ndarray, types: np.ndarray) -> np.ndarray:
        """-log u of each object: its kinematic NLL's tail probability among reference objects of its type."""
        kinematics, types = np.asarray(kinematics, np.float64), np.asarray(types)
        out = np.empty(len(kinematics))
        for t in np.unique(types):
            pick = types == t
            out[pick] = -self.types.get(int(t), self.types[-1]).log_p(kinematics[pick])
        return out

    def score(self, parts: dict) -> dict:
        """`calibrated`, `composition` and `kinematics` (each -log of a tail probability in the event's
        multiplicity class; `calibrated` the two combined) of events' `parts`, and per object (flat)
        `objects`: each object's -log u."""
        offsets = np.asarray(parts["offsets"])
        objects = self.object_surprise(parts["kinematics"], parts["type"])
        kin_stat = kinematic_statistic(objects, offsets)
        composition = np.asarray(parts["composition"], np.float64)
        cls_of = class_of(np.diff(offsets), self.starts)
        out = {k: np.empty(len(cls_of)) for k in ("calibrated", "composition", "kinematics")}
        for c in np.unique(cls_of):
            pick = cls_of == c
            out["composition"][pick] = -self.composition[c].log_p(composition[pick])
            out["kinematics"][pick] = -self.kinematics[c].log_p(kin_stat[pick])
            out["calibrated"][pick] = -self.combined[c].log_p(out["composition"][pick] + out["kinematics"][pick])
        return {**out, "objects": objects}
