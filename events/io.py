"""One entry point for reading and writing events in any supported format.

`iter_events(path)` streams any readable file as `Events` chunks; `open_writer(path)` picks the
writer from the extension (.h5/.hdf5: the project's store; .root: NanoAOD-style).
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator
from urllib.parse import urlsplit

from common.paths import is_url
from events.errors import EventDataError, require_file
from events.hdf5 import REMOTE_HDF5, HDF5Reader, HDF5Writer
from events.model import Caps, Events
from events.options import ReadOptions
from events.root import RootReader, RootWriter, branch_names, open_file, open_tree, tree_names, unreadable
from events.schema import CONFIG_DIR, builtin_schemas, load_schema

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
ROOT_SUFFIXES = (".root",)


def _magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(8)


def detect_format(path: str | Path) -> str:
    """The format name of a file (a local path or a URL): `hdf5` or the name of a built-in ROOT schema."""
    if is_url(path):
        # a remote file is read through uproot only: its name, not its first bytes, tells HDF5 apart
        if PurePosixPath(urlsplit(path).path).suffix.lower() in HDF5_SUFFIXES:
            raise EventDataError(f"{path}: {REMOTE_HDF5}")
    else:
        path = require_file(path)
        if path.stat().st_size == 0:
            raise EventDataError(f"{path}: the file is empty (0 bytes)")
        magic = _magic(path)
        if magic.startswith(b"\x89HDF"):
            return "hdf5"
        if not magic.startswith(b"root"):
            raise EventDataError(f"{path}: neither a ROOT nor an HDF5 file (starts with {magic!r})")
    file = open_file(path)
    # the best-matching schema wins even if some identifying branches are missing, so that the
    # reader can then name exactly what the file lacks
    best, best_hits, keys_of = None, 0, {}
    try:
        with file:
            for name in builtin_schemas():
                schema = load_schema(name)
                if schema.tree not in file or not hasattr(file[schema.tree], "keys"):
                    continue
                if schema.tree not in keys_of:  # schemas share trees: list each once
                    keys_of[schema.tree] = set(branch_names(file[schema.tree]))
                keys = keys_of[schema.tree]
                hits = sum(b in keys for b in schema.detect)
                if hits > best_hits:
                    best, best_hits = name, hits
            if best is not None:
                return best
            trees = tree_names(file)
    except EventDataError:
        raise
    except Exception as err:
        raise unreadable(path, err) from None
    raise EventDataError(f"{path}: no built-in format matches (trees: {trees}); write a branch map like "
                         f"{CONFIG_DIR / 'cms-hep-tutorial.yaml'} and pass it with --format")


def open_events(path: str | Path, format: str = "auto", *, caps: Caps | None = None,
                options: ReadOptions | None = None):
    """A reader (`HDF5Reader` or `RootReader`; close it, or use it as a context manager) with
    `len()`, `iterate(step_size)` and `report()` (for ROOT: tagger, selection cutflow, repairs)."""
    format = detect_format(path) if format == "auto" else format
    options = options or ReadOptions()
    if format == "hdf5":
        if options.selection not in ("none", "auto"):
            raise EventDataError(f"{path}: an HDF5 event store holds objects already selected; --selection "
                                 f"{options.selection} applies to ROOT branch maps")
        return HDF5Reader(path, caps)
    return RootReader(path, load_schema(format), caps or Caps(), options)


def iter_events(path: str | Path, format: str = "auto", *, step_size: int = 100_000,
                caps: Caps | None = None, options: ReadOptions | None = None) -> Iterator[Events]:
    """Stream a file as `Events` chunks in file order.

    Parameters
    ----------
    format : str
        `auto`, `hdf5`, a built-in schema name (`nanoaod`, `delphes`, `jetclass`, ...) or a YAML path.
    caps : Caps, optional
        Multiplicity caps; default `Caps()` for ROOT input, none re-applied for HDF5 stores.
    options : ReadOptions, optional
        Object selection, era, b-tag working point, handling of impossible kinematics (ROOT input).
    """
    with open_events(path, format, caps=caps, options=options) as reader:
        yield from reader.iterate(step_size)


def read_events(path: str | Path, format: str = "auto", *, caps: Caps | None = None,
                options: ReadOptions | None = None) -> Events:
    """A whole file as one `Events` (use `iter_events` for files larger than memory)."""
    return Events.concatenate(iter_events(path, format, caps=caps, options=options))


def count_nonzero_events(path: str | Path, format: str = "auto") -> int:
    """`count_events`, refusing a file without events (a CLI given one was most likely given the wrong file)."""
    n = count_events(path, format)
    if n == 0:
        raise EventDataError(f"{path}: holds no events")
    return n


def count_events(path: str | Path, format: str = "auto") -> int:
    """Number of events in a file, without reading them."""
    format = detect_format(path) if format == "auto" else format
    if format == "hdf5":
        with HDF5Reader(path) as reader:
            return len(reader)
    file, tree = open_tree(path, load_schema(format).tree)
    with file:
        return int(tree.num_entries)


def open_writer(path: str | Path, format: str = "auto"):
    """A writer (`HDF5Writer` or `RootWriter`) for `path`; use as a context manager."""
    path = Path(path)
    if format == "auto":
        if path.suffix.lower() in HDF5_SUFFIXES:
            format = "hdf5"
        elif path.suffix.lower() in ROOT_SUFFIXES:
            format = "nanoaod"
        else:
            raise EventDataError(f"{path}: cannot tell the output format from the extension; use "
                                 f"{'/'.join(HDF5_SUFFIXES + ROOT_SUFFIXES)}")
    if format == "hdf5":
        return HDF5Writer(path)
    return RootWriter(path, load_schema(format))


def write_events(events: Events | Iterable[Events], path: str | Path, format: str = "auto") -> int:
    """Write events (one batch or an iterable of chunks) to `path`; returns the number written."""
    chunks = [events] if isinstance(events, Events) else events
    with open_writer(path, format) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return writer.n_events
