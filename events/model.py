"""The one event data model: readers produce `Events`, writers and every model stage consume it.

An event is a variable-length list of physics objects (jets, b-jets, leptons, photons, MET, or the
constituents of one jet) plus event-level fields. Objects are held as an awkward array of records;
event-level fields as numpy arrays of the same length. Nothing here reorders events.

Canonical object order inside an event: jets and b-jets (by descending pt), then electrons and muons
(merged, by descending pt), then photons, then jet constituents, then the MET object. Each group is
capped (`Caps`); what a cap cuts is counted per event in `info["n_truncated"]`, never dropped silently.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Sequence

import awkward as ak
import numpy as np

from events.errors import EventDataError


class ObjectType(enum.IntEnum):
    """Type of a physics object. Values are stored on disk: never renumber."""

    JET = 0
    BJET = 1
    ELECTRON = 2
    MUON = 3
    PHOTON = 4
    MET = 5
    CONSTITUENT = 6


#: per-object fields and their stored dtypes. MET objects have eta = mass = 0; jets charge 0;
#: constituents hold pt in GeV and eta/phi *relative to the jet axis* (deta, dphi).
OBJECT_FIELDS: dict[str, np.dtype] = {
    "type": np.dtype(np.int8),
    "pt": np.dtype(np.float32),
    "eta": np.dtype(np.float32),
    "phi": np.dtype(np.float32),
    "mass": np.dtype(np.float32),
    "btag": np.dtype(np.float32),
    "charge": np.dtype(np.int8),
}

#: event-level fields every `Events` has. `process` indexes `Events.process_names` (-1: unknown);
#: `ntop` is the class by number of top quarks, 0..4 (-1: unknown). (run, lumi, event) is the id.
INFO_FIELDS: dict[str, np.dtype] = {
    "run": np.dtype(np.int64),
    "lumi": np.dtype(np.int64),
    "event": np.dtype(np.uint64),  # NanoAOD event numbers use all 64 bits
    "weight": np.dtype(np.float32),
    "process": np.dtype(np.int16),
    "ntop": np.dtype(np.int8),
    "n_truncated": np.dtype(np.int16),
}

@dataclass(frozen=True)
class Caps:
    """Multiplicity caps per object group (Abasov et al.: 12 jets, 4 leptons)."""

    jets: int = 12
    leptons: int = 4
    photons: int = 4
    constituents: int = 128

    def __post_init__(self):
        for name in ("jets", "leptons", "photons", "constituents"):
            if getattr(self, name) < 0:
                raise ValueError(f"cap {name} must be >= 0, got {getattr(self, name)}")


#: object groups in canonical order, with the types they hold. MET has no cap (one per event).
GROUPS: tuple[tuple[str, tuple[ObjectType, ...]], ...] = (
    ("jets", (ObjectType.JET, ObjectType.BJET)),
    ("leptons", (ObjectType.ELECTRON, ObjectType.MUON)),
    ("photons", (ObjectType.PHOTON,)),
    ("constituents", (ObjectType.CONSTITUENT,)),
    ("met", (ObjectType.MET,)),
)
GROUP_OF_TYPE = {t: name for name, types in GROUPS for t in types}
#: each type's group as its position in `GROUPS` (the canonical order)
GROUP_INDEX_OF_TYPE = {t: i for i, (_, types) in enumerate(GROUPS) for t in types}


def empty_objects(n_events: int) -> ak.Array:
    """An objects array of `n_events` events with no objects."""
    flat = {k: np.zeros(0, dtype=dt) for k, dt in OBJECT_FIELDS.items()}
    return ak.unflatten(ak.zip(flat), np.zeros(n_events, dtype=np.int64))


def make_objects(counts: np.ndarray, **columns: np.ndarray | float | int) -> ak.Array:
    """Jagged object records from flat per-object columns; missing fields default to 0."""
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    flat = {}
    for name, dtype in OBJECT_FIELDS.items():
        value = columns.pop(name, 0)
        flat[name] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy() if np.ndim(value) == 0 \
            else np.asarray(value, dtype=dtype)
        if len(flat[name]) != n:
            raise ValueError(f"column {name!r} has {len(flat[name])} entries, expected {n}")
    if columns:
        raise ValueError(f"unknown object field(s): {sorted(columns)}")
    return ak.unflatten(ak.zip(flat), counts)


def assemble(collections: Sequence[ak.Array], caps: Caps) -> tuple[ak.Array, np.ndarray]:
    """Merge per-collection object arrays into canonical order and apply the caps.

    Returns the merged objects and the number of objects each event lost to the caps.
    """
    if not collections:
        raise ValueError("assemble needs at least one collection")
    n_events = len(collections[0])
    by_group: dict[str, list[ak.Array]] = {}
    for coll in collections:
        if len(coll) != n_events:
            raise ValueError("collections disagree in the number of events")
        types = np.unique(ak.to_numpy(ak.flatten(coll["type"]))) if ak.sum(ak.num(coll)) else []
        groups = {GROUP_OF_TYPE[ObjectType(int(t))] for t in types} or {"empty"}
        if len(groups) > 1:
            raise ValueError(f"a collection mixes object groups {sorted(groups)}")
        by_group.setdefault(groups.pop(), []).append(coll)
    parts = []
    n_truncated = np.zeros(n_events, dtype=np.int64)
    for group, _ in GROUPS:
        members = by_group.get(group)
        if not members:
            continue
        merged = members[0] if len(members) == 1 else ak.concatenate(members, axis=1)
        merged = merged[ak.argsort(-merged.pt, axis=1, stable=True)]
        cap = getattr(caps, group, None)
        if cap is not None:
            n_truncated += np.maximum(ak.to_numpy(ak.num(merged)) - cap, 0)
            merged = merged[:, :cap]
        parts.append(merged)
    if not parts:
        return empty_objects(n_events), n_truncated.astype(np.int16)
    objects = parts[0] if len(parts) == 1 else ak.concatenate(parts, axis=1)
    return _packed(objects), n_truncated.astype(np.int16)


def _packed(objects: ak.Array) -> ak.Array:
    """Objects as a compact ListOffset array of contiguous numpy columns with the stored dtypes."""
    counts = ak.to_numpy(ak.num(objects)).astype(np.int64)
    flat = ak.flatten(objects)
    columns = {k: ak.to_numpy(flat[k]).astype(dt, copy=False) for k, dt in OBJECT_FIELDS.items()}
    return ak.unflatten(ak.zip(columns), counts)


class Events:
    """A batch of events: `objects` (n_events, var) records plus `info` (n_events,) columns.

    Parameters
    ----------
    objects : ak.Array
        Jagged records with the fields of `OBJECT_FIELDS`.
    info : dict of str to np.ndarray
        Event-level columns: at least `INFO_FIELDS` (missing ones are filled with defaults), plus any
        extra per-event scalars (e.g. `jet_pt` in constituent mode).
    process_names : sequence of str
        Names that `info["process"]` indexes.
    """

    def __init__(self, objects: ak.Array, info: dict[str, np.ndarray], process_names: Sequence[str] = ()):
        n = len(objects)
        missing = set(OBJECT_FIELDS) - set(objects.fields)
        if missing:
            raise EventDataError(f"objects lack field(s) {sorted(missing)}")
        full = {}
        for name, dtype in INFO_FIELDS.items():
            default = np.arange(n) if name == "event" else \
                np.full(n, -1 if name in ("process", "ntop") else (1 if name == "weight" else 0))
            full[name] = np.asarray(info.get(name, default), dtype=dtype)
        for name, values in info.items():
            if name not in full:
                full[name] = np.asarray(values)
        for name, values in full.items():
            if values.shape != (n,):
                raise EventDataError(f"info field {name!r} has shape {values.shape}, expected ({n},)")
        self.objects = _packed(objects) if n else empty_objects(0)
        self.info = full
        self.process_names = tuple(process_names)

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, index) -> "Events":
        """Events selected by a slice, integer array or boolean mask (order as given)."""
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        return Events(self.objects[index], {k: v[index] for k, v in self.info.items()}, self.process_names)

    def __repr__(self) -> str:
        return f"Events({len(self)} events, {self.n_objects} objects, processes={list(self.process_names)})"

    @property
    def n_objects(self) -> int:
        return int(ak.sum(ak.num(self.objects)))

    def _type_mask(self, types: tuple[ObjectType, ...]) -> ak.Array:
        mask = np.isin(ak.to_numpy(ak.flatten(self.objects["type"])), [int(t) for t in types])
        return ak.unflatten(mask, ak.num(self.objects))

    def count(self, *types: ObjectType) -> np.ndarray:
        """Number of objects of the given type(s) per event, shape (n_events,)."""
        return ak.to_numpy(ak.sum(self._type_mask(types), axis=1)).astype(np.int64)

    def of_type(self, *types: ObjectType) -> ak.Array:
        """The objects of the given type(s), canonical order kept, shape (n_events, var)."""
        return self.objects[self._type_mask(types)]

    @property
    def met(self) -> tuple[np.ndarray, np.ndarray]:
        """(MET pt, MET phi) per event from the MET object; 0 where an event has none."""
        met = self.of_type(ObjectType.MET)
        first = ak.firsts(met)
        pt = ak.to_numpy(ak.fill_none(first.pt, 0.0)).astype(np.float32)
        phi = ak.to_numpy(ak.fill_none(first.phi, 0.0)).astype(np.float32)
        return pt, phi

    @property
    def process(self) -> np.ndarray:
        """Process names per event ('' where unknown)."""
        names = np.array(list(self.process_names) + [""], dtype=object)
        return names[self.info["process"]]

    @property
    def extra_fields(self) -> list[str]:
        """Event-level fields beyond `INFO_FIELDS`, in insertion order."""
        return [k for k in self.info if k not in INFO_FIELDS]

    def with_process_names(self, names: Sequence[str]) -> "Events":
        """The same events with `process` re-indexed into `names` (which must hold all used names)."""
        names = tuple(names)
        if names == self.process_names:
            return self
        lookup = {name: i for i, name in enumerate(names)}
        try:
            table = np.array([lookup[n] for n in self.process_names] + [-1], dtype=np.int16)
        except KeyError as err:
            raise EventDataError(f"process {err.args[0]!r} missing from the target process names") from None
        info = dict(self.info, process=table[self.info["process"]])
        return Events(self.objects, info, names)

    @staticmethod
    def concatenate(parts: Iterable["Events"]) -> "Events":
        """Events of all parts, in order; process names are merged in order of first appearance."""
        parts = list(parts)
        if not parts:
            return Events(empty_objects(0), {})
        names: list[str] = []
        for part in parts:
            names += [n for n in part.process_names if n not in names]
        parts = [p.with_process_names(names) for p in parts]
        keys = list(parts[0].info)
        for part in parts[1:]:
            if list(part.info) != keys:
                raise EventDataError(f"cannot concatenate events with fields {keys} and {list(part.info)}")
        objects = ak.concatenate([p.objects for p in parts], axis=0)
        info = {k: np.concatenate([p.info[k] for p in parts]) for k in keys}
        return Events(objects, info, names)

    def recap(self, caps: Caps) -> "Events":
        """The events under (possibly tighter) caps; newly dropped objects add to n_truncated."""
        objects, dropped = assemble([self.of_type(*types) for _, types in GROUPS], caps)
        info = dict(self.info, n_truncated=(self.info["n_truncated"] + dropped).astype(np.int16))
        return Events(objects, info, self.process_names)

    def validate(self, source: str = "events") -> "Events":
        """Raise EventDataError naming `source` and the first bad event if any value is invalid."""
        flat = ak.flatten(self.objects)
        event_of = np.repeat(np.arange(len(self)), ak.to_numpy(ak.num(self.objects)))
        for name in ("pt", "eta", "phi", "mass", "btag"):
            values = ak.to_numpy(flat[name])
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                i = event_of[bad[0]]
                raise EventDataError(f"{source}: non-finite object {name} in event {self.info['event'][i]} "
                                     f"(entry {i}); {len(bad)} bad values in all")
        types = ak.to_numpy(flat["type"])
        bad = np.flatnonzero((types < 0) | (types > max(ObjectType)))
        if len(bad):
            raise EventDataError(f"{source}: unknown object type {types[bad[0]]} in entry {event_of[bad[0]]}")
        for name, values in self.info.items():
            if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                i = int(np.flatnonzero(~np.isfinite(values))[0])
                raise EventDataError(f"{source}: non-finite {name} in entry {i}")
        return self
