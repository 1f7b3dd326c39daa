"""python -m events.convert IN OUT: any readable event file to HDF5 or NanoAOD-style ROOT, streaming."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import UserError, run_cli
from events.model import Caps


def main(argv: list[str] | None = None) -> int:
    from events.io import count_events, detect_format, iter_events, open_writer
    from tqdm import tqdm

    parser = argparse.ArgumentParser(
        prog="python -m events.convert",
        description="Convert events between formats, streaming, in input order with event ids kept. "
                    "Input: NanoAOD, Delphes, JetClass, any flat tree with a YAML branch map, or HDF5. "
                    "Output: .h5 (the project's store) or .root (NanoAOD-style).")
    parser.add_argument("input", type=Path, help="input event file")
    parser.add_argument("output", type=Path, help="output file (.h5/.hdf5 or .root)")
    parser.add_argument("--format", default="auto",
                        help="input format: auto (default), hdf5, nanoaod, delphes, jetclass, "
                             "cms-hep-tutorial, or a YAML branch map path")
    parser.add_argument("--step-size", type=int, default=100_000, help="events per chunk (default 100000)")
    for cap, default in vars(Caps()).items():
        parser.add_argument(f"--max-{cap}", type=int, default=default, help=f"cap on {cap} per event (default {default})")
    args = parser.parse_args(argv)
    if args.input.resolve() == args.output.resolve():
        raise UserError("input and output are the same file")
    fmt = detect_format(args.input) if args.format == "auto" else args.format
    caps = Caps(**{k: getattr(args, f"max_{k}") for k in vars(Caps())})
    truncated = 0
    with open_writer(args.output) as writer, \
            tqdm(total=count_events(args.input, fmt), unit="ev", desc="converting") as bar:
        for chunk in iter_events(args.input, fmt, step_size=args.step_size, caps=caps):
            writer.write(chunk)
            truncated += int(chunk.info["n_truncated"].sum())
            bar.update(len(chunk))
    print(f"wrote {writer.n_events} events from {args.input} ({fmt}) to {args.output}; "
          f"{truncated} objects beyond the caps counted in n_truncated")
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m events.convert")
