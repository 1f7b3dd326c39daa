"""python sample.py: generate synthetic events with a pretrained backbone and write them as event files.

    python sample.py --backbone runs/backbone/event --tokenizer runs/tokenizer/event --events 100000 \
        --out synthetic.h5 --process ttbar --temperature 1.0 --top-k 0 --seed 1 --batch-size 4096

Batched autoregressive sampling with a preallocated KV cache, constrained by the data model's grammar
(object groups in canonical order; in event mode one MET, last), so every sequence decodes to a valid
event. With a density head (the default where the backbone has one, `--decode continuous`), each
object's features are drawn from the head right after its token, so that kinematics are not limited
to the code centroids; `--decode centroid` decodes each token to its code's centroid. Decoded objects
are put in canonical order with the multiplicity caps (cuts are counted), and drawn features are
clamped to physical ranges (|eta| <= 5, b-tag in [0, 1]; also counted).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import awkward as ak
import numpy as np
import torch

from common.cli import UserError, check_output, device_name, nonnegative_float, nonnegative_int, positive_int, run_cli


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from backbone.generate import generate
    from backbone.grammar import Grammar
    from backbone.io import check_pair, load_backbone
    from events.io import open_writer
    from events.model import Caps
    from tokenizer.tokenizer import TokenBatch, Tokenizer
    from common.runtime import resolve_device

    parser = argparse.ArgumentParser(prog="python sample.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", required=True, type=Path, help="backbone folder (backbone.pretrain)")
    parser.add_argument("--tokenizer", required=True, type=Path, help="the tokenizer the backbone was trained with")
    parser.add_argument("--events", required=True, type=positive_int, help="number of events to generate")
    parser.add_argument("--out", required=True, type=Path, help="output file: .h5 or .root")
    parser.add_argument("--process", help="process to generate (conditional backbones; see its config)")
    parser.add_argument("--temperature", type=nonnegative_float, default=1.0, help="sampling temperature (0: greedy)")
    parser.add_argument("--top-k", type=nonnegative_int, default=0, help="sample from the k most likely tokens (0: all)")
    parser.add_argument("--seed", type=nonnegative_int, default=1, help="random seed; same seed, same events")
    parser.add_argument("--batch-size", type=positive_int, default=4096, help="sequences generated at once")
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu or cuda")
    parser.add_argument("--decode", choices=("continuous", "centroid"),
                        help="object kinematics drawn from the density head (continuous; the default where the "
                             "backbone has one) or each code's centroid")
    args = parser.parse_args(argv)
    check_output(args.out, [args.backbone, args.tokenizer])
    device = resolve_device(args.device)
    model, vocab, config = load_backbone(args.backbone, device)
    if device.type == "cuda":
        model = model.to(torch.bfloat16)  # sampling is memory-bound: half the bytes per step
    tokenizer = Tokenizer.from_pretrained(args.tokenizer, device=str(device))
    check_pair(config, tokenizer, args.backbone, args.tokenizer)
    continuous = (args.decode or ("continuous" if model.config.density_components else "centroid")) == "continuous"
    if continuous and not model.config.density_components:
        raise UserError(f"{args.backbone} has no density head: use --decode centroid")
    centroids = torch.from_numpy(tokenizer.code_features()).to(device) if continuous else None
    prompt = [vocab.bos]
    if args.process and args.process not in vocab.processes:
        known = f"one of {list(vocab.processes)}" if config["conditional"] else "none (it is unconditional)"
        raise UserError(f"{args.backbone} was not trained on process {args.process!r}: give {known}")
    if config["conditional"]:
        if args.process:
            prompt.append(vocab.process_token(args.process))
        elif config["train_config"]["train"].get("process_dropout", 0) > 0:
            prompt.append(vocab.mask)  # the process left unknown: events of the pretraining mixture
        else:
            raise UserError(f"this backbone is conditional: give --process, one of {list(vocab.processes)}")
    elif args.process:
        raise UserError("this backbone was trained without process tokens: drop --process")
    generator = torch.Generator(device=device).manual_seed(args.seed)
    caps = Caps()
    start, unfinished, clamped = time.perf_counter(), 0, 0
    with open_writer(args.out) as writer, tqdm(total=args.events, unit="ev", desc="sampling") as bar:
        while writer.n_events < args.events:
            n = min(args.batch_size, args.events - writer.n_events)
            p = torch.tensor([prompt] * n, device=device)
            budget = model.config.block_size - len(prompt)
            out = generate(model, p, budget, temperature=args.temperature,
                           top_k=args.top_k or None, eos_id=vocab.eos, pad_id=vocab.pad, generator=generator,
                           grammar=Grammar(vocab, tokenizer, n, device, max_new=budget, caps=caps), density=continuous)
            seqs, drawn = out if continuous else (out, None)
            seqs = seqs[:, len(prompt):].cpu().numpy()
            is_code = seqs < vocab.n_codes
            # codes up to the first non-code (EOS or padding) form the event
            lengths = np.where(is_code.all(axis=1), seqs.shape[1], (~is_code).argmax(axis=1))
            unfinished += int(is_code.all(axis=1).sum())
            kept = np.arange(seqs.shape[1])[None, :] < lengths[:, None]
            ids = ak.unflatten(seqs[kept], lengths)
            features = None
            if continuous:
                codes = torch.from_numpy(seqs[kept]).to(device)
                x = model.density.from_density(drawn[:, len(prompt):][torch.from_numpy(kept).to(device)].float(),
                                               centroids[codes], model.density.code_mask[codes])
                x, n_clamped = model.density.clamp(x, model.density.code_mask[codes])
                clamped += n_clamped
                features = ak.unflatten(x.cpu().numpy(), lengths)
            first = writer.n_events
            info = {"run": np.full(n, args.seed), "event": np.arange(first, first + n),
                    "process": np.zeros(n) if args.process else np.full(n, -1)}
            events = tokenizer.decode(TokenBatch(ids, info, (args.process,) if args.process else (), features))
            writer.write(events.recap(caps))
            bar.update(n)
    seconds = time.perf_counter() - start
    print(f"wrote {args.events} events to {args.out} in {seconds:.1f} s ({args.events / seconds:,.0f} events/s on "
          f"{device}, {'continuous' if continuous else 'centroid'} decoding); {unfinished} reached the length "
          f"limit without an end token" + (f"; {clamped} objects clamped to physical ranges" if continuous else ""))
    return 0


if __name__ == "__main__":
    run_cli(main, "python sample.py")
