"""python -m events.generate: make events with the built-in Pythia 8 + FastJet source."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common.cli import UserError, check_output, nonnegative_int, positive_int, run_cli
from common.config import CONFIG_ROOT, load_config, to_dict
from events.processes import PROCESSES, process_help

DEFAULT_CONFIG = CONFIG_ROOT / "generate" / "default.yaml"


def build_parser() -> argparse.ArgumentParser:
    from common.executors import add_scheduler_argument

    parser = argparse.ArgumentParser(
        prog="python -m events.generate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate 13 TeV pp events with Pythia 8, reconstruct them (FastJet anti-kt jets, "
                    "b-tagging, isolated leptons, MET) and write them as HDF5 or NanoAOD-style ROOT.",
        epilog=f"processes (class = number of top quarks):\n{process_help()}\n\n"
               "Any config key can be overridden: --reco.jet_pt_min=25 --caps.jets=8 --block_size=200")
    parser.add_argument("--process", required=True, choices=list(PROCESSES), metavar="NAME",
                        help="process to generate (see the list below)")
    parser.add_argument("--events", type=positive_int, required=True, help="number of records to write")
    parser.add_argument("--out", required=True, type=Path, help="output file: .h5 or .root")
    parser.add_argument("--seed", type=nonnegative_int, default=1, help="random seed (default 1); same seed, same events")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="forked worker processes on this machine, no Dask needed (default 1); the same "
                             "events as any --scheduler")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="YAML generation config")
    parser.add_argument("--stats", type=Path, help="write run statistics (events/s/core...) as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_scheduler_argument(parser, "blocks of block_size Pythia events")
    return parser


def main(argv: list[str] | None = None) -> int:
    from events.io import open_writer
    from events.pythia import GenerateConfig, GenerateStats, generate

    args, overrides = build_parser().parse_known_args(argv)
    config = load_config(GenerateConfig, args.config, overrides)
    if args.seed >= 2**31:
        raise UserError("--seed must be below 2^31")
    check_output(args.out)
    if args.stats:  # before the events are made, not after
        check_output(args.stats, [args.out], "statistics file")
    stats = GenerateStats()
    with open_writer(args.out) as writer:
        for chunk in generate(args.process, args.events, seed=args.seed, workers=args.workers,
                              scheduler=args.scheduler, config=config, stats=stats, progress=not args.quiet):
            writer.write(chunk)
    result = {"process": args.process, "records": stats.records, "pythia_events": stats.pythia_events,
              "seconds": round(stats.seconds, 2), "workers": stats.workers, "scheduler": args.scheduler,
              "records_per_s": round(stats.records / max(stats.seconds, 1e-9), 1),
              "records_per_s_per_core": round(stats.records_per_s_per_core, 1),
              "truncated_objects": stats.truncated_objects, "seed": args.seed, "config": to_dict(config)}
    print(f"wrote {stats.records} {args.process} records to {args.out} in {stats.seconds:.1f} s "
          f"({result['records_per_s']} /s, {result['records_per_s_per_core']} /s/core on {stats.workers} "
          f"workers); {stats.truncated_objects} objects beyond the caps were dropped and counted")
    if args.stats:
        args.stats.parent.mkdir(parents=True, exist_ok=True)
        args.stats.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m events.generate")
