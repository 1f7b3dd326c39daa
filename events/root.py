"""ROOT input and output through uproot, driven by a `Schema` branch map.

Reading streams TTrees and RNTuples alike, reads only the branches the schema names (real files carry
hundreds), casts mixed dtypes to the data model's, and checks every value: a missing branch, a
non-numeric branch, NaN/inf, physically impossible kinematics, or collections whose branches disagree
in length raise one `EventDataError` naming the file, tree, branch and entry. At opening, the b-tagger
and any ID branch alternatives are chosen by content (placeholder-only branches are passed over), and
the object selection of `ReadOptions` is applied chunk by chunk with a cutflow (`report()`).
"""
from __future__ import annotations

import difflib
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Iterator

import awkward as ak
import numpy as np

from common.config import ConfigError
from common.paths import as_path, is_url
from events.btag import NO_SCORE, TaggerChoice, calibrated, choose_tagger, uninformative
from events.errors import EventDataError, require_input
from events.kinematics import cartesian_to_ptetaphi, mass_from_energy, repaired, unphysical, wrap_phi
from events.model import Caps, Events, ObjectType, assemble, make_objects
from events.options import ReadOptions
from events.schema import COLLECTION_TYPES, CollectionSpec, Schema
from events.selection import Cutflow, Requirement, apply_cuts
from events.writer import EventWriter

log = logging.getLogger(__name__)

#: TObjString key holding what the data model has and plain NanoAOD lacks (process names, extras)
META_KEY = "colliderfm"


def open_file(path: str | Path):
    """A local path or a URL (root://, https://, file://) opened with uproot, or EventDataError naming it."""
    import uproot

    path = require_input(path)
    try:
        return uproot.open(path)
    except Exception as err:  # uproot raises many types for broken files; fsspec more for unreachable URLs
        raise unreadable(path, err) from None


def unreadable(path: str | Path, err: Exception) -> EventDataError:
    """The one-line error for a ROOT file uproot failed on: a local file shorter than its header says is
    truncated; otherwise uproot's reason, on one line (it spreads some over several)."""
    reason = " ".join(f"{type(err).__name__}: {err}".split())
    if is_url(path):
        return EventDataError(f"{path}: cannot open it ({reason})")
    size, stored = Path(path).stat().st_size, _stored_size(path)
    if stored is not None and size < stored:
        return EventDataError(f"{path}: truncated ROOT file ({size} of the {stored} bytes its header records)")
    return EventDataError(f"{path}: not a readable ROOT file ({reason})")


def _stored_size(path: str | Path) -> int | None:
    """The file size a ROOT header records (fEND), or None without a ROOT header."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 16 or not head.startswith(b"root"):
        return None
    big = int.from_bytes(head[4:8], "big") >= 1_000_000  # the version says whether fEND takes 8 bytes
    return int.from_bytes(head[12:20] if big else head[12:16], "big") if len(head) >= (20 if big else 16) else None


def open_tree(path: str | Path, tree_name: str):
    """(file, tree) opened with uproot, or EventDataError naming what is wrong; the tree may be a
    TTree or an RNTuple (Run-3 NanoAOD), which uproot reads alike."""
    path = as_path(path)
    file = open_file(path)
    try:
        tree = file[tree_name]
    except Exception as err:
        trees = tree_names(file)
        file.close()
        if isinstance(err, KeyError) or "not found" in str(err):
            raise EventDataError(f"{path}: no tree {tree_name!r} (trees in file: {trees or 'none'})") from None
        raise EventDataError(f"{path}: cannot read tree {tree_name!r} ({type(err).__name__}: {err})") from None
    return file, tree


def branch_names(tree) -> list[str]:
    """Every branch name of a TTree (sub-branches too: Delphes' `Jet.PT`), or every field of an
    RNTuple. An RNTuple's fields are all top-level names, and uproot's recursive listing of one costs
    seconds (quadratic in the number of fields) for the same names."""
    return list(dict.fromkeys(tree.keys(recursive=not _is_rntuple(tree), full_paths=False)))


def _is_rntuple(tree) -> bool:
    from uproot.behaviors.RNTuple import RNTuple

    return isinstance(tree, RNTuple)


def tree_names(file) -> list[str]:
    """Names of the TTrees and RNTuples in an open file."""
    return [k.split(";")[0] for k, c in file.classnames().items() if c in ("TTree", "TNtuple", "ROOT::RNTuple")]


def _read_meta(file) -> dict:
    if META_KEY not in file:
        return {}
    try:
        return json.loads(str(file[META_KEY]))
    except (ValueError, TypeError):
        return {}


#: entries read at opening to tell real values from placeholders (taggers, unfilled ID branches)
PROBE_ENTRIES = 10_000
_RNTUPLE_NUMBERS = re.compile(r"^(?:ROOT::VecOps::RVec<|std::vector<|ROOT::RNTupleCardinality<)?"
                              r"(?:std::)?(bool|float|double|u?int(?:8|16|32|64)_t)>?$")


class RootReader:
    """Stream one ROOT file (TTree or RNTuple) as `Events` under a schema and reading options."""

    def __init__(self, path: str | Path, schema: Schema, caps: Caps = Caps(), options: ReadOptions = ReadOptions()):
        self.path = as_path(path)
        self.schema = schema
        self.caps = caps
        self.options = options
        self.file, self.tree = open_tree(path, schema.tree)
        self.where = f"{self.path}:{schema.tree}"
        try:
            self.branches = {b.name: b for b in self.tree.itervalues(recursive=not _is_rntuple(self.tree))}
            meta = _read_meta(self.file)
        except Exception as err:  # a truncated file fails here, when uproot first reads past its end
            self.file.close()
            raise EventDataError(f"{self.where}: cannot read the file's metadata ({type(err).__name__}: {err}); "
                                 "the file may be truncated or corrupt") from None
        try:
            self._setup(meta)
        except Exception:
            self.file.close()
            raise

    def _setup(self, meta: dict) -> None:
        schema = self.schema
        self.written_here = bool(meta)
        self.meta_process_names = tuple(meta.get("process_names", ()))
        self.extra_info = dict(schema.info)
        self.extra_info.update({name: name for name in meta.get("info", ())})
        self.extra_info = {k: b for k, b in self.extra_info.items() if b in self.branches}
        self.labels = [b for b in self.branches if schema.label_prefix and b.startswith(schema.label_prefix)]
        if schema.label_prefix and not self.labels:
            raise EventDataError(f"{self.where}: no label branches starting with {schema.label_prefix!r}")
        self.needed: set[str] = set(self.extra_info.values()) | set(self.labels)
        self.collections = [c for c in schema.collections if self._present(c)]
        self.resolved = {c.name: {q: self._resolve_quantity(c, q)
                                  for q in ("pt", "eta", "phi", "mass", "energy", "px", "py", "pz",
                                            "charge", "tagged", "counter")}
                         for c in self.collections}
        met_optional = "met" in schema.optional
        self.met = None if schema.met is None else {
            q: self._resolve(getattr(schema.met, q), f"MET {q}", required=not met_optional)
            for q in ("pt", "phi", "px", "py")}
        if self.met is not None and not any(self.met.values()):
            self.met = None
        self.event_fields = {q: self._resolve(getattr(schema, q), q, required=q not in schema.optional)
                             for q in ("run", "lumi", "event", "weight", "process", "ntop")}
        self.selection_name = self._selection_name()
        self.selection = schema.selections[self.selection_name] if self.selection_name else None
        self.cutflow = Cutflow()
        self.requirements = {c.name: self._requirements(c) for c in self.collections}
        self.taggers = {c.name: self._tagger(c) for c in self.collections}
        self.no_score: Counter = Counter()
        self.bad_values: Counter = Counter()

    def __len__(self) -> int:
        return int(self.tree.num_entries)

    def __enter__(self) -> "RootReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def report(self) -> dict:
        """How the file was read: the tagger and working point, the selection's cutflow, repairs."""
        btag = {name: {**choice.as_dict(), "jets_without_score": self.no_score[name]}
                for name, choice in self.taggers.items() if choice is not None}
        selection = {"name": self.selection_name or "none"}
        if self.selection is not None:
            selection.update(description=self.selection.description, cutflow=self.cutflow.as_dict(),
                             btag_reference=self.selection.btag_reference)
        elif self.options.selection == "auto" and self.written_here:
            selection["why"] = "auto: the file was written by colliderfm (objects from the built-in reconstruction)"
        return {"btag": btag, "selection": selection,
                "bad_kinematics": {"mode": self.options.bad_kinematics, "values": dict(self.bad_values)}}

    # --- resolving the branch map against the file ---------------------------------------------
    def _present(self, coll: CollectionSpec) -> bool:
        if not coll.optional:
            return True
        first = coll.pt if coll.pt is not None else coll.px
        names = [first] if isinstance(first, str) else list(first)
        return any(self._slot_names(coll, n)[0] in self.branches for n in names if isinstance(n, str))

    @staticmethod
    def _slot_names(coll: CollectionSpec, name: str) -> list[str]:
        return [name.replace("{}", str(s)) for s in coll.slots] if coll.slots and "{}" in name else [name]

    def _resolve_quantity(self, coll: CollectionSpec, q: str):
        """A collection quantity resolved; in a slot collection, a list with one entry per slot."""
        quantity = getattr(coll, q)
        required = q not in ("tagged", "counter")  # a counter is only a cross-check of the lengths
        if not coll.slots:
            return self._resolve(quantity, f"{coll.name} {q}", required)
        if isinstance(quantity, str) and "{}" in quantity:
            return [self._resolve(name, f"{coll.name} {q}", required) for name in self._slot_names(coll, quantity)]
        return None if quantity is None else [self._resolve(quantity, f"{coll.name} {q}", required)] * len(coll.slots)

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
        self._missing(names, what)

    def _missing(self, names: list[str], what: str):
        close = difflib.get_close_matches(names[0], self.branches, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        alts = f"any of {', '.join(names)}" if len(names) > 1 else f"branch {names[0]!r}"
        raise EventDataError(f"{self.where}: missing {alts} (needed for {what} by schema "
                             f"{self.schema.name!r}){hint}")

    def _check_numeric(self, name: str) -> None:
        import uproot

        branch = self.branches[name]
        if not hasattr(branch, "interpretation"):  # an RNTuple field: judged by its C++ type name
            if _RNTUPLE_NUMBERS.match(branch.typename):
                return
        else:
            interp = branch.interpretation
            inner = interp.content if isinstance(interp, uproot.AsJagged) else interp
            dtype = getattr(inner, "to_dtype", None)
            if isinstance(inner, uproot.AsDtype) and dtype.kind in "biuf" and not dtype.shape:
                return
        raise EventDataError(f"{self.where}: branch {name!r} has type {branch.typename!r}; expected numbers "
                             "(or lists of numbers)")

    def _probe(self, name: str) -> np.ndarray:
        """The first values of a branch (flat), to tell real values from placeholders."""
        try:
            arrays = self.tree.arrays(filter_name=[name], entry_stop=PROBE_ENTRIES, library="ak")
        except Exception as err:
            raise EventDataError(f"{self.where}: cannot read branch {name!r} ({type(err).__name__}: {err}); "
                                 "the file may be truncated or corrupt") from None
        values = arrays[name]
        return ak.to_numpy(ak.flatten(values) if values.ndim > 1 else values)

    def _selection_name(self) -> str | None:
        name = self.options.selection
        if name == "none":
            return None
        if name == "auto":
            return None if self.written_here else self.schema.model_selection
        if name not in self.schema.selections:
            raise EventDataError(f"{self.where}: branch map {self.schema.name!r} has no selection {name!r} "
                                 f"(it has: {', '.join(self.schema.selections) or 'none'})")
        return name

    def _requirements(self, coll: CollectionSpec) -> list[tuple[Requirement, str]]:
        """Each requirement of the selection on this collection with the branch it reads."""
        cuts = self.selection.collections.get(coll.name) if self.selection else None
        out = []
        for req in cuts.require if cuts else ():
            if coll.slots:
                raise EventDataError(f"{self.where}: selection {self.selection_name!r} puts branch requirements "
                                     f"on slot collection {coll.name}; only pt/|eta| cuts apply to slots")
            present = [b for b in req.branches if b in self.branches]
            if not present:
                # a skim that dropped an ID or isolation branch: the rest of the selection still applies,
                # and the requirement's absence is said where the results are (cutflow, stderr)
                self.cutflow.skipped.setdefault(coll.name, {})[req.label(req.branches[0])] = "no such branch"
                if not req.optional:
                    log.warning("%s: no branch %s: the requirement %s of selection %r on %s is not applied (the "
                                "cutflow lists it; --selection none reads every object)", self.where,
                                " or ".join(req.branches), req.label(req.branches[0]), self.selection_name,
                                coll.name)
                continue
            for branch in present:
                why = uninformative(self._probe(branch))
                if why is None:
                    self._check_numeric(branch)
                    self.needed.add(branch)
                    out.append((req, branch))
                    break
                self.cutflow.skipped.setdefault(coll.name, {})[req.label(branch)] = why
        return out

    def _tagger(self, coll: CollectionSpec) -> TaggerChoice | None:
        """The b-tagger a jet collection is read with (None: no score, or a bit-packed one)."""
        if coll.type != "jet" or coll.btag is None:
            return None
        names = [coll.btag] if isinstance(coll.btag, str) else [n for n in coll.btag if isinstance(n, str)]
        present = [n for n in names if n in self.branches]
        if not present:
            if isinstance(coll.btag, (list, tuple)) and not isinstance(coll.btag[-1], str):
                return None
            self._missing(names, f"{coll.name} btag")
        for name in present:
            self._check_numeric(name)
        if coll.btag_bit is not None:
            self.needed.add(present[0])
            return None
        run = self.event_fields.get("run")
        runs = self._probe(run[1]) if run and run[0] == "branch" else None
        try:
            choice = choose_tagger(present, self._probe, coll.btag_wp, era=self.options.era,
                                   point=self.options.btag_wp, valid=coll.btag_valid, runs=runs)
        except ConfigError as err:
            raise EventDataError(f"{self.where}: {err}") from None
        if choice.branch is not None:
            self.needed.add(choice.branch)
        return choice

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
    def _entry_of(self, counts, index: int, entry: int) -> int:
        return entry + int(np.searchsorted(np.cumsum(counts), index, side="right"))

    def _values(self, arrays, resolved, entry: int, jagged: bool, counts=None, finite: bool = True):
        """The values of a resolved quantity, checked (flat if jagged); `finite=False` leaves
        non-finite values to the kinematics check."""
        kind, ref = resolved
        if kind == "const":
            return np.full(int(counts.sum()) if jagged else len(arrays), ref)
        array = arrays[ref]
        is_jagged = array.ndim > 1
        if jagged and not is_jagged:
            raise EventDataError(f"{self.where}: branch {ref!r} holds one value per event; expected a list per "
                                 "event (for one object per set of scalar branches, use `slots` in the branch map)")
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
        if finite and values.dtype.kind == "f":
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                event = self._entry_of(counts, bad[0], entry) if jagged else entry + int(bad[0])
                raise EventDataError(f"{self.where}: branch {ref!r} has a non-finite value ({values[bad[0]]}) "
                                     f"in entry {event}; {len(bad)} in this chunk")
        return values

    def _check_whole(self, values: np.ndarray, name: str, entry: int) -> None:
        """An event id stored as a float must be a whole number >= 0: event 1.5 would silently become 1."""
        if values.dtype.kind == "f":
            bad = np.flatnonzero((values != np.floor(values)) | (values < 0))
            if len(bad):
                raise EventDataError(f"{self.where}: branch {name!r} has {values[bad[0]]:g} in entry "
                                     f"{entry + int(bad[0])}; an event id is a whole number >= 0")

    def _gather(self, arrays, coll: CollectionSpec, entry: int) -> tuple[np.ndarray, dict]:
        """(objects per event, {quantity: flat values}) of a collection in one chunk."""
        res = self.resolved[coll.name]
        loose = {"pt", "eta", "phi", "px", "py", "pz"} if self.options.bad_kinematics == "flag" else set()
        if coll.slots:
            get = {q: np.stack([self._values(arrays, r, entry, jagged=False, finite=q not in loose) for r in rs], axis=1)
                   for q, rs in res.items() if rs is not None}
            first = get["pt"] if "pt" in get else get["px"]
            present = np.ones(first.shape, dtype=bool) if coll.slot_absent is None else first != coll.slot_absent
            return present.sum(axis=1), {q: v[present] for q, v in get.items()}
        first = res["pt"] or res["px"]
        if arrays[first[1]].ndim < 2:
            raise EventDataError(f"{self.where}: branch {first[1]!r} holds one value per event; expected a list "
                                 "per event (for one object per set of scalar branches, use `slots` in the branch map)")
        counts = ak.to_numpy(ak.num(arrays[first[1]]))
        if res["counter"] is not None:
            declared = self._values(arrays, res["counter"], entry, jagged=False)
            if np.any(declared != counts):
                bad = int(np.flatnonzero(declared != counts)[0])
                raise EventDataError(f"{self.where}: counter {res['counter'][1]!r} says {int(declared[bad])} "
                                     f"in entry {entry + bad} but {first[1]!r} has {counts[bad]} values")
        get = {q: self._values(arrays, r, entry, jagged=True, counts=counts, finite=q not in loose)
               for q, r in res.items() if r is not None and q != "counter"}
        tagger = self.taggers.get(coll.name)
        if tagger is not None and tagger.branch is not None:
            # with a valid range, a non-finite score is one more placeholder: no score
            get["btag"] = self._values(arrays, ("branch", tagger.branch), entry, jagged=True, counts=counts,
                                       finite=coll.btag_valid is None)
        elif coll.btag_bit is not None:
            get["btag"] = self._values(arrays, self._resolve(coll.btag, f"{coll.name} btag"), entry, jagged=True,
                                       counts=counts)
        return counts, get

    def _physical(self, what: str, pt, eta, phi, counts, entry: int, event: np.ndarray):
        """Kinematics checked against physical limits: an error naming the entry, or (option `flag`)
        values forced into range with the repairs counted per event."""
        problems = [(why, mask) for why, mask in unphysical(pt, eta, phi) if mask.any()]
        if not problems:
            # only values outside [-pi, pi] are wrapped: the arithmetic would move the others by an ulp
            return pt, eta, np.where(np.abs(phi) > np.pi, wrap_phi(phi), phi), None
        if self.options.bad_kinematics == "error":
            why, mask = problems[0]
            i = int(np.flatnonzero(mask)[0])
            raise EventDataError(f"{self.where}: {what} in entry {self._entry_of(counts, i, entry)} has {why} "
                                 f"(pt={pt[i]:g}, eta={eta[i]:g}, phi={phi[i]:g}); {int(mask.sum())} such values "
                                 "in this chunk. Use --bad-kinematics flag to keep such events, flagged")
        bad = np.zeros(len(pt), dtype=bool)
        for why, mask in problems:
            self.bad_values[f"{what}: {why}"] += int(mask.sum())
            bad |= mask
        pt, eta, phi = repaired(pt, eta, phi)
        return pt, eta, phi, np.bincount(event[bad], minlength=len(counts))

    def _collection(self, arrays, coll: CollectionSpec, entry: int, selected: dict) -> tuple[ak.Array, np.ndarray | None]:
        counts, get = self._gather(arrays, coll, entry)
        if "pt" in get:
            pt = get["pt"]
        else:
            pt = np.hypot(get["px"], get["py"])
        if "eta" in get and "phi" in get:
            eta, phi = get["eta"], get["phi"]
        else:
            _, c_eta, c_phi = cartesian_to_ptetaphi(get["px"], get["py"], get["pz"])
            eta, phi = get.get("eta", c_eta), get.get("phi", c_phi)
            if self.options.bad_kinematics == "error" and not np.all(np.isfinite(eta)):
                bad = int(np.flatnonzero(~np.isfinite(eta))[0])
                raise EventDataError(f"{self.where}: {coll.name} object along the beam (pt = 0, eta undefined) "
                                     f"in entry {self._entry_of(counts, bad, entry)}")
        event = np.repeat(np.arange(len(counts)), counts)
        pt, eta, phi, n_bad = self._physical(coll.name, pt, eta, phi, counts, entry, event)
        if "mass" in get:
            mass = get["mass"]
        elif "energy" in get:
            p2 = (get["px"] ** 2 + get["py"] ** 2 + get["pz"] ** 2) if "pz" in get else (pt * np.cosh(eta)) ** 2
            mass = mass_from_energy(get["energy"], p2)
        else:
            mass = 0.0
        if n_bad is not None:  # repaired momenta: a mass computed from them may be undefined
            mass = np.where(np.isfinite(mass), mass, 0.0)
        btag = get.get("btag", 0.0)
        otype = np.full(len(pt), int(COLLECTION_TYPES[coll.type]), dtype=np.int8)
        tagger = self.taggers.get(coll.name)
        if tagger is not None and tagger.branch is None:  # no tagger with real scores in this file
            self.no_score[coll.name] += len(pt)
            btag = NO_SCORE
        if coll.type == "jet" and ("btag" in get or "tagged" in get):
            if coll.btag_bit is not None:
                btag = ((get["btag"].astype(np.int64) >> coll.btag_bit) & 1).astype(np.float32)
                tagged = btag >= 0.5
            else:
                btag = np.asarray(btag)  # compared in the file's precision: a float32 score equal to the point passes
                if coll.btag_valid is not None and "btag" in get:
                    lo, hi = coll.btag_valid
                    no_score = ~((btag >= lo) & (btag <= hi))
                    self.no_score[coll.name] += int(no_score.sum())
                    btag = np.where(no_score, NO_SCORE, btag)
                tagged = (btag >= tagger.wp) if tagger is not None and tagger.wp is not None and "btag" in get \
                    else np.zeros(len(pt), dtype=bool)
            if "tagged" in get:
                tagged = get["tagged"].astype(bool)
            reference = self.selection.btag_reference if self.selection else None
            if reference is not None and tagger is not None and tagger.wp is not None and np.ndim(btag):
                btag = calibrated(btag, tagger.wp, reference)
            otype[tagged] = int(ObjectType.BJET)
        if self.selection is not None:
            reqs = [(req, branch, self._values(arrays, ("branch", branch), entry, jagged=True, counts=counts))
                    for req, branch in self.requirements[coll.name]]
            keep = apply_cuts(coll.name, self.selection.collections.get(coll.name), event, pt, eta, phi, reqs,
                              selected, self.cutflow)
            columns = dict(pt=pt, eta=eta, phi=phi, mass=mass, btag=btag, otype=otype,
                           charge=get.get("charge", 0.0))
            pt, eta, phi, mass, btag, otype, charge = (v[keep] if np.ndim(v) else v for v in columns.values())
            get["charge"] = charge
            event = event[keep]
            counts = np.bincount(event, minlength=len(counts))
            selected[coll.name] = (event, eta, phi)
        objects = make_objects(counts, type=otype, pt=pt, eta=eta, phi=phi, mass=mass, btag=btag,
                               charge=np.rint(get.get("charge", 0.0)))
        return objects, n_bad

    def _met(self, arrays, entry: int) -> tuple[ak.Array, np.ndarray | None]:
        flag = self.options.bad_kinematics == "flag"
        v = {q: self._values(arrays, r, entry, jagged=False, finite=not flag) for q, r in self.met.items()
             if r is not None}
        if "pt" in v and "phi" in v:
            pt, phi = v["pt"], v["phi"]
        else:
            pt, phi = np.hypot(v["px"], v["py"]), np.arctan2(v["py"], v["px"])
        n = len(pt)
        pt, _, phi, n_bad = self._physical("MET", pt, np.zeros(n), phi, np.ones(n, dtype=np.int64), entry,
                                           np.arange(n))
        return make_objects(np.ones(n), type=int(ObjectType.MET), pt=pt, phi=phi), n_bad

    def _build(self, arrays, entry: int) -> Events:
        n = len(arrays)
        selected: dict = {}
        built, n_bad = {}, np.zeros(n, dtype=np.int64)
        for coll in sorted(self.collections, key=self._after_cleaning):
            built[coll.name], bad = self._collection(arrays, coll, entry, selected)
            n_bad += 0 if bad is None else bad
        collections = [built[c.name] for c in self.collections]
        if self.met is not None:
            met, bad = self._met(arrays, entry)
            collections.append(met)
            n_bad += 0 if bad is None else bad
        objects, n_truncated = assemble(collections, self.caps)
        info = {"n_truncated": n_truncated, "event": np.arange(entry, entry + n, dtype=np.uint64)}
        for q, r in self.event_fields.items():
            if r is not None:
                info[q] = self._values(arrays, r, entry, jagged=False)
                if q in ("run", "lumi", "event"):
                    self._check_whole(info[q], r[1], entry)
        if self.options.bad_kinematics == "flag":
            info["bad_kinematics"] = n_bad.astype(np.int16)
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

    def _after_cleaning(self, coll: CollectionSpec) -> int:
        """Processing order: collections cleaned against others come after them."""
        cuts = self.selection.collections.get(coll.name) if self.selection else None
        return 1 if cuts is not None and cuts.clean_against else 0


class RootWriter(EventWriter):
    """Append `Events` to a ROOT file laid out as `schema` (NanoAOD-style by default), atomically.

    Only branch-name quantities of the schema are written; b-jets are written as jets with their
    score plus the schema's `tagged` branch, so the type survives a round trip exactly.
    """

    def __init__(self, path: str | Path, schema: Schema):
        import uproot

        super().__init__(path)
        self.schema = schema
        self._file = uproot.recreate(self.output.tmp)
        self.output.stack.callback(self._file.close)
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
        self._file[META_KEY] = json.dumps({"process_names": self.output.process_names,
                                              "info": ["n_truncated", *self._extras]})
        super().close()
