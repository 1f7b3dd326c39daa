"""Shared command-line plumbing: one-line errors instead of tracebacks for bad input."""
from __future__ import annotations

import sys
from typing import Callable

from common.config import ConfigError
from common.interrupt import Interrupted


class UserError(Exception):
    """Bad input from the user (file, format, value): reported in one line, exit code 2."""


def run_cli(main: Callable[[list[str] | None], int | None], prog: str, argv: list[str] | None = None) -> None:
    """Run a CLI entry point, turning user-facing errors into a one-line message on stderr."""
    from events.errors import EventDataError

    try:
        code = main(argv)
    except (UserError, ConfigError, EventDataError, FileNotFoundError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as err:
        print(f"{prog}: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
