"""The project's HDF5 event store: chunked, compressed, appendable, streamable larger than memory.

Layout (format `colliderfm.events`, version 1):
    /objects/<field>    one flat dataset per object field (OBJECT_FIELDS), all events concatenated
    /events/offsets     int64 (n_events + 1,): objects of event i are [offsets[i], offsets[i+1])
    /events/<field>     one dataset per event-level field (INFO_FIELDS and any extras)
    attrs: format, version, process_names (JSON), object_types (JSON), info_fields (JSON)
    each dataset's attr xxh3_128: the hash of its type and bytes, checked when a read covers the whole
    store (fletcher32 checks each chunk, but a damaged chunk index reads as zeros, a damaged type
    as other values); older stores have none
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import awkward as ak
import numpy as np
import xxhash

from common.paths import is_url
from events.errors import EventDataError
from events.model import INFO_FIELDS, OBJECT_FIELDS, Caps, Events, ObjectType
from events.writer import EventWriter

FORMAT_NAME = "colliderfm.events"
FORMAT_VERSION = 1
_OBJECT_CHUNK = 1 << 16
_EVENT_CHUNK = 1 << 14
_OFFSETS_BLOCK = 1 << 20  # offsets checked at open in blocks of this many, so memory stays bounded
#: h5py reads local files only (uproot reads ROOT files by URL)
REMOTE_HDF5 = "HDF5 stores are read from local paths only; copy it first, e.g. `xrdcp URL .`"
HASH = "xxh3_128"


def append_to_dataset(dataset, values: np.ndarray) -> None:
    """Append values (rows) to a h5py dataset resizable along its first axis."""
    start = dataset.shape[0]
    dataset.resize((start + len(values),) + dataset.shape[1:])
    dataset[start:] = values


class HDF5Writer(EventWriter):
    """Append `Events` chunk by chunk to an HDF5 store; the file appears atomically on `close`."""

    def __init__(self, path: str | Path, *, compression: str = "gzip", compression_opts: int = 4):
        import h5py

        super().__init__(path)
        self._file = self.output.stack.enter_context(h5py.File(self.output.hdf5(), "w"))
        # fletcher32: a checksum per chunk, so a damaged file is an error at read, never silently other values
        self._compression = dict(compression=compression, compression_opts=compression_opts, shuffle=True,
                                 fletcher32=True)
        self._hashes: dict[str, xxhash.xxh3_128] = {}
        self._info_fields: list[str] | None = None
        self.n_objects = 0
        for name, dtype in OBJECT_FIELDS.items():
            self._create(f"objects/{name}", dtype, _OBJECT_CHUNK)
        self._create("events/offsets", np.int64, _EVENT_CHUNK)
        self._append("events/offsets", np.zeros(1, dtype=np.int64))

    def _create(self, name: str, dtype, chunk: int) -> None:
        self._file.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(chunk,),
                                  **self._compression)
        self._hashes[name] = xxhash.xxh3_128(np.dtype(dtype).str.encode())

    def _append(self, name: str, values: np.ndarray) -> None:
        """Append to a dataset, hashing the bytes as stored."""
        dataset = self._file[name]
        values = np.ascontiguousarray(values, dtype=dataset.dtype)
        self._hashes[name].update(values)
        append_to_dataset(dataset, values)

    def _create_info(self, info: dict[str, np.ndarray]) -> None:
        """The event-level datasets, one per field of the first chunk."""
        self._info_fields = list(info)
        for name, values in info.items():
            if values.dtype.kind not in "biuf":
                raise EventDataError(f"{self.path}: info field {name!r} has non-numeric dtype {values.dtype}")
            self._create(f"events/{name}", values.dtype, _EVENT_CHUNK)

    def write(self, events: Events) -> None:
        """Append a chunk of events (process names are merged with those already written)."""
        events = self._with_file_process_names(events)
        if self._info_fields is None:
            self._create_info(events.info)
        elif list(events.info) != self._info_fields:
            raise EventDataError(f"{self.path}: chunk has fields {list(events.info)}, "
                                 f"earlier chunks had {self._info_fields}")
        flat = ak.flatten(events.objects)
        for name in OBJECT_FIELDS:
            self._append(f"objects/{name}", ak.to_numpy(flat[name]))
        counts = ak.to_numpy(ak.num(events.objects)).astype(np.int64)
        self._append("events/offsets", self.n_objects + np.cumsum(counts))
        for name in self._info_fields:
            self._append(f"events/{name}", events.info[name])
        self.n_events += len(events)
        self.n_objects += int(counts.sum())

    def close(self) -> None:
        if self._info_fields is None:  # nothing written (an empty input): still a store of 0 events
            self._create_info({name: np.zeros(0, dtype) for name, dtype in INFO_FIELDS.items()})
        for name, digest in self._hashes.items():
            # fixed-length bytes, stored in the dataset's header: a damaged variable-length string
            # (kept in HDF5's global heap) can crash the HDF5 library as it is read
            self._file[name].attrs[HASH] = np.bytes_(digest.hexdigest())
        attrs = self._file.attrs
        attrs["format"] = FORMAT_NAME
        attrs["version"] = FORMAT_VERSION
        attrs["process_names"] = json.dumps(self.output.process_names)
        attrs["object_types"] = json.dumps({t.name.lower(): int(t) for t in ObjectType})
        attrs["info_fields"] = json.dumps(self._info_fields)
        super().close()


class HDF5Reader:
    """Random access and streaming over an HDF5 event store, without loading it whole.

    Checked at open: the layout, /events/offsets (read once) and every dataset's length; at each read,
    the values (finite, known object types, process indices in range); and the datasets' hashes when
    the reads cover the whole store (`iterate`, or `read` of all events).
    """

    def __init__(self, path: str | Path, caps: Caps | None = None):
        import h5py

        if is_url(path):
            raise EventDataError(f"{path}: {REMOTE_HDF5}")
        self.path = Path(path)
        self.caps = caps
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise EventDataError(f"{self.path}: not a readable HDF5 file ({err})") from None
        try:
            self._check_layout()
        except EventDataError:
            self._file.close()
            raise
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:  # damaged metadata
            self._file.close()
            raise EventDataError(f"{self.path}: corrupt HDF5 metadata ({type(err).__name__}: {err})") from None

    def _check_layout(self) -> None:
        """Format, version, datasets, their types and shapes, and every chunk present: a damaged header or
        chunk index is an error here instead of wrong values (missing chunks read as zeros) later."""
        attrs = self._file.attrs
        if attrs.get("format") != FORMAT_NAME:
            raise EventDataError(f"{self.path}: HDF5 file is not a {FORMAT_NAME} store "
                                 f"(attribute 'format' is {attrs.get('format')!r})")
        if int(attrs.get("version", -1)) > FORMAT_VERSION:
            raise EventDataError(f"{self.path}: store version {attrs['version']} is newer than this "
                                 f"reader ({FORMAT_VERSION}); upgrade colliderfm")
        self.process_names = tuple(json.loads(attrs["process_names"]))
        self.info_fields = json.loads(attrs["info_fields"])
        expected = {**{f"objects/{k}": np.dtype(v) for k, v in OBJECT_FIELDS.items()},
                    "events/offsets": np.dtype(np.int64), **{f"events/{k}": None for k in self.info_fields}}
        self._datasets = {}
        for name, dtype in expected.items():
            group, field = name.split("/")
            if field not in self._file.get(group, {}):
                raise EventDataError(f"{self.path}: missing dataset /{name}")
            ds = self._datasets[name] = self._file[name]
            if dtype is not None and ds.dtype != dtype:
                raise EventDataError(f"{self.path}: /{name} has type {ds.dtype}, expected {dtype} (corrupt?)")
            if ds.dtype.kind not in "biuf":
                raise EventDataError(f"{self.path}: /{name} has type {ds.dtype}, expected numbers")
            if ds.ndim != 1:
                raise EventDataError(f"{self.path}: /{name} has shape {ds.shape}, expected one value per "
                                     f"{'object' if group == 'objects' else 'event'}")
            if ds.chunks and ds.shape[0] and ds.id.get_num_chunks() != -(-ds.shape[0] // ds.chunks[0]):
                raise EventDataError(f"{self.path}: /{name} is missing data chunks (corrupt or truncated)")
        self._hashes = {name: ds.attrs.get(HASH) for name, ds in self._datasets.items()}
        self.n_events = self._datasets["events/offsets"].shape[0] - 1
        if self.n_events < 0:
            raise EventDataError(f"{self.path}: /events/offsets is empty (it needs one entry more than events)")
        n_objects = self._check_offsets()
        for name, ds in self._datasets.items():
            if name.startswith("objects/") and ds.shape[0] != n_objects:
                raise EventDataError(f"{self.path}: /{name} has {ds.shape[0]} entries, but /events/offsets "
                                     f"ends at {n_objects} objects (corrupt or truncated)")
            if name.startswith("events/") and name != "events/offsets" and ds.shape[0] != self.n_events:
                raise EventDataError(f"{self.path}: /{name} has {ds.shape[0]} entries, expected one per event "
                                     f"({self.n_events}, from /events/offsets)")

    def _check_offsets(self) -> int:
        """/events/offsets starts at 0 and never decreases (read once, in blocks; its hash checked);
        returns its last entry, the number of objects."""
        ds = self._datasets["events/offsets"]
        digests = self._digests(["events/offsets"])
        last = 0
        for start in range(0, ds.shape[0], _OFFSETS_BLOCK):
            block = ds[start:start + _OFFSETS_BLOCK]
            if start == 0 and block[0] != 0:
                raise EventDataError(f"{self.path}: /events/offsets starts at {block[0]}, not 0")
            steps = np.diff(block, prepend=last)
            down = np.flatnonzero(steps < 0)
            if len(down):
                j = int(down[0])
                raise EventDataError(f"{self.path}: /events/offsets decreases at entry {start + j} "
                                     f"({block[j] - steps[j]} -> {block[j]}): event {start + j - 1} would have "
                                     "a negative number of objects")
            for digest in digests.values():
                digest.update(block)
            last = int(block[-1])
        self._verify(digests)
        return last

    def _digests(self, names: list[str]) -> dict[str, xxhash.xxh3_128]:
        """A running hash for each of `names` that has one stored (stores older than hashes have none)."""
        return {name: xxhash.xxh3_128(self._datasets[name].dtype.str.encode()) for name in names
                if self._hashes[name] is not None}

    def _verify(self, digests: dict[str, xxhash.xxh3_128]) -> None:
        for name, digest in digests.items():
            if digest.hexdigest().encode() != self._hashes[name]:
                raise EventDataError(f"{self.path}: /{name} does not match the hash written with it: the file "
                                     "is damaged (e.g. a chunk index entry), its values cannot be trusted")

    def __len__(self) -> int:
        return self.n_events

    def __enter__(self) -> "HDF5Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def read(self, start: int = 0, stop: int | None = None) -> Events:
        """Events [start, stop) in file order."""
        stop = self.n_events if stop is None else min(stop, self.n_events)
        start = min(start, stop)
        whole = start == 0 and stop == self.n_events
        return self._read(start, stop, self._hashed_digests() if whole else None)

    def _hashed_digests(self) -> dict[str, xxhash.xxh3_128]:
        """Running hashes of the object and event-level datasets, for a read of the whole store."""
        return self._digests([f"objects/{k}" for k in OBJECT_FIELDS] + [f"events/{k}" for k in self.info_fields])

    def _read(self, start: int, stop: int, digests: dict | None) -> Events:
        """Events [start, stop), feeding `digests` (reads in order from event 0), checked at the last event."""
        try:
            offsets = self._datasets["events/offsets"][start:stop + 1]
            lo, hi = int(offsets[0]), int(offsets[-1])
            columns = {k: self._datasets[f"objects/{k}"][lo:hi] for k in OBJECT_FIELDS}
            info = {k: self._datasets[f"events/{k}"][start:stop] for k in self.info_fields}
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
            raise EventDataError(f"{self.path}: corrupt or truncated data in events "
                                 f"[{start}, {stop}) ({err})") from None
        if digests is not None:
            for name, digest in digests.items():
                group, field = name.split("/")
                digest.update(columns[field] if group == "objects" else info[field])
            if stop == self.n_events:
                self._verify(digests)
        self._check_values(start, offsets, columns, info)
        objects = ak.unflatten(ak.zip(columns), np.diff(offsets))
        return Events(objects, info, self.process_names)

    def _check_values(self, start: int, offsets: np.ndarray, columns: dict, info: dict) -> None:
        """What the ROOT reader refuses is refused here too: non-finite values, unknown object types,
        process indices beyond the process names."""
        def event_of(i: int) -> str:  # object i of the chunk
            e = int(np.searchsorted(offsets, offsets[0] + i, side="right")) - 1
            return f"event {start + e} (id {info['event'][e]})"

        types = columns["type"]
        bad = np.flatnonzero((types < 0) | (types > max(ObjectType)))
        if len(bad):
            raise EventDataError(f"{self.path}: unknown object type {types[bad[0]]} in /objects/type, "
                                 f"{event_of(bad[0])}; known types are 0..{int(max(ObjectType))}")
        for name, values in columns.items():
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                i = int(np.flatnonzero(~np.isfinite(values))[0])
                raise EventDataError(f"{self.path}: /objects/{name} is {values[i]} for a "
                                     f"{ObjectType(int(types[i])).name.lower()} in {event_of(i)}")
        process = info["process"]
        bad = np.flatnonzero((process < -1) | (process >= len(self.process_names)))
        if len(bad):
            raise EventDataError(f"{self.path}: /events/process is {process[bad[0]]} in event {start + bad[0]}, "
                                 f"outside the {len(self.process_names)} process names (-1: unknown)")
        for name, values in info.items():
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                i = int(np.flatnonzero(~np.isfinite(values))[0])
                raise EventDataError(f"{self.path}: /events/{name} is {values[i]} in event {start + i}")

    def report(self) -> dict:
        """How the file was read: a store needs no tagger choice or selection."""
        return {}

    def iterate(self, step_size: int = 100_000, caps: Caps | None = None) -> Iterator[Events]:
        """Stream the store in chunks of `step_size` events; `caps` (default: the reader's) re-applies
        tighter caps."""
        caps = caps or self.caps
        digests = self._hashed_digests()
        for start in range(0, self.n_events, step_size):
            events = self._read(start, min(start + step_size, self.n_events), digests)
            if caps is not None:
                events = events.recap(caps)
            yield events
