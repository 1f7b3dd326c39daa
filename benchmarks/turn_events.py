"""Event files turned about the beam so each event's leading jet is at phi = 0 (events.azimuth).

    python benchmarks/turn_events.py data/anom/ttbar_s1.h5 data/rot/ttbar_s1.h5 [IN OUT ...]

What a tokenizer with `azimuth: leading_jet` does before encoding, done to the files instead: an
existing (absolute) tokenizer then encodes events in the leading-jet frame with its own codebook, so the
frame's effect on a backbone is measured apart from retraining the tokenizer.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from events.azimuth import leading_azimuth, rotate_azimuth
    from events.io import read_events, write_events

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", nargs="+", type=Path, help="input and output event files, in pairs")
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("give input and output files in pairs")
    for source, out in zip(args.pairs[::2], args.pairs[1::2]):
        events = read_events(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_events(rotate_azimuth(events, leading_azimuth(events)), out)
        print(f"{source} -> {out}: {len(events)} events")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/turn_events.py")
