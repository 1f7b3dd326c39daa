"""Errors for unreadable or invalid event data (the class lives in common.errors, with the others)."""
from common.errors import EventDataError

__all__ = ["EventDataError", "require_file"]


def require_file(path, hint: str = ""):
    """`path` as a Path if it is a file; else EventDataError saying whether it is missing or a folder."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise EventDataError(f"{path}: is a directory, not a file{hint}")
    if not path.is_file():
        raise EventDataError(f"{path}: no such file{hint}")
    return path
