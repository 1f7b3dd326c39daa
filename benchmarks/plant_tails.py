"""Standard Model events with one object made extraordinary: what no anomaly score may call ordinary.

    python benchmarks/plant_tails.py data/anom/ttbar_s2.h5 --out data/anom

writes `planted_pt5_s2.h5` (the leading jet at 5x its pt), `planted_eta4_s2.h5` (the leading jet
moved to |eta| = 4, beyond the jet acceptance of 2.5) and `planted_muon_s2.h5` (an extra muon of
800-1000 GeV), each event otherwise the input's, with its id.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import numpy as np

from events.model import GROUP_INDEX_OF_TYPE, GROUPS, Caps, Events, ObjectType as T, assemble

NAMES = {"leading jet pt x5": "planted_pt5", "leading jet at |eta| 4": "planted_eta4",
         "extra 900 GeV muon": "planted_muon"}


def planted(events: Events, seed: int = 0) -> dict[str, Events]:
    """The three variants of `events`, keyed by what was planted."""
    o = events.objects
    is_jet = (o["type"] == int(T.JET)) | (o["type"] == int(T.BJET))
    lead = (ak.local_index(o) == ak.argmax(ak.where(is_jet, o.pt, -1.0), axis=1, keepdims=True)) & is_jet
    out = {"leading jet pt x5": Events(ak.with_field(o, ak.where(lead, o.pt * 5, o.pt), "pt"), events.info,
                                       events.process_names),
           "leading jet at |eta| 4": Events(ak.with_field(o, ak.where(lead, np.sign(o.eta + 1e-3) * 4.0, o.eta),
                                                          "eta"), events.info, events.process_names)}
    rng = np.random.default_rng(seed)
    n = len(events)
    muons = ak.unflatten(ak.zip({
        "type": np.full(n, T.MUON, np.int8), "pt": rng.uniform(800, 1000, n).astype(np.float32),
        "eta": rng.uniform(-2, 2, n).astype(np.float32), "phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        "mass": np.full(n, 0.106, np.float32), "btag": np.zeros(n, np.float32), "charge": np.full(n, -1, np.int8)}),
        np.ones(n, dtype=np.int64))
    # the muon joins the leptons in the data model's canonical order (by pt: it leads them), as a reader
    # would have put it; a lepton beyond the cap is cut and counted
    group = ak.unflatten(np.array([GROUP_INDEX_OF_TYPE[T(int(t))] for t in ak.to_numpy(ak.flatten(o["type"]))], dtype=np.int64),
                         ak.num(o))
    groups = [o[group == i] for i in range(len(GROUPS))]
    with_muon, lost = assemble([*groups, muons], Caps())
    info = {**events.info, "n_truncated": (events.info["n_truncated"] + lost).astype(np.int16)}
    out["extra 900 GeV muon"] = Events(with_muon, info, events.process_names)
    return out


def main(argv: list[str] | None = None) -> int:
    from events.io import read_events, write_events

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="background event file")
    parser.add_argument("--out", required=True, type=Path, help="folder for the planted files")
    parser.add_argument("--suffix", default="_s2", help="file name suffix (default _s2)")
    args = parser.parse_args(argv)
    for name, events in planted(read_events(args.input)).items():
        path = args.out / f"{NAMES[name]}{args.suffix}.h5"
        write_events(events, path)
        print(f"{name}: {len(events)} events -> {path}")
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python benchmarks/plant_tails.py")
