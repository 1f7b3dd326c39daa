"""Shared command-line plumbing: one-line errors instead of tracebacks for bad input."""
from __future__ import annotations

import sys
from typing import Callable

from common.config import ConfigError
from common.interrupt import Interrupted


class UserError(Exception):
    """Bad input from the user (file, format, value): reported in one line, exit code 2."""


def training_parser(prog: str, description: str, default_config: str):
    """The arguments every training CLI shares: a YAML config, --resume and --quiet; any other
    `--section.key=value` argument overrides the config."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", type=Path, default=Path(default_config), help="YAML config")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


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
