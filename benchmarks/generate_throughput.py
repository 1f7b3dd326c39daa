"""Throughput of the built-in event source and of the readers.

Measures, in one run on this machine:
- records/s/core of `events.pythia.generate` per process (vectorized reconstruction, parallel workers);
- single-process ttbar against a per-event baseline: Pythia `next()`, a Python loop over the particle
  record, FastJet on a list of PseudoJets (how a physicist would usually write it; jets only, no
  leptons, b-tagging or MET), both on one core with nothing else running;
- read speed (events/s) of the HDF5 store and the NanoAOD-style ROOT file of the generated ttbar.

    python benchmarks/generate_throughput.py --workers 2 --events 2000
Prints a table and writes benchmarks/results/generate_<tag>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path


DEFAULT_PROCESSES = ["wjets", "ww", "single_top_t", "ttbar", "ttt_proxy", "tttt_proxy", "top_jets", "qcd_jets"]


def baseline_per_event(n_events: int, seed: int = 1) -> float:
    """Events/s on one core with a per-event Python particle loop (reference implementation)."""
    import fastjet
    import pythia8mc

    from events.processes import PROCESSES

    pythia = pythia8mc.Pythia("", False)
    for s in ("Beams:eCM = 13000.", "Print:quiet = on", "Random:setSeed = on", f"Random:seed = {seed}",
              *PROCESSES["ttbar"].settings):
        pythia.readString(s)
    pythia.init()
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)
    start = time.perf_counter()
    for _ in range(n_events):
        pythia.next()
        inputs = []
        for p in pythia.event:
            if p.isFinal() and p.isVisible() and abs(p.eta()) < 4.9:
                inputs.append(fastjet.PseudoJet(p.px(), p.py(), p.pz(), p.e()))
        jets = [j for j in fastjet.ClusterSequence(inputs, jetdef).inclusive_jets(20.0) if abs(j.eta()) < 2.5]
        _ = [(j.pt(), j.eta(), j.phi(), j.m()) for j in jets]
    return n_events / (time.perf_counter() - start)


def read_speed(path: Path) -> float:
    from events.io import iter_events

    start = time.perf_counter()
    n = sum(len(chunk) for chunk in iter_events(path))
    return n / (time.perf_counter() - start)


def main() -> None:
    from events.io import write_events
    from events.model import Events
    from events.pythia import GenerateConfig, GenerateStats, generate

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", nargs="+", default=DEFAULT_PROCESSES)
    parser.add_argument("--events", type=int, default=2000, help="records per process")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--block-size", type=int, default=GenerateConfig().block_size)
    parser.add_argument("--baseline-events", type=int, default=200)
    parser.add_argument("--tag", default=platform.node() or "local")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    config = GenerateConfig(block_size=args.block_size)
    rows = {}
    tmp = Path(tempfile.mkdtemp())
    for process in args.processes:
        stats = GenerateStats()
        events = Events.concatenate(generate(process, args.events, seed=1, workers=args.workers, config=config,
                                             stats=stats, progress=False))
        rows[process] = {"records": stats.records, "pythia_events": stats.pythia_events,
                         "seconds": round(stats.seconds, 2),
                         "records_per_s": round(stats.records / stats.seconds, 1),
                         "records_per_s_per_core": round(stats.records_per_s_per_core, 1)}
        print(f"{process:<14} {rows[process]['records_per_s']:>9.1f} records/s  "
              f"{rows[process]['records_per_s_per_core']:>7.1f} /s/core")
        if process == "ttbar":
            write_events(events, tmp / "ttbar.h5")
            write_events(events, tmp / "ttbar.root")
    result = {"date": date.today().isoformat(), "machine": args.tag, "cpu_cores_used": args.workers,
              "events_per_process": args.events, "block_size": args.block_size, "generate": rows}
    if args.baseline_events:
        # same conditions for both: one process, nothing else running
        stats = GenerateStats()
        for _ in generate("ttbar", args.baseline_events * 5, seed=2, workers=1, config=config, stats=stats,
                          progress=False):
            pass
        ours = stats.records_per_s_per_core
        base = baseline_per_event(args.baseline_events)
        result["single_process_ttbar_per_s"] = {"ours": round(ours, 1), "python_loop_baseline": round(base, 1),
                                                "ratio": round(ours / base, 2)}
        print(f"single process, ttbar: ours {ours:.1f} events/s (full reconstruction), per-event Python "
              f"particle loop with jets only {base:.1f} events/s")
    if (tmp / "ttbar.h5").exists():
        result["read_events_per_s"] = {"hdf5": round(read_speed(tmp / "ttbar.h5")),
                                       "nanoaod_root": round(read_speed(tmp / "ttbar.root"))}
        print(f"read: {result['read_events_per_s']}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"generate_{args.tag}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
