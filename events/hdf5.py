"""The project's HDF5 event store: chunked, compressed, appendable, streamable larger than memory.

Layout (format `colliderfm.events`, version 1):
    /objects/<field>    one flat dataset per object field (OBJECT_FIELDS), all events concatenated
    /events/offsets     int64 (n_events + 1,): objects of event i are [offsets[i], offsets[i+1])
    /events/<field>     one dataset per event-level field (INFO_FIELDS and any extras)
    attrs: format, version, process_names (JSON), object_types (JSON), info_fields (JSON)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import awkward as ak
import numpy as np

from events.errors import EventDataError
from events.model import INFO_FIELDS, OBJECT_FIELDS, Caps, Events, ObjectType
from events.writer import EventWriter

FORMAT_NAME = "colliderfm.events"
FORMAT_VERSION = 1
_OBJECT_CHUNK = 1 << 16
_EVENT_CHUNK = 1 << 14


def append_to_dataset(dataset, values: np.ndarray) -> None:
    """Append values (rows) to a h5py dataset resizable along its first axis."""
    start = dataset.shape[0]
    dataset.resize((start + len(values),) + dataset.shape[1:])
    dataset[start:] = values


def is_event_store(path: str | Path) -> bool:
    """True if `path` is an HDF5 file written by `HDF5Writer`."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT_NAME
    except OSError:
        return False


class HDF5Writer(EventWriter):
    """Append `Events` chunk by chunk to an HDF5 store; the file appears atomically on `close`."""

    def __init__(self, path: str | Path, *, compression: str = "gzip", compression_opts: int = 4):
        import h5py

        super().__init__(path)
        self._file = self._stack.enter_context(h5py.File(self._tmp, "w"))
        # fletcher32: a checksum per chunk, so a damaged file is an error at read, never silently other values
        self._compression = dict(compression=compression, compression_opts=compression_opts, shuffle=True,
                                 fletcher32=True)
        self._info_fields: list[str] | None = None
        self.n_objects = 0
        objects = self._file.create_group("objects")
        for name, dtype in OBJECT_FIELDS.items():
            objects.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype,
                                   chunks=(_OBJECT_CHUNK,), **self._compression)
        self._file.create_group("events").create_dataset(
            "offsets", data=np.zeros(1, dtype=np.int64), maxshape=(None,), chunks=(_EVENT_CHUNK,),
            **self._compression)

    def write(self, events: Events) -> None:
        """Append a chunk of events (process names are merged with those already written)."""
        events = self._with_file_process_names(events)
        group = self._file["events"]
        if self._info_fields is None:
            self._info_fields = list(events.info)
            for name in self._info_fields:
                values = events.info[name]
                if values.dtype.kind not in "biuf":
                    raise EventDataError(f"{self.path}: info field {name!r} has non-numeric dtype {values.dtype}")
                group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=values.dtype,
                                     chunks=(_EVENT_CHUNK,), **self._compression)
        elif list(events.info) != self._info_fields:
            raise EventDataError(f"{self.path}: chunk has fields {list(events.info)}, "
                                 f"earlier chunks had {self._info_fields}")
        flat = ak.flatten(events.objects)
        for name in OBJECT_FIELDS:
            append_to_dataset(self._file["objects"][name], ak.to_numpy(flat[name]))
        counts = ak.to_numpy(ak.num(events.objects)).astype(np.int64)
        append_to_dataset(group["offsets"], self.n_objects + np.cumsum(counts))
        for name in self._info_fields:
            append_to_dataset(group[name], events.info[name])
        self.n_events += len(events)
        self.n_objects += int(counts.sum())

    def close(self) -> None:
        attrs = self._file.attrs
        attrs["format"] = FORMAT_NAME
        attrs["version"] = FORMAT_VERSION
        attrs["process_names"] = json.dumps(self._process_names)
        attrs["object_types"] = json.dumps({t.name.lower(): int(t) for t in ObjectType})
        attrs["info_fields"] = json.dumps(self._info_fields or list(INFO_FIELDS))
        super().close()


def write_hdf5(events: Events, path: str | Path) -> None:
    """Write one `Events` batch as an HDF5 store."""
    with HDF5Writer(path) as writer:
        writer.write(events)


class HDF5Reader:
    """Random access and streaming over an HDF5 event store, without loading it whole."""

    def __init__(self, path: str | Path, caps: Caps | None = None):
        import h5py

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
        self.n_events = self._file["events/offsets"].shape[0] - 1

    def _check_layout(self) -> None:
        """Format, version, datasets, their types, and every chunk present: a damaged header or chunk
        index is an error here instead of wrong values (missing chunks read as zeros) later."""
        attrs = self._file.attrs
        if attrs.get("format") != FORMAT_NAME:
            raise EventDataError(f"{self.path}: HDF5 file is not a {FORMAT_NAME} store "
                                 f"(attribute 'format' is {attrs.get('format')!r})")
        if int(attrs.get("version", -1)) > FORMAT_VERSION:
            raise EventDataError(f"{self.path}: store version {attrs['version']} is newer than this "
                                 f"reader ({FORMAT_VERSION}); upgrade colliderfm")
        self.process_names = tuple(json.loads(attrs["process_names"]))
        self.info_fields = json.loads(attrs["info_fields"])
        expected = {**{("objects", k): np.dtype(v) for k, v in OBJECT_FIELDS.items()},
                    ("events", "offsets"): np.dtype(np.int64), **{("events", k): None for k in self.info_fields}}
        for (group, name), dtype in expected.items():
            if name not in self._file.get(group, {}):
                raise EventDataError(f"{self.path}: missing dataset /{group}/{name}")
            ds = self._file[group][name]
            if dtype is not None and ds.dtype != dtype:
                raise EventDataError(f"{self.path}: /{group}/{name} has type {ds.dtype}, expected {dtype} (corrupt?)")
            if ds.chunks and ds.shape[0] and ds.id.get_num_chunks() != -(-ds.shape[0] // ds.chunks[0]):
                raise EventDataError(f"{self.path}: /{group}/{name} is missing data chunks (corrupt or truncated)")

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
        try:
            offsets = self._file["events/offsets"][start:stop + 1]
            lo, hi = int(offsets[0]), int(offsets[-1])
            columns = {k: self._file["objects"][k][lo:hi] for k in OBJECT_FIELDS}
            info = {k: self._file["events"][k][start:stop] for k in self.info_fields}
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
            raise EventDataError(f"{self.path}: corrupt or truncated data in events "
                                 f"[{start}, {stop}) ({err})") from None
        counts = np.diff(offsets)
        if np.any(counts < 0) or (len(counts) and hi - lo != counts.sum()):
            raise EventDataError(f"{self.path}: inconsistent /events/offsets in events [{start}, {stop})")
        objects = ak.unflatten(ak.zip(columns), counts)
        return Events(objects, info, self.process_names)

    def report(self) -> dict:
        """How the file was read: a store needs no tagger choice or selection."""
        return {}

    def iterate(self, step_size: int = 100_000, caps: Caps | None = None) -> Iterator[Events]:
        """Stream the store in chunks of `step_size` events; `caps` (default: the reader's) re-applies
        tighter caps."""
        caps = caps or self.caps
        for start in range(0, self.n_events, step_size):
            events = self.read(start, start + step_size)
            if caps is not None:
                events = events.recap(caps)
            yield events

