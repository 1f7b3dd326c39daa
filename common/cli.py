"""Shared command-line plumbing: one-line errors instead of tracebacks for bad input, argument types
that refuse bad sizes, counts and rates at parse time, and output paths that never overwrite an input."""
from __future__ import annotations

import argparse
import logging
import math
import numbers
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Iterable

from common.config import is_device_name
from common.errors import ColliderFMError, UserError
from common.interrupt import Interrupted
from common.paths import is_url


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


# --- argument types: a bad value is a usage error naming the argument, before any work starts -----
# Each also takes a value given in Python (`checked`): the API refuses what the command line refuses.
def _number(value, kind: type, low: float | None, what: str):
    try:
        number = kind(value) if isinstance(value, str) else _exactly(value, kind)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
    if kind is float and not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
    if low is not None and number < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
    return number


def _exactly(value, kind: type):
    """A Python number as `kind`, refusing what would change it or is no number: 2.5 as a count, True."""
    wanted = numbers.Integral if kind is int else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise TypeError(value)
    return kind(value)


def positive_int(text: str) -> int:
    """An integer >= 1 (sizes: events, batch and step sizes)."""
    return _number(text, int, 1, "an integer >= 1")


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (counts where 0 means none or all: caps, --max-events, --top-k)."""
    return _number(text, int, 0, "an integer >= 0")


def finite_float(text: str) -> float:
    """A finite number (nan and inf are refused)."""
    return _number(text, float, None, "a finite number")


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (temperatures, learning rates)."""
    return _number(text, float, 0.0, "a finite number >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0 (scales that 0 would switch off or divide by: a gradient clip)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (rates)."""
    value = _number(text, float, None, "a number in (0, 1)")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def kept_fraction(text: str) -> float:
    """A number in (0, 1]: a share to keep, 1 keeping all (--top-p)."""
    value = _number(text, float, None, "a number in (0, 1]")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N (what torch can be asked for here)."""
    if isinstance(text, str) and is_device_name(text):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")


def checked(rule: Callable, value, name: str):
    """`value`, given in Python as `name`, checked by an argument type above (`positive_int`, `fraction`,
    `device_name`, ...): the same rule and message as on the command line, as a UserError."""
    try:
        return rule(value)
    except argparse.ArgumentTypeError as err:
        raise UserError(f"{name}: {err}") from None


# --- models: folders or bundled names --------------------------------------------------------------
def add_model_arguments(parser, backbone: str | None = "required", tokenizer: str | None = "paired") -> None:
    """--backbone and --tokenizer, each a model folder or the name of a bundled model (`event-small`).
    `backbone`: "required", "default" (the bundled default model when none is named) or None (no
    such argument); `tokenizer`: "paired" (optional where the backbone is bundled: its own), "required"
    or None. `resolve_models(args)` completes them."""
    from common.pretrained import DEFAULT_MODEL, bundled_models

    bundled = ", ".join(bundled_models()) or "none installed"
    if backbone:
        parser.add_argument("--backbone", required=backbone == "required", type=Path,
                            help=f"pretrained backbone folder, or a bundled model's name ({bundled})"
                                 + (f"; default {DEFAULT_MODEL}" if backbone == "default" else ""))
    if tokenizer:
        parser.add_argument("--tokenizer", required=tokenizer == "required", type=Path,
                            help="the tokenizer the backbone was trained with (a folder or a bundled model's name)"
                                 + ("; default: a bundled backbone's own" if tokenizer == "paired" else ""))


def resolve_models(args) -> None:
    """`args.backbone` and `args.tokenizer` as folders: bundled names resolved, a bundled backbone's own
    tokenizer where none is named, and with no backbone named, the bundled default model (said on stderr)."""
    from common.pretrained import DEFAULT_MODEL, MODEL_ROOT, model_folder, paired_tokenizer

    if "backbone" in vars(args):
        if args.backbone is None:
            if getattr(args, "tokenizer", None) is not None:
                raise UserError("--tokenizer without --backbone: name the backbone it goes with")
            args.backbone = Path(DEFAULT_MODEL)
            logging.getLogger("colliderfm").warning("no --backbone named: using the bundled model %s (its card: %s)",
                                                    DEFAULT_MODEL, MODEL_ROOT / DEFAULT_MODEL / "MODEL_CARD.md")
        if "tokenizer" in vars(args):  # commands that read tokens only (backbone.likelihood) take none
            args.tokenizer = paired_tokenizer(args.backbone, args.tokenizer)
        args.backbone = model_folder(args.backbone, "backbone")
    elif getattr(args, "tokenizer", None) is not None:
        args.tokenizer = model_folder(args.tokenizer, "tokenizer")


# --- output paths -----------------------------------------------------------------------------------
def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _local(paths: Iterable[str | Path | None]) -> list[Path]:
    """The local paths among `paths` (a URL or None cannot be written over by a local output)."""
    return [Path(p) for p in paths if p is not None and not is_url(p)]


def check_output(out: Path, inputs: Iterable[str | Path | None] = (), what: str = "output") -> None:
    """Refuse an output file that is an input (also through a link: the input would be lost), an existing
    directory, or in a folder this process cannot write. The CLIs and the Python API's writers call it."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{out}: is a directory; give a file path for the {what}")
    for path in _local(inputs):
        if _same(out, path):
            raise UserError(f"{out}: the {what} is also an input ({path}); it would be overwritten")
        if path.is_dir() and out.exists() and path.resolve() in out.resolve().parents:
            raise UserError(f"{out}: the {what} would overwrite a file of the input folder {path}")
    _check_writable(out.parent)


def check_output_folder(out: Path, inputs: Iterable[str | Path | None] = (), what: str = "output folder") -> None:
    """Refuse an output folder that is, or holds, one of the inputs (a model folder written over, or an
    input file among the run's files), or that is an existing file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: the {what} is an existing file")
    for path in _local(inputs):
        if _same(out, path) or (out.exists() and path.exists() and out.resolve() in path.resolve().parents):
            raise UserError(f"{out}: the {what} would hold or overwrite the input {path}; choose another folder")
    _check_writable(out)


def _check_writable(folder: Path) -> None:
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: cannot write here ({existing} is not a writable folder)")


class Terminated(Exception):
    """SIGTERM or SIGHUP outside a training loop: unwind, so that no temporary file is left behind."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}; no partial output was left")
        self.exit_code = 128 + signum


class PlainFormatter(logging.Formatter):
    """Log lines as the CLIs print theirs: information as it is, warnings and errors after their level."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


_main_pid = 0


def _terminate(signum, frame):
    if os.getpid() != _main_pid:  # a forked worker (generation pool) dies as it did before
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise Terminated(signum)


def run_cli(main: Callable[[list[str] | None], int | None], prog: str, argv: list[str] | None = None) -> None:
    """Run a CLI entry point, turning user-facing errors into a one-line message on stderr.

    SIGTERM and SIGHUP raise `Terminated`, so the writers' cleanup (temporary files) runs as for any
    error; training loops install their own handlers to checkpoint first (common.interrupt).
    """
    global _main_pid
    _main_pid = os.getpid()
    # the library's progress lines and warnings (module loggers) reach the user on stderr, as plain lines
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PlainFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        code = main(argv)
    except (ColliderFMError, OSError) as err:  # OSError: the file system refused
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except (Interrupted, Terminated) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        if isinstance(err, Terminated):
            # the signal can land inside a constructor (tqdm's, say), whose half-built object's finalizer
            # would print a traceback at exit; the cleanup already ran while the exception unwound
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(err.exit_code)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
