"""Local paths and remote URLs (root://, https://, file://): a URL is kept verbatim as a string, since
`Path` would fold its `//` (root://host//store/... names a different file once folded)."""
from __future__ import annotations

import re
from pathlib import Path

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path) -> bool:
    """Whether `path` names a file by URL (opened by uproot through XRootD or fsspec), not a local path."""
    return isinstance(path, str) and bool(_URL.match(path))


def as_path(path) -> str | Path:
    """A URL as it is; anything else as a `Path`."""
    return path if is_url(path) else Path(path)
