"""python sample.py: generate synthetic events with a pretrained backbone and write them as event files.

    python sample.py --backbone runs/backbone/event --tokenizer runs/tokenizer/event --events 100000 \
        --out synthetic.h5 --process ttbar --temperature 1.0 --top-k 0 --top-p 0.98 --seed 1 --batch-size 4096

A thin caller of backbone.sampling.sample_events (batched sampling with a KV cache, constrained by the
data model's grammar; with a density head, `--decode continuous` by default, each object's features
drawn from the head; `--decode mean`: the head's mean; `--decode centroid`: each code's centroid). Same
seed, same events.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common.cli import (add_model_arguments, check_output, device_name, kept_fraction, nonnegative_float,
                        nonnegative_int, positive_int, resolve_models, run_cli)


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from backbone.model import GPT
    from backbone.sampling import DECODES, TOP_P, SamplingStats, sample_events
    from common.runtime import resolve_device
    from events.io import open_writer
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(prog="python sample.py", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--events", required=True, type=positive_int, help="number of events to generate")
    parser.add_argument("--out", required=True, type=Path, help="output file: .h5 or .root")
    parser.add_argument("--process", help="process to generate (conditional backbones; see its config)")
    parser.add_argument("--temperature", type=nonnegative_float, default=1.0, help="sampling temperature (0: greedy)")
    parser.add_argument("--top-k", type=nonnegative_int, default=0,
                        help="draw each object's code from the k likeliest of its type (0: all)")
    parser.add_argument("--top-p", type=kept_fraction, default=TOP_P,
                        help="draw each object's code from its type's nucleus, the likeliest codes holding this "
                             "share of the type's probability (1: all); which type comes next is never cut "
                             "(default %(default)s)")
    parser.add_argument("--guidance", type=nonnegative_float, default=1.0,
                        help="classifier-free guidance with --process: tokens drawn from p(.|process)^w "
                             "p(.|unknown)^(1-w); 1: the conditional model alone, > 1: further from the mix")
    parser.add_argument("--seed", type=nonnegative_int, default=1, help="random seed; same seed, same events")
    parser.add_argument("--batch-size", type=positive_int, default=4096, help="sequences generated at once")
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu or cuda")
    parser.add_argument("--decode", choices=DECODES,
                        help="object kinematics drawn from the density head (continuous; the default where the "
                             "backbone has one), the head's mean given the event so far (mean: closer pair "
                             "masses, no spread within a code) or each code's centroid")
    args = parser.parse_args(argv)
    resolve_models(args)
    check_output(args.out, [args.backbone, args.tokenizer])
    device = resolve_device(args.device)
    model = GPT.from_pretrained(args.backbone, device)
    if device.type == "cuda":
        model = model.to(torch.bfloat16)  # sampling is memory-bound: half the bytes per step
    tokenizer = Tokenizer.from_pretrained(args.tokenizer, device=str(device))
    stats = SamplingStats()
    batches = sample_events(model, tokenizer, args.events, process=args.process, temperature=args.temperature,
                            top_k=args.top_k, top_p=args.top_p, seed=args.seed, guidance=args.guidance,
                            batch_size=args.batch_size, decode=args.decode, stats=stats)
    start = time.perf_counter()
    with open_writer(args.out) as writer, tqdm(total=args.events, unit="ev", desc="sampling") as bar:
        for events in batches:
            writer.write(events)
            bar.update(len(events))
    seconds = time.perf_counter() - start
    print(f"wrote {args.events} events to {args.out} in {seconds:.1f} s ({args.events / seconds:,.0f} events/s on "
          f"{device}, {stats.decode} decoding); {stats.unfinished} reached the length limit without an end token"
          + (f"; {stats.clamped} objects clamped to physical ranges" if stats.decode != "centroid" else ""))
    return 0


if __name__ == "__main__":
    run_cli(main, "python sample.py")
