"""Which b-tagger a file really carries, and its working point for the file's era.

Real NanoAOD keeps the branches of taggers that were never run, filled with placeholders (Run-2 open
data: DeepJet -3000 and DeepCSV -1 for every jet), and a real tagger marks the jets it could not score
(CSVv2: -10). So a tagger is chosen by content: the first of the schema's alternatives that holds real
scores and has a published working point for the era (configs/btag/working-points.yaml). A jet whose
score is a placeholder has no score: it is untagged and its b-tag feature is `NO_SCORE`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from common.config import CONFIG_ROOT, ConfigError, config_path

WP_FILE = CONFIG_ROOT / "btag" / "working-points.yaml"
POINTS = ("loose", "medium", "tight")
#: the b-tag feature of a jet without a score (a placeholder in the file): untagged, at the bottom of [0, 1]
NO_SCORE = 0.0
#: a branch whose values over this many objects are all one value carries no information
_CONSTANT_OVER = 5


@dataclass(frozen=True)
class WorkingPoints:
    """Published working points per tagger branch and era, and the run ranges of each era."""

    eras: dict[str, tuple[int, int]]
    taggers: dict[str, dict]

    def era_of_runs(self, runs: np.ndarray) -> str | None:
        """The era of collision data from its run numbers; None where they match no era (simulation
        has run number 1)."""
        runs = np.unique(np.asarray(runs, dtype=np.int64))
        found = {name for name, (first, last) in self.eras.items() if np.any((runs >= first) & (runs <= last))}
        if len(found) > 1:
            raise ConfigError(f"the file's run numbers span the eras {sorted(found)}; pass --era")
        return found.pop() if found else None

    def lookup(self, branch: str, era: str, point: str) -> float | None:
        """The working point of `branch` in `era` (or its year), or None where none is published."""
        points = self.taggers.get(branch, {}).get("points", {})
        values = points.get(era, points.get(era[:4]))
        return None if values is None else float(values[POINTS.index(point)])

    def default_era(self, branch: str) -> str | None:
        return self.taggers.get(branch, {}).get("default_era")


@lru_cache(maxsize=4)
def load_working_points(path: str | Path = WP_FILE) -> WorkingPoints:
    import yaml

    try:
        raw = yaml.safe_load(config_path(path).read_text())
        eras = {str(k): (int(v[0]), int(v[1])) for k, v in raw["eras"].items()}
        taggers = {str(k): {"default_era": str(v["default_era"]),
                            "points": {str(e): [float(x) for x in p] for e, p in v["points"].items()}}
                   for k, v in raw["taggers"].items()}
    except (OSError, KeyError, TypeError, ValueError, IndexError) as err:
        raise ConfigError(f"{path}: not a working-point table ({type(err).__name__}: {err})") from None
    return WorkingPoints(eras, taggers)


def check_working_point(value, valid: tuple[float, float] | None = (0.0, 1.0),
                        where: str = "b-tag working point") -> str | float:
    """`value` (a point name, a number or its text) as a point name or a number; the one rule for every
    way a working point enters (command line, configs, branch maps, Python): loose, medium, tight, or a
    finite number strictly inside the tagger's score range `valid` (a score at or beyond its ends tags
    every jet or none, and calibration divides by wp and 1 - wp). `valid` None: a tagger of another
    scale (a branch map without `btag_valid`), or a number not yet tied to a tagger: only finite."""
    if isinstance(value, str) and value in POINTS:
        return value
    number = _as_number(value)
    if number is None or not math.isfinite(number) or (valid is not None and not valid[0] < number < valid[1]):
        allowed = f"a number in ({valid[0]:g}, {valid[1]:g})" if valid is not None else "a finite number"
        raise ConfigError(f"{where} {value!r}: give {', '.join(POINTS)} or {allowed}")
    return number


def _as_number(value) -> float | None:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None


def uninformative(values: np.ndarray, valid: tuple[float, float] | None = None) -> str | None:
    """Why a branch's values carry no information (placeholders only), or None if they do."""
    values = np.asarray(values)
    if not len(values):
        return None  # no objects to judge by
    if valid is not None:
        inside = (values >= valid[0]) & (values <= valid[1])
        if not inside.any():
            shown = ", ".join(f"{v:g}" for v in np.unique(values)[:3])
            return f"no value in [{valid[0]:g}, {valid[1]:g}] over {len(values)} objects (placeholders {shown})"
    if len(values) >= _CONSTANT_OVER and np.all(values == values[0]):
        return f"{values[0].item()!r} for all {len(values)} objects (not filled in this file)"
    return None


@dataclass
class TaggerChoice:
    """The tagger a file is read with, and why (reported by events.info)."""

    branch: str | None
    wp: float | None
    era: str | None = None
    era_from: str = ""
    point: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"branch": self.branch, "working_point": self.wp, "point": self.point, "era": self.era,
                "era_from": self.era_from, "skipped": self.skipped}


def choose_tagger(candidates: list[str], probe, wp_spec, *, era: str = "auto", point: str | None = None,
                  valid: tuple[float, float] | None = (0.0, 1.0), runs: np.ndarray | None = None) -> TaggerChoice:
    """The first candidate branch with real scores and a working point.

    `probe(branch)` returns that branch's values over the first objects of the file. `wp_spec` is the
    schema's `btag_wp`: a number, {branch: number}, or a point name looked up per era; `point`
    (loose/medium/tight or a number as text) overrides it.
    """
    table = load_working_points()
    spec = check_working_point(point, valid) if point is not None else wp_spec
    file_era, era_from = None, ""
    if isinstance(spec, str):
        if era != "auto":
            if era not in table.eras:
                raise ConfigError(f"unknown era {era!r}; known: {', '.join(table.eras)}")
            file_era, era_from = era, "--era"
        elif runs is not None:
            file_era = table.era_of_runs(runs)
            era_from = "run numbers" if file_era else ""
    choice = TaggerChoice(None, None, point=spec if isinstance(spec, str) else None)
    for branch in candidates:
        why = uninformative(probe(branch), valid)
        if why:
            choice.skipped[branch] = why
            continue
        if isinstance(spec, str):
            tagger_era = file_era or table.default_era(branch)
            wp = table.lookup(branch, tagger_era, spec) if tagger_era else None
            if wp is None:
                choice.skipped[branch] = f"no published working point for era {tagger_era}"
                continue
            choice.era, choice.era_from = tagger_era, era_from or \
                "run numbers of no era (simulation): the tagger's default era; pass --era to choose"
        else:
            wp = spec.get(branch) if isinstance(spec, dict) else spec
        choice.branch, choice.wp = branch, float(wp)
        return choice
    return choice


def calibrated(score: np.ndarray, wp: float, reference: float) -> np.ndarray:
    """Scores mapped piecewise linearly so that `wp` lands on `reference` (0 and 1 stay): the b-tag
    feature then means the same thing whatever the tagger, as in the simulation a model learnt from."""
    score = np.asarray(score, dtype=np.float64)
    return np.where(score < wp, score * (reference / wp),
                    reference + (score - wp) * ((1 - reference) / (1 - wp)))
