"""Read speed of real NanoAOD with and without the object selection, TTree against RNTuple.

    python benchmarks/nanoaod_read_speed.py --real ../shared/data/cms-opendata-2015-ttbar-nanoaod-rntuple.root \
        --repeat 20000 --out benchmarks/results/nanoaod_read_speed.json

The shared real file (10 events) is tiled `--repeat` times into a TTree and an RNTuple holding only the
branches the nanoaod map and its `reco` selection read (real files carry about 1300), then read whole
by `events.io.iter_events`. Prints and saves events/s per layout and selection.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

BRANCHES = ["run", "luminosityBlock", "event", "MET_pt", "MET_phi", "nJet", "Jet_*", "nElectron", "Electron_*",
            "nMuon", "Muon_*", "nPhoton", "Photon_*"]


def tiled(real: Path, repeat: int) -> dict:
    import uproot

    with uproot.open(real) as f:
        arrays = f["Events"].arrays(filter_name=BRANCHES)
    keep = [k for k in arrays.fields if not k.startswith("_") and not k.startswith("n")
            and (arrays[k].ndim == 1 or k.split("_")[0] in ("Jet", "Electron", "Muon", "Photon"))]
    index = np.tile(np.arange(len(arrays)), repeat)
    out = {}
    for coll in ("Jet", "Electron", "Muon", "Photon"):
        fields = [k for k in keep if k.startswith(coll + "_") and arrays[k].ndim > 1]
        out[coll] = ak.zip({k[len(coll) + 1:]: arrays[k][index] for k in fields})
    for k in keep:
        if arrays[k].ndim == 1:
            out[k] = ak.to_numpy(arrays[k])[index]
    out["event"] = np.arange(len(index), dtype=np.uint64) + np.uint64(2**63)
    return out


def write(path: Path, data: dict, rntuple: bool) -> None:
    import uproot

    with uproot.recreate(path) as f:
        if rntuple:  # flat fields, as NanoAOD's RNTuples have them
            flat = {f"{k}_{field}" if isinstance(v, ak.Array) and v.fields else k: v[field] if v.fields else v
                    for k, v in ((k, v if isinstance(v, ak.Array) else ak.Array(v)) for k, v in data.items())
                    for field in (v.fields or [None])}
            f.mkrntuple("Events", flat)
        else:
            types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()}
            f.mktree("Events", types, counter_name=lambda c: f"n{c}", field_name=lambda o, i: f"{o}_{i}").extend(data)


def main(argv: list[str] | None = None) -> int:
    from events.io import iter_events
    from events.options import ReadOptions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", required=True, type=Path)
    parser.add_argument("--repeat", type=int, default=20000, help="times the file is tiled (default 20000)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    data = tiled(args.real, args.repeat)
    n = len(data["event"])
    results = {"events": n}
    with tempfile.TemporaryDirectory() as work:
        for layout in ("TTree", "RNTuple"):
            path = Path(work) / f"{layout}.root"
            try:
                write(path, data, layout == "RNTuple")
            except Exception as err:  # uproot's RNTuple writer is young
                results[layout] = f"not written: {type(err).__name__}: {err}"
                continue
            for selection in ("none", "reco"):
                start = time.perf_counter()
                read = sum(len(c) for c in iter_events(path, "nanoaod", options=ReadOptions(selection=selection,
                                                                                            era="2015")))
                seconds = time.perf_counter() - start
                assert read == n
                results[f"{layout} selection {selection}"] = round(n / seconds)
                print(f"{layout:<8} selection {selection:<5} {n / seconds:>12,.0f} events/s ({n} events)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "benchmarks/nanoaod_read_speed.py")
