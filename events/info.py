"""python -m events.info FILE: what an event file holds, streamed (works on files larger than memory)."""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import awkward as ak
import numpy as np

from common.cli import nonnegative_int, positive_int, run_cli
from common.paths import as_path
from events.model import Caps, Events, ObjectType

FEATURES = ("pt", "eta", "phi", "mass", "btag", "charge")


class Summary:
    """Running totals over event chunks: counts per type and process, feature ranges, truncations."""

    def __init__(self):
        self.n_events = 0
        self.n_empty = 0
        self.n_truncated_events = 0
        self.n_truncated_objects = 0
        self.sum_weights = 0.0
        self.objects = Counter()
        self.max_per_event = Counter()
        self.processes = Counter()
        self.ntop = Counter()
        self.ranges: dict[str, dict[str, list[float]]] = {}

    def add(self, events: Events) -> None:
        self.n_events += len(events)
        n_obj = ak.to_numpy(ak.num(events.objects))
        self.n_empty += int((n_obj == 0).sum())
        trunc = events.info["n_truncated"]
        self.n_truncated_events += int((trunc > 0).sum())
        self.n_truncated_objects += int(trunc.sum())
        self.sum_weights += float(events.info["weight"].sum())
        self.processes.update(events.process.tolist())
        self.ntop.update(int(v) for v in events.info["ntop"])
        flat = ak.flatten(events.objects)
        types = ak.to_numpy(flat["type"])
        for t in np.unique(types):
            name = ObjectType(int(t)).name.lower()
            self.objects[name] += int((types == t).sum())
            self.max_per_event[name] = max(self.max_per_event[name], int(events.count(ObjectType(int(t))).max()))
            rng = self.ranges.setdefault(name, {f: [np.inf, -np.inf] for f in FEATURES})
            sel = types == t
            for f in FEATURES:
                values = ak.to_numpy(flat[f])[sel]
                rng[f] = [min(rng[f][0], float(values.min())), max(rng[f][1], float(values.max()))]

    def as_dict(self) -> dict:
        return {"events": self.n_events, "events_without_objects": self.n_empty,
                "sum_of_weights": self.sum_weights,
                "truncated": {"events": self.n_truncated_events, "objects": self.n_truncated_objects},
                "objects": dict(self.objects), "max_per_event": dict(self.max_per_event),
                "mean_per_event": {k: v / max(self.n_events, 1) for k, v in self.objects.items()},
                "processes": {k or "(unknown)": v for k, v in self.processes.items()},
                "ntop": {f"{k}t" if k >= 0 else "unknown": v for k, v in sorted(self.ntop.items())},
                "ranges": self.ranges}


def format_summary(path: str | Path, fmt: str, d: dict) -> str:
    lines = [f"file      {path}", f"format    {fmt}", f"events    {d['events']}  "
             f"(sum of weights {d['sum_of_weights']:.6g}; {d['events_without_objects']} without objects)",
             f"truncated {d['truncated']['objects']} objects beyond the caps in {d['truncated']['events']} events",
             "processes " + ", ".join(f"{k}: {v}" for k, v in d["processes"].items()),
             "classes   " + ", ".join(f"{k}: {v}" for k, v in d["ntop"].items()),
             "", f"{'object':<12}{'total':>10}{'mean/ev':>9}{'max/ev':>8}  " +
             "  ".join(f"{f + ' range':>22}" for f in FEATURES)]
    for name, total in d["objects"].items():
        r = d["ranges"][name]
        lines.append(f"{name:<12}{total:>10}{d['mean_per_event'][name]:>9.2f}{d['max_per_event'][name]:>8}  " +
                     "  ".join(f"[{r[f][0]:>9.3g}, {r[f][1]:>9.3g}]" for f in FEATURES))
    return "\n".join(lines)


def format_report(report: dict) -> str:
    """The reader's report (b-tagger, selection cutflow, repaired values) as text."""
    lines = []
    for coll, b in report.get("btag", {}).items():
        if b["branch"] is None:
            lines.append(f"b-tag     {coll}: no tagger with real scores; every jet untagged")
        else:
            point = f"{b['point']} " if b["point"] else ""
            era = f", era {b['era']} ({b['era_from']})" if b["era"] else ""
            lines.append(f"b-tag     {coll}: {b['branch']} >= {b['working_point']:g} ({point}working point{era}); "
                         f"{b['jets_without_score']} jets without a score (placeholder values) read as untagged, "
                         "b-tag 0")
        for branch, why in b["skipped"].items():
            lines.append(f"          skipped {branch}: {why}")
    sel = report.get("selection")
    if sel:
        lines.append(f"selection {sel['name']}" + (f": {sel['description']}" if sel.get("description") else "") +
                     (f" ({sel['why']})" if sel.get("why") else ""))
        if sel.get("btag_reference") is not None:
            lines.append(f"          b-tag scores rescaled so the working point lands on {sel['btag_reference']:g}")
        for coll, flow in sel.get("cutflow", {}).items():
            steps = ", ".join(f"{label}: -{n}" for label, n in flow["removed"].items())
            lines.append(f"          {coll:<9} {flow['read']} read, {steps}; {flow['kept']} kept")
            for label, why in flow["not applied"].items():
                lines.append(f"          {'':<9} not applied: {label} ({why})")
    bad = report.get("bad_kinematics")
    if bad and bad["values"]:
        lines.append("repaired  " + ", ".join(f"{k}: {v}" for k, v in bad["values"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from events.io import count_events, detect_format, open_events
    from events.options import add_read_arguments, read_options
    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m events.info",
                                     description="Summarize an event file: format, number of events, objects "
                                                 "per type, feature ranges, truncations, processes.")
    parser.add_argument("file", type=as_path, help="ROOT (NanoAOD, Delphes, JetClass, flat) or HDF5 event file")
    parser.add_argument("--format", default="auto", help="auto (default), hdf5, a built-in schema name or a YAML path")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--step-size", type=positive_int, default=100_000, help="events per chunk (default 100000)")
    for cap, default in vars(Caps()).items():
        parser.add_argument(f"--max-{cap}", type=nonnegative_int, default=None, help=f"cap on {cap} per event (default {default})")
    add_read_arguments(parser)
    args = parser.parse_args(argv)
    fmt = detect_format(args.file) if args.format == "auto" else args.format
    caps = {k: getattr(args, f"max_{k}") for k in vars(Caps())}
    caps = Caps(**{k: v for k, v in caps.items() if v is not None}) if any(v is not None for v in caps.values()) \
        else None
    summary = Summary()
    total = count_events(args.file, fmt)
    with open_events(args.file, fmt, caps=caps, options=read_options(args)) as reader, \
            tqdm(total=total, unit="ev", desc="reading", disable=args.json, leave=False) as bar:
        for chunk in reader.iterate(args.step_size):
            summary.add(chunk)
            bar.update(len(chunk))
        report = reader.report()
    d = summary.as_dict()
    if args.json:
        print(json.dumps({"file": str(args.file), "format": fmt, **d, "reading": report}, indent=2))
    else:
        print(format_summary(args.file, fmt, d))
        if report:
            print("\n" + format_report(report))
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m events.info")
