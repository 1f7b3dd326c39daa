"""Object selections named in a branch map, applied by the reader, with a cutflow.

Real NanoAOD keeps objects the built-in source's reconstruction never makes: jets down to 15 GeV and
out to |eta| = 5, leptons and photons with no identification or isolation. A selection says which
objects count: pt and |eta| thresholds, requirements on ID or isolation branches, and removal of jets
that overlap selected leptons or photons (the built-in source clusters jets from what is left once the
isolated leptons and photons are taken out). Objects are removed, never events; the cutflow counts
what each requirement removed, per collection.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from events.btag import check_working_point
from events.kinematics import delta_r


@dataclass(frozen=True)
class Requirement:
    """An object passes when the branch value is >= min, <= max and has all `bits` set."""

    #: the branch, or alternatives: the first present whose values carry information in this file
    #: (an ID branch left unfilled, e.g. False for every muon, is passed over and reported)
    branch: str | list[str]
    min: float | None = None
    max: float | None = None
    bits: int | None = None
    #: a requirement none of whose branches the file has is skipped and reported in the cutflow either way
    #: (a skim may drop ID branches); optional ones without the warning on stderr
    optional: bool = False

    def __post_init__(self):
        if self.min is None and self.max is None and self.bits is None:
            raise ValueError(f"requirement on {self.branch}: give min, max or bits")

    @property
    def branches(self) -> list[str]:
        return [self.branch] if isinstance(self.branch, str) else list(self.branch)

    def label(self, branch: str) -> str:
        parts = ([f"bits {self.bits}"] if self.bits is not None else []) + \
            ([f">= {self.min:g}"] if self.min is not None else []) + ([f"<= {self.max:g}"] if self.max is not None else [])
        return f"{branch} {' '.join(parts)}"

    def passes(self, values: np.ndarray) -> np.ndarray:
        ok = np.ones(len(values), dtype=bool)
        if self.bits is not None:
            ok &= (values.astype(np.int64) & self.bits) == self.bits
        if self.min is not None:
            ok &= values >= self.min
        if self.max is not None:
            ok &= values <= self.max
        return ok


@dataclass(frozen=True)
class ObjectCuts:
    """What one collection's objects must satisfy."""

    pt_min: float | None = None
    abs_eta_max: float | None = None
    require: tuple[Requirement, ...] = ()
    #: remove objects within `clean_dr` of a selected object of these collections
    clean_against: tuple[str, ...] = ()
    clean_dr: float = 0.4


@dataclass(frozen=True)
class Selection:
    """Named object selection: collection name -> cuts (collections not named keep every object)."""

    description: str = ""
    collections: dict[str, ObjectCuts] = field(default_factory=dict)
    #: map b-tag scores so that the file's working point lands here (events.btag.calibrated): the
    #: built-in simulation tags at 0.2783, and a model trained on it reads scores on that scale
    btag_reference: float | None = None

    def __post_init__(self):
        if self.btag_reference is not None:
            check_working_point(self.btag_reference, where="btag_reference")


class Cutflow:
    """Objects read, removed by each requirement, and kept, per collection (summed over chunks)."""

    def __init__(self):
        self.read: Counter = Counter()
        self.removed: dict[str, Counter] = {}
        self.kept: Counter = Counter()
        self.skipped: dict[str, dict[str, str]] = {}

    def as_dict(self) -> dict:
        return {name: {"read": self.read[name], "removed": dict(self.removed.get(name, {})),
                       "kept": self.kept[name], "not applied": self.skipped.get(name, {})}
                for name in self.read}


def apply_cuts(name: str, cuts: ObjectCuts | None, event: np.ndarray, pt: np.ndarray, eta: np.ndarray,
               phi: np.ndarray, requirements: list[tuple[Requirement, str, np.ndarray]],
               selected: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], cutflow: Cutflow) -> np.ndarray:
    """The mask of objects that pass, in order; each step counts only what the steps before left.

    `requirements` holds (requirement, branch used, its flat values); `selected` the (event, eta, phi)
    of the objects already selected in other collections, for overlap removal.
    """
    keep = np.ones(len(pt), dtype=bool)
    cutflow.read[name] += len(pt)
    removed = cutflow.removed.setdefault(name, Counter())
    steps: list[tuple[str, np.ndarray]] = []
    if cuts is not None:
        if cuts.pt_min is not None:
            steps.append((f"pt > {cuts.pt_min:g}", pt > cuts.pt_min))
        if cuts.abs_eta_max is not None:
            steps.append((f"|eta| < {cuts.abs_eta_max:g}", np.abs(eta) < cuts.abs_eta_max))
        steps += [(req.label(branch), req.passes(values)) for req, branch, values in requirements]
    for label, passed in steps:
        removed[label] += int((keep & ~passed).sum())
        keep &= passed
    if cuts is not None:
        for other in cuts.clean_against:
            o_event, o_eta, o_phi = selected.get(other, (np.zeros(0, np.int64),) * 3)
            overlap = _near(event, eta, phi, o_event, o_eta, o_phi, cuts.clean_dr) if len(o_event) else \
                np.zeros(len(pt), dtype=bool)
            removed[f"dR < {cuts.clean_dr:g} to a selected {other}"] += int((keep & overlap).sum())
            keep &= ~overlap
    cutflow.kept[name] += int(keep.sum())
    return keep


def _near(event, eta, phi, o_event, o_eta, o_phi, dr: float) -> np.ndarray:
    """Whether each object lies within dr of any other object of the same event."""
    order = np.argsort(o_event, kind="stable")
    o_event, o_eta, o_phi = o_event[order], o_eta[order], o_phi[order]
    start = np.searchsorted(o_event, event, side="left")
    n = np.searchsorted(o_event, event, side="right") - start
    ia = np.repeat(np.arange(len(event)), n)
    ib = np.repeat(start - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(len(ia))
    close = delta_r(eta[ia], phi[ia], o_eta[ib], o_phi[ib]) < dr
    return np.bincount(ia[close], minlength=len(event)) > 0
