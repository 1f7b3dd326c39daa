"""Score files: one row per input event, in input order, with its id (run, lumi, event), its process
where the input knows it (generated or simulated samples; empty for data), a flag word and one column
per score. HDF5 (format `colliderfm.scores`) or CSV, written atomically and streamed.

Scores with per-object contributions (the surprise) add a `worst_object` column: the index, in the
event's canonical object order (jets by pt, leptons, photons, MET), of the object that contributes
most (-1 without objects; in events flagged 2, counted over the objects left once those of unknown
types are taken out); HDF5 files also hold every object's contribution, jagged, as
/objects/<score> (flat) with /objects/offsets (events + 1), read back by `read_object_scores`.

A score file combined from several inputs (`anomaly score --input A B ... --out FILE`) adds an
`input` column: each event's index into the metadata's `inputs` (CSV: the input's name). HDF5 files
record the signature of the job that wrote them (meta `job`: what a rerun compares, common.filejobs).

Before the file appears, each score column is checked: a non-finite score of an unflagged event, or
a column that has collapsed (the same value for every event), is an error, not a result.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from events.errors import EventDataError, require_file
from events.hdf5 import append_to_dataset
from events.writer import AtomicOutput, WritesAtomically, failing_cleanly

FORMAT = "colliderfm.scores"
ID_FIELDS = ("run", "lumi", "event")
NOT_SCORES = (*ID_FIELDS, "process", "flag", "input", "worst_object")


class ScoreError(EventDataError):
    """A score column that cannot be trusted (non-finite or collapsed)."""


class ScoreWriter(WritesAtomically):
    """Append score rows chunk by chunk (`write`); the file appears atomically on `close` (use as a
    context manager: on an exception no file is left)."""

    @failing_cleanly
    def __init__(self, path: str | Path, columns: tuple[str, ...], meta: dict | None = None,
                 object_columns: tuple[str, ...] = (), inputs: list[str] | None = None):
        """`inputs`: the input files of a combined file; each `write` then says which one its rows are from."""
        if Path(path).suffix.lower() not in (".h5", ".hdf5", ".csv"):
            raise EventDataError(f"{path}: score files are .h5, .hdf5 or .csv")
        self.output = AtomicOutput(path)
        self.path = self.output.path
        self.n_events = 0
        self.columns = columns
        self.object_columns = object_columns
        self.inputs = inputs
        self.names = (*ID_FIELDS, "process", "flag", *(("input",) if inputs else ()),
                      *(("worst_object",) if object_columns else ()), *columns)
        self._low = {c: np.inf for c in columns}
        self._high = {c: -np.inf for c in columns}
        self.csv = self.path.suffix.lower() == ".csv"
        if self.csv:
            check_csv_inputs(self.path, inputs)
            self._out = self.output.stack.enter_context(open(self.output.tmp, "w"))
            self._out.write(",".join(self.names) + "\n")
        else:
            import h5py

            self._out = self.output.stack.enter_context(h5py.File(self.output.hdf5(), "w"))
            self._out.attrs.update(format=FORMAT, meta=json.dumps({**(meta or {}), **({"inputs": inputs} if inputs
                                                                                       else {})}))
            for name in self.names:
                # process: index into process_names; event: NanoAOD's uint64, all 64 bits kept
                dtype = np.float64 if name in columns else np.uint64 if name == "event" else np.int64
                self._out.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1 << 16,),
                                         compression="gzip", shuffle=True, fletcher32=True)
            for name in object_columns:
                self._out.create_dataset(f"objects/{name}", shape=(0,), maxshape=(None,), dtype=np.float64,
                                         chunks=(1 << 16,), compression="gzip", shuffle=True, fletcher32=True)
            if object_columns:
                self._out.create_dataset("objects/offsets", data=np.zeros(1, np.int64), maxshape=(None,),
                                         chunks=(1 << 16,), compression="gzip", shuffle=True, fletcher32=True)
        self._n_objects = 0

    @failing_cleanly
    def write(self, ids: dict[str, np.ndarray], flags: np.ndarray, scores: dict[str, np.ndarray],
              process_names: tuple[str, ...] = (), objects: dict | None = None, input: int = 0) -> None:
        """One chunk: `ids` holds run, lumi, event and optionally process (indices into `process_names`);
        `objects` the per-object contributions (jagged awkward arrays) of `object_columns`; `input`:
        the index of the input file the rows are from (a combined file)."""
        for c in self.columns:
            s = scores[c]
            bad = ~np.isfinite(s) & (flags == 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ScoreError(f"score {c!r} is {s[i]} for event {self.n_events + i} "
                                 f"(run {ids['run'][i]}, event {ids['event'][i]}): no file written")
            finite = s[np.isfinite(s)]
            if len(finite):
                self._low[c] = min(self._low[c], finite.min())
                self._high[c] = max(self._high[c], finite.max())
        process = self.output.process_table(process_names)[np.asarray(ids.get("process", np.full(len(flags), -1)))]
        if self.csv:
            table = np.array(self.output.process_names + [""], dtype=object)
            process = table[process]  # names in CSV, readable as they are
        worst = []
        if self.object_columns:
            import awkward as ak

            worst = [worst_object(objects[self.object_columns[0]])]
            if not self.csv:
                counts = ak.to_numpy(ak.num(objects[self.object_columns[0]])).astype(np.int64)
                for name in self.object_columns:
                    append_to_dataset(self._out["objects"][name], ak.to_numpy(ak.flatten(objects[name])))
                append_to_dataset(self._out["objects/offsets"], self._n_objects + np.cumsum(counts))
                self._n_objects += int(counts.sum())
        source = []
        if self.inputs:
            source = [np.full(len(flags), self.inputs[input], dtype=object) if self.csv
                      else np.full(len(flags), input, np.int64)]
        values = [ids[k] for k in ID_FIELDS] + [process, flags] + source + worst + [scores[c] for c in self.columns]
        if self.csv:
            rows = np.column_stack([np.asarray(v, dtype=object) for v in values])
            fmt = ["%d"] * len(ID_FIELDS) + ["%s", "%d"] + ["%s"] * len(source) + ["%d"] * len(worst) + \
                ["%.9g"] * len(self.columns)
            np.savetxt(self._out, rows, fmt=fmt, delimiter=",")
        else:
            for name, v in zip(self.names, values):
                append_to_dataset(self._out[name], np.asarray(v))
        self.n_events += len(flags)

    @failing_cleanly
    def close(self) -> None:
        for c in self.columns:
            if self.n_events > 1 and not self._high[c] > self._low[c]:
                err = ScoreError(f"score {c!r} has collapsed: {self._low[c]} for every event of {self.n_events}; "
                                 "no file written (is the model trained, and does it match the tokenizer?)")
                self.output.abort(err)  # removes the partial file
                raise err
        if not self.csv:
            self._out.attrs["process_names"] = json.dumps(self.output.process_names)
        self.output.close()


def check_csv_inputs(path: Path, inputs: list[str] | None) -> None:
    """Refuse input names a CSV score file cannot hold in its `input` column."""
    if Path(path).suffix.lower() == ".csv" and inputs and any("," in i or "\n" in i for i in inputs):
        raise EventDataError(f"{path}: an input name holds a comma or newline; write the scores as .h5")


def worst_object(contributions) -> np.ndarray:
    """The index of each event's largest per-object contribution (jagged), -1 without objects."""
    import awkward as ak

    return ak.to_numpy(ak.fill_none(ak.argmax(contributions, axis=1), -1)).astype(np.int64)


def read_scores(path: str | Path) -> dict[str, np.ndarray]:
    """All columns of a score file (HDF5 or CSV); `process` as names ("" where unknown)."""
    path = require_file(path)
    if path.suffix.lower() == ".csv":
        return _read_csv_scores(path)
    with _open_hdf5(path) as f:
        if f.attrs.get("format") != FORMAT:
            raise EventDataError(f"{path}: not a {FORMAT} file")
        out = {k: f[k][:] for k in f if k != "objects"}
        names = np.array(json.loads(f.attrs.get("process_names", "[]")) + [""], dtype=object)
        inputs = json.loads(f.attrs.get("meta", "{}")).get("inputs")
    out["process"] = names[out["process"]].astype(str)
    if "input" in out:
        out["input"] = np.array(inputs, dtype=object)[out["input"]].astype(str)
    return out


def _open_hdf5(path: Path):
    """`path` opened read-only with h5py, or EventDataError naming it (h5py's own text does not)."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise EventDataError(f"{path}: not a readable HDF5 file ({err})") from None


def _csv_kind(column: str) -> tuple[type, str]:
    """A CSV column's dtype, and what its values must be, as an error says it."""
    if column in ("process", "input"):
        return str, "text"
    if column == "event":  # NanoAOD's uint64
        return np.uint64, "an integer >= 0"
    if column in (*ID_FIELDS, "flag", "worst_object"):
        return np.int64, "an integer"
    return float, "a number"


def _read_csv_scores(path: Path) -> dict[str, np.ndarray]:
    """The columns of a CSV score file; a row of another length than the header, or a value that is not
    a number of its column's kind, is an error naming the line (and column), never a row dropped or cut."""
    import csv

    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[:len(ID_FIELDS)] != list(ID_FIELDS):
            raise EventDataError(f"{path}: not a score file (header {header or 'missing'})")
        rows, lines = [], []
        for row in reader:
            if len(row) != len(header):
                raise EventDataError(f"{path}, line {reader.line_num}: {len(row)} fields, the header has "
                                     f"{len(header)}")
            rows.append(row)
            lines.append(reader.line_num)
    values = list(zip(*rows)) if rows else [()] * len(header)
    return {name: _csv_column(path, name, column, lines) for name, column in zip(header, values)}


def _csv_column(path: Path, name: str, values: tuple[str, ...], lines: list[int]) -> np.ndarray:
    dtype, kind = _csv_kind(name)
    try:
        return np.array(values, dtype=dtype)
    except (ValueError, OverflowError):
        for value, line in zip(values, lines):  # the first value that does not convert, to name it
            try:
                np.array([value], dtype=dtype)
            except (ValueError, OverflowError):
                raise EventDataError(f"{path}, line {line}, column {name}: {value!r} is not {kind}") from None
        raise


def read_meta(path: str | Path) -> dict | None:
    """The metadata of an HDF5 score file (None for anything else: a CSV file, another file, none)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs["meta"]) if f.attrs.get("format") == FORMAT else None
    except (OSError, KeyError, ValueError):
        return None


def combine_score_files(parts: list[Path], inputs: list[str], out: Path, columns: tuple[str, ...],
                        object_columns: tuple[str, ...], job: dict) -> int:
    """One score file `out` (.h5 or .csv) of the HDF5 score files `parts` (one per input, in order, with
    `columns` and `object_columns`), each row's input recorded, `job` its signature; returns the rows."""
    meta = {k: v for k, v in (read_meta(parts[0]) or {}).items() if k != "input"}
    with ScoreWriter(out, columns, {**meta, "job": job}, object_columns, inputs) as writer:
        for i, part in enumerate(parts):
            table = read_scores(part)
            names, process = np.unique(table["process"], return_inverse=True)
            process = process.astype(np.int64)
            if names.size and names[0] == "":  # unknown process: "" sorts first
                names, process = names[1:], process - 1
            ids = {**{k: table[k] for k in ID_FIELDS}, "process": process}
            objects = read_object_scores(part) if object_columns else None
            writer.write(ids, table["flag"], table, tuple(names.tolist()), objects, input=i)
    return writer.n_events


def read_object_scores(path: str | Path) -> dict:
    """The per-object contributions of an HDF5 score file: {score: jagged awkward array (events, objects)}."""
    import awkward as ak

    with _open_hdf5(require_file(path)) as f:
        if "objects" not in f:
            raise EventDataError(f"{path}: no per-object scores (score with --method density, into .h5)")
        counts = np.diff(f["objects/offsets"][:])
        return {k: ak.unflatten(f["objects"][k][:], counts) for k in f["objects"] if k != "offsets"}
