"""Tokenizer encode throughput (objects/s) on the CPU and, when present, the GPU.

    python benchmarks/tokenizer_throughput.py --tokenizer runs/demo/tokenizer --input runs/demo/data/ttbar.h5
Writes benchmarks/results/tokenizer_<tag>.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch


def measure(tokenizer, events, batch_size: int, repeats: int = 3) -> float:
    tokenizer.encode(events[:100], batch_size=batch_size)  # warm-up
    if tokenizer.device.type == "cuda":
        torch.cuda.synchronize()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        tokenizer.encode(events, batch_size=batch_size)
        if tokenizer.device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, events.n_objects / (time.perf_counter() - start))
    return best


def main() -> None:
    from events.io import read_events
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4096, 65536, 262144])
    parser.add_argument("--tag", default=platform.node() or "local")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    events = read_events(args.input)
    result = {"date": date.today().isoformat(), "machine": args.tag, "objects": events.n_objects,
              "torch_threads": torch.get_num_threads(), "encode_objects_per_s": {}}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        tok = Tokenizer.from_pretrained(args.tokenizer, device=device)
        name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        result["encode_objects_per_s"][name] = {str(b): round(measure(tok, events, b)) for b in args.batch_sizes}
        print(name, result["encode_objects_per_s"][name])
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"tokenizer_{args.tag}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
