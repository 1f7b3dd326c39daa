"""Branch maps for ROOT inputs, written as YAML; the built-in ones in `configs/data/` (the weaver-core way).

A schema says which tree holds the events, which branches identify the format, and for each object
collection which branch is which quantity. A quantity is a branch name, a list of alternative branch
names (the first one present is used; a number at its end is the value where none is present), or a
constant number (e.g. the electron mass in Delphes). Kinematics may be given as pt/eta/phi with mass or
energy, or Cartesian px/py/pz/energy; eta/phi given explicitly win over computed ones (JetClass stores
part_deta/part_dphi next to part_px/...).

B-tag alternatives are chosen by content instead (events.btag): the first with real scores and a
working point. A collection with `slots` is assembled from per-event scalar branches, one object per
slot (`px: px{}` with `slots: [1, 2]` reads px1 and px2). Named object selections (events.selection)
say which objects count; `model_selection` is the one that matches the built-in simulation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import CONFIG_ROOT, ConfigError, load_config
from events.btag import check_working_point
from events.model import ObjectType
from events.selection import Selection

CONFIG_DIR = CONFIG_ROOT / "data"  # the built-in branch maps, installed with the package

#: collection types a schema may use; "jet" becomes BJET where the b-tag passes the working point
COLLECTION_TYPES = {
    "jet": ObjectType.JET,
    "electron": ObjectType.ELECTRON,
    "muon": ObjectType.MUON,
    "photon": ObjectType.PHOTON,
    "constituent": ObjectType.CONSTITUENT,
}

Quantity = Any  # str | list[str] | float | None; checked by `_check_quantity`


@dataclass(frozen=True)
class CollectionSpec:
    """One jagged object collection (e.g. NanoAOD `Jet_*`)."""

    name: str
    type: str
    pt: Quantity = None
    eta: Quantity = None
    phi: Quantity = None
    mass: Quantity = None
    energy: Quantity = None
    px: Quantity = None
    py: Quantity = None
    pz: Quantity = None
    charge: Quantity = None
    btag: Quantity = None
    #: b-tag score at and above which a jet is a b-jet: a number, one per alternative branch, or a point
    #: name (loose/medium/tight) looked up per tagger and era in configs/btag/working-points.yaml
    btag_wp: float | dict[str, float] | str | None = None
    #: the range of real scores; a value outside it is a placeholder (no score: untagged, b-tag 0)
    btag_valid: tuple[float, float] | None = None
    #: read the b-tag decision from this bit of an integer b-tag branch (Delphes `Jet.BTag`)
    btag_bit: int | None = None
    #: a boolean branch holding the b-tag decision; used instead of `btag_wp` where the file has it
    tagged: Quantity = None
    #: counter branch (e.g. nJet), checked against the collection's lengths when present
    counter: Quantity = None
    #: an optional collection is skipped when its first kinematic branch is absent
    optional: bool = False
    #: read one object per slot from per-event scalar branches; `{}` in a branch name is the slot
    slots: tuple[int | str, ...] = ()
    #: in a slot collection, the value of the first kinematic branch (pt or px) marking an absent object
    slot_absent: float | None = None

    def __post_init__(self):
        if self.type not in COLLECTION_TYPES:
            raise ValueError(f"collection {self.name}: type {self.type!r} is not one of {sorted(COLLECTION_TYPES)}")
        for name in ("pt", "eta", "phi", "mass", "energy", "px", "py", "pz", "charge", "btag", "tagged", "counter"):
            _check_quantity(getattr(self, name), f"collection {self.name}: {name}")
        if self.pt is None and (self.px is None or self.py is None):
            raise ValueError(f"collection {self.name}: give pt, or px and py")
        cartesian = None not in (self.px, self.py, self.pz)
        if self.eta is None and not cartesian:
            raise ValueError(f"collection {self.name}: give eta, or px, py and pz")
        if self.phi is None and not cartesian:
            raise ValueError(f"collection {self.name}: give phi, or px, py and pz")
        if self.slots and self.counter is not None:
            raise ValueError(f"collection {self.name}: a slot collection has no counter branch")
        templated = [q for q in ("pt", "px") if isinstance(getattr(self, q), str) and "{}" in getattr(self, q)]
        if self.slots and not templated:
            raise ValueError(f"collection {self.name}: with slots, the pt (or px) branch needs a {{}} for the slot")
        if self.btag_valid is not None and not (len(self.btag_valid) == 2 and self.btag_valid[0] < self.btag_valid[1]):
            raise ValueError(f"collection {self.name}: btag_valid must be [low, high], got {self.btag_valid}")
        if self.type == "jet" and self.btag is not None and self.btag_wp is None and self.btag_bit is None:
            raise ValueError(f"collection {self.name}: a jet b-tag needs btag_wp or btag_bit")
        if isinstance(self.btag_wp, dict):
            names = [self.btag] if isinstance(self.btag, str) else list(self.btag or ())
            missing = set(names) - set(self.btag_wp)
            if missing:
                raise ValueError(f"collection {self.name}: btag_wp has no working point for {sorted(missing)}")
            for branch, wp in self.btag_wp.items():
                check_working_point(wp, self.btag_valid, f"collection {self.name}: btag_wp of {branch}")
        elif self.btag_wp is not None:
            check_working_point(self.btag_wp, self.btag_valid, f"collection {self.name}: btag_wp")


@dataclass(frozen=True)
class MetSpec:
    """Missing transverse momentum: pt/phi or px/py (scalars, or one-entry lists as in Delphes)."""

    pt: Quantity = None
    phi: Quantity = None
    px: Quantity = None
    py: Quantity = None

    def __post_init__(self):
        for name in ("pt", "phi", "px", "py"):
            _check_quantity(getattr(self, name), f"met: {name}")
        if (self.pt is None or self.phi is None) and (self.px is None or self.py is None):
            raise ValueError("met: give pt and phi, or px and py")


@dataclass(frozen=True)
class Schema:
    """How one ROOT layout maps onto the event data model."""

    name: str
    tree: str
    description: str = ""
    #: branches whose presence identifies this layout in format detection
    detect: tuple[str, ...] = ()
    collections: tuple[CollectionSpec, ...] = ()
    met: MetSpec | None = None
    run: Quantity = None
    lumi: Quantity = None
    event: Quantity = None
    weight: Quantity = None
    process: Quantity = None
    ntop: Quantity = None
    #: event-level fields above (and `met`) that may be absent from a file (then: weight 1, event =
    #: entry number, run/lumi 0, process/ntop unknown, no MET object); other missing branches are errors
    optional: tuple[str, ...] = ()
    #: one-hot label branches share this prefix (JetClass: label_QCD, label_Tbqq, ...)
    label_prefix: str | None = None
    #: number of top quarks per label name, for the `ntop` class (others: 0)
    label_ntop: dict[str, int] = field(default_factory=dict)
    #: extra per-event scalars to carry along: output field -> branch (skipped when absent)
    info: dict[str, str] = field(default_factory=dict)
    #: named object selections (events.selection), e.g. `reco`
    selections: dict[str, Selection] = field(default_factory=dict)
    #: the selection that defines objects as the built-in simulation does (`--selection auto`)
    model_selection: str | None = None

    def __post_init__(self):
        for name in ("run", "lumi", "event", "weight", "process", "ntop"):
            _check_quantity(getattr(self, name), f"{name}")
        bad = set(self.optional) - {"run", "lumi", "event", "weight", "process", "ntop", "met"}
        if bad:
            raise ValueError(f"optional: {sorted(bad)} are not event-level fields")
        if not self.collections and self.met is None:
            raise ValueError("a schema needs at least one collection or a met entry")
        if self.model_selection is not None and self.model_selection not in self.selections:
            raise ValueError(f"model_selection {self.model_selection!r} is not among the selections "
                             f"{sorted(self.selections)}")
        names = {c.name for c in self.collections}
        for sel_name, sel in self.selections.items():
            for coll, cuts in sel.collections.items():
                unknown = ({coll} | set(cuts.clean_against)) - names
                if unknown:
                    raise ValueError(f"selection {sel_name}: no collection(s) {sorted(unknown)} in this branch map")


def _check_quantity(value: Any, where: str) -> None:
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    ok = value is None or isinstance(value, str) or number(value) \
        or (isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value[:-1])
            and isinstance(value[0], str) and (isinstance(value[-1], str) or number(value[-1])))
    if not ok:
        raise ValueError(f"{where}: expected a branch name, a list of branch names (optionally ending in a "
                         f"default number) or a number, got {value!r}")


def builtin_schemas() -> list[str]:
    """Names of the schemas shipped in configs/data/, in detection order."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_schema(name_or_path: str | Path) -> Schema:
    """A schema by built-in name (e.g. `nanoaod`) or path to a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown format {name_or_path!r}; built-in: {', '.join(['hdf5', *builtin_schemas()])}, "
                              "or give a path to a YAML branch map")
    return load_config(Schema, path)
