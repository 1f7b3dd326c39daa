"""python -m events.convert IN [IN ...] OUT: readable event files to HDF5 or NanoAOD-style ROOT, streaming;
several inputs are concatenated in order (e.g. a mixed sample), optionally the first N events of each."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import check_output, nonnegative_int, positive_int, run_cli
from common.paths import as_path
from events.model import Caps


def main(argv: list[str] | None = None) -> int:
    from events.io import count_events, detect_format, iter_events, open_writer
    from events.options import add_read_arguments, read_options
    from tqdm import tqdm

    parser = argparse.ArgumentParser(
        prog="python -m events.convert",
        description="Convert events between formats, streaming, in input order with event ids kept. "
                    "Input: NanoAOD, Delphes, JetClass, any flat tree with a YAML branch map, or HDF5. "
                    "Output: .h5 (the project's store) or .root (NanoAOD-style).")
    parser.add_argument("input", type=as_path, nargs="+", help="input event file(s), concatenated in order")
    parser.add_argument("output", type=Path, help="output file (.h5/.hdf5 or .root)")
    parser.add_argument("--format", default="auto",
                        help="input format: auto (default), hdf5, nanoaod, delphes, jetclass, "
                             "cms-hep-tutorial, or a YAML branch map path")
    parser.add_argument("--step-size", type=positive_int, default=100_000, help="events per chunk (default 100000)")
    parser.add_argument("--max-events", type=nonnegative_int, default=0, help="take the first N events of each input (0: all)")
    for cap, default in vars(Caps()).items():
        parser.add_argument(f"--max-{cap}", type=nonnegative_int, default=default, help=f"cap on {cap} per event (default {default})")
    add_read_arguments(parser)
    args = parser.parse_args(argv)
    check_output(args.output, args.input)
    formats = [detect_format(p) if args.format == "auto" else args.format for p in args.input]
    caps = Caps(**{k: getattr(args, f"max_{k}") for k in vars(Caps())})
    counts = [count_events(p, f) for p, f in zip(args.input, formats)]
    if args.max_events > 0:
        counts = [min(n, args.max_events) for n in counts]
    truncated = 0
    with open_writer(args.output) as writer, tqdm(total=sum(counts), unit="ev", desc="converting") as bar:
        for path, fmt, n in zip(args.input, formats, counts):
            left = n
            for chunk in iter_events(path, fmt, step_size=args.step_size, caps=caps, options=read_options(args)):
                chunk = chunk[:left]
                writer.write(chunk)
                truncated += int(chunk.info["n_truncated"].sum())
                bar.update(len(chunk))
                left -= len(chunk)
                if left <= 0:
                    break
    print(f"wrote {writer.n_events} events from {', '.join(map(str, args.input))} to {args.output}; "
          f"{truncated} objects beyond the caps counted in n_truncated")
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m events.convert")
