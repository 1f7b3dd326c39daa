"""python -m backbone.evaluate: how close generated events are to real ones.

Wasserstein-1 distances between real and generated distributions of physics observables, each next to
its statistical floor: the distance of real events, as many as the generated ones, from the other real
events (a generator cannot be told from data where its distance is at the floor). Plots overlay real
and generated. This is `python -m events.compare REAL GENERATED` (see there) with labels real/generated.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import nonnegative_int, positive_int, run_cli
from events.compare import DRAWS, report


def main(argv: list[str] | None = None) -> int:
    from events.io import read_events

    parser = argparse.ArgumentParser(prog="python -m backbone.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", required=True, type=Path, help="real (or simulated) event file: the reference")
    parser.add_argument("--generated", required=True, type=Path, help="generated event file (sample.py)")
    parser.add_argument("--out", type=Path, default=None, help="folder for w1.json and real_vs_generated.png")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the real subsamples (default 0)")
    parser.add_argument("--draws", type=positive_int, default=DRAWS, help=f"real subsamples for the floor (default {DRAWS})")
    args = parser.parse_args(argv)
    report(read_events(args.real), read_events(args.generated), ("real", "generated"), args.out, args.seed,
           args.draws, plot_name="real_vs_generated.png")
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m backbone.evaluate")
