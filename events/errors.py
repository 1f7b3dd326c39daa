"""Errors for unreadable or invalid event data (the class lives in common.errors, with the others)."""
from common.errors import EventDataError
from common.paths import is_url

__all__ = ["EventDataError", "require_file", "require_input"]


def require_file(path, hint: str = ""):
    """`path` as a Path if it is a file; else EventDataError saying whether it is missing, a folder or a URL."""
    from pathlib import Path

    if is_url(path):  # Path() would fold it into another name and report that one missing
        raise EventDataError(f"{path}: a URL; this input is read from local paths only (copy it first)")
    path = Path(path)
    if path.is_dir():
        raise EventDataError(f"{path}: is a directory, not a file{hint}")
    if not path.is_file():
        raise EventDataError(f"{path}: no such file{hint}")
    return path


def require_input(path):
    """An input uproot opens: a URL kept verbatim (its server says, at opening, what is wrong with it),
    else `require_file`."""
    return path if is_url(path) else require_file(path)
