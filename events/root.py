"""ROOT input and output through uproot, driven by a `Schema` branch map.

Reading streams with `TTree.iterate`, reads only the branches the schema names (real files carry
hundreds), casts mixed dtypes to the data model's, and checks every value: a missing branch, a
non-numeric branch, NaN/inf, or collections whose branches disagree in length raise one
`EventDataError` naming the file, tree, branch and entry.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Iterator

import awkward as ak
import numpy as np

from events.errors import EventDataError
from events.kinematics import cartesian_to_ptetaphi, mass_from_energy
from events.model import Caps, Events, ObjectType, assemble, make_objects
from events.schema import COLLECTION_TYPES, CollectionSpec, Schema
from events.writer import EventWriter

#: TObjString key holding what the data model has and plain NanoAOD lacks (process names, extras)
META_KEY = "colliderfm"


def open_tree(path: str | Path, tree_name: str):
    """(file, tree) opened with uproot, or EventDataError naming what is wrong."""
    import uproot

    path = Path(path)
    if not path.is_file():
        raise EventDataError(f"{path}: no such file")
    try:
        file = uproot.open(path)
    except Exception as err:  # uproot raises many types for broken files
        raise EventDataError(f"{path}: not a readable ROOT file ({type(err).__name__}: {err})") from None
    if file.classnames().get(f"{tree_name};1", "").endswith("RNTuple"):
        file.close()
        raise EventDataError(f"{path}: {tree_name!r} is an RNTuple; this reader handles TTrees (convert it "
                             "with ROOT, or open an issue for RNTuple support)")
    try:
        tree = file[tree_name]
    except Exception as err:
        trees = [k.split(";")[0] for k, c in file.classnames().items() if c in ("TTree", "TNtuple")]
        file.close()
        if isinstance(err, KeyError) or "not found" in str(err):
            raise EventDataError(f"{path}: no tree {tree_name!r} (trees in file: {trees or 'none'})") from None
        raise EventDataError(f"{path}: cannot read tree {tree_name!r} ({type(err).__name__}: {err})") from None
    return file, tree


def _read_meta(file) -> dict:
    if META_KEY not in file:
        return {}
    try:
        return json.loads(str(file[META_KEY]))
    except (ValueError, TypeError):
        return {}


class RootReader:
    """Stream one ROOT file as `Events` under a schema."""

    def __init__(self, path: str | Path, schema: Schema, caps: Caps = Caps()):
        self.path = Path(path)
        self.schema = schema
        self.caps = caps
        self.file, self.tree = open_tree(path, schema.tree)
        self.where = f"{self.path}:{schema.tree}"
        try:
            self.branches = {b.name: b for b in self.tree.itervalues(recursive=True)}
            meta = _read_meta(self.file)
        except Exception as err:  # a truncated file fails here, when uproot first reads past its end
            self.file.close()
            raise EventDataError(f"{self.where}: cannot read the file's metadata ({type(err).__name__}: {err}); "
                                 "the file may be truncated or corrupt") from None
        self.meta_process_names = tuple(meta.get("process_names", ()))
        self.extra_info = dict(schema.info)
        self.extra_info.update({name: name for name in meta.get("info", ())})
        self.extra_info = {k: b for k, b in self.extra_info.items() if b in self.branches}
        self.labels = [b for b in self.branches if schema.label_prefix and b.startswith(schema.label_prefix)]
        if schema.label_prefix and not self.labels:
            raise EventDataError(f"{self.where}: no label branches starting with {schema.label_prefix!r}")
        self.needed: set[str] = set(self.extra_info.values()) | set(self.labels)
        self.collections = [c for c in schema.collections if self._present(c)]
        self.resolved = {c.name: {q: self._resolve(getattr(c, q), f"{c.name} {q}", required=q != "tagged")
                                  for q in ("pt", "eta", "phi", "mass", "energy", "px", "py", "pz",
                                            "charge", "btag", "tagged", "counter")}
                         for c in self.collections}
        met_optional = "met" in schema.optional
        self.met = None if schema.met is None else {
            q: self._resolve(getattr(schema.met, q), f"MET {q}", required=not met_optional)
            for q in ("pt", "phi", "px", "py")}
        if self.met is not None and not any(self.met.values()):
            self.met = None
        self.event_fields = {q: self._resolve(getattr(schema, q), q, required=q not in schema.optional)
                             for q in ("run", "lumi", "event", "weight", "process", "ntop")}

    def __len__(self) -> int:
        return int(self.tree.num_entries)

    def close(self) -> None:
        self.file.close()

    def _present(self, coll: CollectionSpec) -> bool:
        if not coll.optional:
            return True
        first = coll.pt if coll.pt is not None else coll.px
        names = [first] if isinstance(first, str) else list(first)
        return any(n in self.branches for n in names)

    def _resolve(self, quantity, what: str, required: bool = True):
        """A quantity as ('branch', name), ('const', value) or None; missing branches raise."""
        if quantity is None:
            return None
        if isinstance(quantity, (int, float)):
            return ("const", float(quantity))
        names = [quantity] if isinstance(quantity, str) else list(quantity)
        for name in names:
            if not isinstance(name, str):
                return ("const", float(name))  # the list's default: none of its branches is present
            if name in self.branches:
                self._check_numeric(name)
                self.needed.add(name)
                return ("branch", name)
        if not required:
            return None
        close = difflib.get_close_matches(names[0], self.branches, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        alts = f"any of {', '.join(names)}" if len(names) > 1 else f"branch {names[0]!r}"
        raise EventDataError(f"{self.where}: missing {alts} (needed for {what} by schema "
                             f"{self.schema.name!r}){hint}")

    def _check_numeric(self, name: str) -> None:
        import uproot

        interp = self.branches[name].interpretation
        inner = interp.content if isinstance(interp, uproot.AsJagged) else interp
        dtype = getattr(inner, "to_dtype", None)
        if not isinstance(inner, uproot.AsDtype) or dtype.kind not in "biuf" or dtype.shape:
            raise EventDataError(f"{self.where}: branch {name!r} has type "
                                 f"{self.branches[name].typename!r}; expected numbers (or lists of numbers)")

    def iterate(self, step_size: int = 100_000) -> Iterator[Events]:
        """Chunks of at most `step_size` events, in file order."""
        entry = 0
        chunks = self.tree.iterate(filter_name=sorted(self.needed), step_size=step_size, library="ak")
        while True:
            try:
                arrays = next(chunks)
            except StopIteration:
                return
            except Exception as err:  # decompression/deserialization errors of a damaged file
                raise EventDataError(f"{self.where}: cannot read entries from {entry} on "
                                     f"({type(err).__name__}: {err}); the file may be truncated or corrupt") from None
            yield self._build(arrays, entry)
            entry += len(arrays)

    # --- building one chunk -------------------------------------------------------------------
    def _values(self, arrays, resolved, entry: int, jagged: bool, counts=None):
        """The values of a resolved quantity, checked and cast to float64 (flat if jagged)."""
        kind, ref = resolved
        if kind == "const":
            return np.full(int(counts.sum()) if jagged else len(arrays), ref)
        array = arrays[ref]
        is_jagged = array.ndim > 1
        if jagged and not is_jagged:
            raise EventDataError(f"{self.where}: branch {ref!r} holds one value per event; expected a list per event")
        if not jagged and is_jagged:
            n = ak.to_numpy(ak.num(array))
            if np.any(n != 1):
                bad = int(np.flatnonzero(n != 1)[0])
                raise EventDataError(f"{self.where}: branch {ref!r} has {n[bad]} values in entry {entry + bad}; "
                                     "expected exactly one")
            array = array[:, 0]
        if jagged:
            n = ak.to_numpy(ak.num(array))
            if counts is not None and np.any(n != counts):
                bad = int(np.flatnonzero(n != counts)[0])
                raise EventDataError(f"{self.where}: branch {ref!r} has {n[bad]} values in entry {entry + bad} "
                                     f"where the other branches of its collection have {counts[bad]}")
            array = ak.flatten(array)
        values = ak.to_numpy(array)
        if values.dtype.kind == "f":
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                event = entry + (int(np.searchsorted(np.cumsum(counts), bad[0], side="right")) if jagged else int(bad[0]))
                raise EventDataError(f"{self.where}: branch {ref!r} has a non-finite value ({values[bad[0]]}) "
                                     f"in entry {event}; {len(bad)} in this chunk")
        return values

    def _collection(self, arrays, coll: CollectionSpec, entry: int) -> ak.Array:
        res = self.resolved[coll.name]
        first = res["pt"] or res["px"]
        if arrays[first[1]].ndim < 2:
            raise EventDataError(f"{self.where}: branch {first[1]!r} holds one value per event; "
                                 "expected a list per event")
        counts = ak.to_numpy(ak.num(arrays[first[1]]))
        if res["counter"] is not None:
            declared = self._values(arrays, res["counter"], entry, jagged=False)
            if np.any(declared != counts):
                bad = int(np.flatnonzero(declared != counts)[0])
                raise EventDataError(f"{self.where}: counter {res['counter'][1]!r} says {int(declared[bad])} "
                                     f"in entry {entry + bad} but {first[1]!r} has {counts[bad]} values")
        get = {q: self._values(arrays, r, entry, jagged=True, counts=counts) for q, r in res.items()
               if r is not None and q != "counter"}
        if "pt" in get:
            pt = get["pt"]
        else:
            pt = np.hypot(get["px"], get["py"])
        if "eta" in get and "phi" in get:
            eta, phi = get["eta"], get["phi"]
        else:
            _, c_eta, c_phi = cartesian_to_ptetaphi(get["px"], get["py"], get["pz"])
            eta, phi = get.get("eta", c_eta), get.get("phi", c_phi)
            if not np.all(np.isfinite(eta)):
                bad = int(np.flatnonzero(~np.isfinite(eta))[0])
                raise EventDataError(f"{self.where}: {coll.name} object along the beam (pt = 0, eta undefined) "
                                     f"in entry {entry + int(np.searchsorted(np.cumsum(counts), bad, side='right'))}")
        if "mass" in get:
            mass = get["mass"]
        elif "energy" in get:
            p2 = (get["px"] ** 2 + get["py"] ** 2 + get["pz"] ** 2) if "pz" in get else (pt * np.cosh(eta)) ** 2
            mass = mass_from_energy(get["energy"], p2)
        else:
            mass = 0.0
        btag = get.get("btag", 0.0)
        otype = np.full(len(pt), int(COLLECTION_TYPES[coll.type]), dtype=np.int8)
        if coll.type == "jet" and ("btag" in get or "tagged" in get):
            if coll.btag_bit is not None:
                btag = ((get["btag"].astype(np.int64) >> coll.btag_bit) & 1).astype(np.float32)
            wp = coll.btag_wp[res["btag"][1]] if isinstance(coll.btag_wp, dict) else coll.btag_wp
            tagged = get["tagged"].astype(bool) if "tagged" in get else \
                (btag >= 0.5 if coll.btag_bit is not None else btag >= wp)
            otype[tagged] = int(ObjectType.BJET)
        return make_objects(counts, type=otype, pt=pt, eta=eta, phi=phi, mass=mass, btag=btag,
                            charge=np.rint(get.get("charge", 0.0)))

    def _met(self, arrays, entry: int) -> ak.Array:
        v = {q: self._values(arrays, r, entry, jagged=False) for q, r in self.met.items() if r is not None}
        if "pt" in v and "phi" in v:
            pt, phi = v["pt"], v["phi"]
        else:
            pt, phi = np.hypot(v["px"], v["py"]), np.arctan2(v["py"], v["px"])
        return make_objects(np.ones(len(pt)), type=int(ObjectType.MET), pt=pt, phi=phi)

    def _build(self, arrays, entry: int) -> Events:
        n = len(arrays)
        collections = [self._collection(arrays, c, entry) for c in self.collections]
        if self.met is not None:
            collections.append(self._met(arrays, entry))
        objects, n_truncated = assemble(collections, self.caps)
        info = {"n_truncated": n_truncated, "event": np.arange(entry, entry + n)}
        for q, r in self.event_fields.items():
            if r is not None:
                info[q] = self._values(arrays, r, entry, jagged=False)
        process_names = self.meta_process_names
        if self.labels:
            onehot = np.stack([ak.to_numpy(arrays[b]).astype(np.float64) for b in self.labels], axis=1)
            hot = onehot.sum(axis=1)
            if np.any(hot != 1):
                bad = int(np.flatnonzero(hot != 1)[0])
                raise EventDataError(f"{self.where}: entry {entry + bad} has {hot[bad]:g} labels set among "
                                     f"{', '.join(self.labels)}; expected exactly one")
            process_names = tuple(b[len(self.schema.label_prefix):] for b in self.labels)
            info["process"] = onehot.argmax(axis=1)
            info["ntop"] = np.array([self.schema.label_ntop.get(name, 0) for name in process_names])[info["process"]]
        for name, branch in self.extra_info.items():
            values = self._values(arrays, ("branch", branch), entry, jagged=False)
            # truncation counted when the file was written adds to what this read truncates
            info[name] = values + n_truncated if name == "n_truncated" else values
        if "process" in info and len(process_names) and np.any(info["process"] >= len(process_names)):
            raise EventDataError(f"{self.where}: process index beyond the {len(process_names)} process names")
        return Events(objects, info, process_names)


class RootWriter(EventWriter):
    """Append `Events` to a ROOT file laid out as `schema` (NanoAOD-style by default), atomically.

    Only branch-name quantities of the schema are written; b-jets are written as jets with their
    score plus the schema's `tagged` branch, so the type survives a round trip exactly.
    """

    def __init__(self, path: str | Path, schema: Schema):
        import uproot

        super().__init__(path)
        self.schema = schema
        self._file = uproot.recreate(self._tmp)
        self._stack.callback(self._file.close)
        self._tree = None
        self._extras: list[str] = []

    def _has_met(self, events: Events) -> bool:
        """Whether this file carries MET branches (decided by the first chunk: constituent mode has none)."""
        if self._tree is None:
            self._met = bool(events.count(ObjectType.MET).any()) or not len(events)
        return self._met

    def _branches(self, events: Events) -> tuple[dict, dict]:
        s = self.schema
        data: dict = {}
        counters: dict = {}
        ids = {"run": np.uint32, "lumi": np.uint32, "event": np.uint64, "weight": np.float32,
               "process": np.int32, "ntop": np.int32}
        for q, dtype in ids.items():
            if isinstance(getattr(s, q), str):
                data[getattr(s, q)] = events.info[q].astype(dtype)
        if s.met is not None and isinstance(s.met.pt, str) and self._has_met(events):
            met_pt, met_phi = events.met
            data[s.met.pt], data[s.met.phi] = met_pt, met_phi
        for coll in s.collections:
            types = (ObjectType.JET, ObjectType.BJET) if coll.type == "jet" else (COLLECTION_TYPES[coll.type],)
            objs = events.of_type(*types)
            fields = {}
            for q in ("pt", "eta", "phi", "mass", "charge", "btag", "tagged"):
                name = getattr(coll, q)
                name = name[0] if isinstance(name, (list, tuple)) else name
                if not isinstance(name, str):
                    continue
                if q == "tagged":
                    fields[name] = objs["type"] == int(ObjectType.BJET)
                elif q == "btag" and coll.btag_bit is not None:
                    fields[name] = ak.values_astype(objs["type"] == int(ObjectType.BJET), np.uint32) << coll.btag_bit
                else:
                    fields[name] = ak.values_astype(objs[q], np.int32 if q == "charge" else np.float32)
            data[coll.name] = ak.zip(fields)
            counters[coll.name] = coll.counter if isinstance(coll.counter, str) else f"n{coll.name}"
        for name in ["n_truncated", *events.extra_fields]:
            data[name] = events.info[name]
        return data, counters

    def write(self, events: Events) -> None:
        """Append a chunk of events."""
        events = self._with_file_process_names(events)
        data, counters = self._branches(events)
        if self._tree is None:
            self._extras = events.extra_fields
            types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()}
            self._tree = self._file.mktree(self.schema.tree, types, counter_name=lambda c: counters[c],
                                           field_name=lambda outer, inner: inner)
        elif events.extra_fields != self._extras:
            raise EventDataError(f"{self.path}: chunk has extra fields {events.extra_fields}, expected {self._extras}")
        if len(events):
            self._tree.extend(data)
        self.n_events += len(events)

    def close(self) -> None:
        if self._tree is None:
            raise EventDataError(f"{self.path}: nothing was written")
        self._file[META_KEY] = json.dumps({"process_names": self._process_names,
                                              "info": ["n_truncated", *self._extras]})
        super().close()
