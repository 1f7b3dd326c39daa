"""Backbone speed against Hugging Face GPT-2 of the same size, measured in one run.

Training: tokens/s and model FLOPs utilization of one AdamW step (forward + backward) with bf16
autocast on CUDA, for our GPT (eager, and `torch.compile`) and for `transformers`' GPT2LMHeadModel
(SDPA attention). Sampling: events/s of full-length sequences, our preallocated-KV-cache sampler vs
Hugging Face `generate` on the same weights' architecture. `--scaling` adds how the costs grow: training
step time against sequence length and model size, and sampling events/s against batch size.

    python benchmarks/backbone_throughput.py --scaling                      # reference size: 8 x 512, 130 tokens
    python benchmarks/backbone_throughput.py --small --scaling --device cpu # CPU regression numbers
Writes benchmarks/results/backbone_<tag>.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import torch

from common.runtime import autocast as autocast_for

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def timed(fn, repeats: int, device) -> float:
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def train_step(model, batch, optimizer, autocast, hf: bool):
    def step():
        with autocast:
            if hf:
                loss = model(input_ids=batch, labels=batch).loss
            else:
                _, loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def scaling(small: bool, batch_size: int, vocab: int, device, autocast, repeats: int) -> dict:
    """Training step time (our GPT, eager) against sequence length at the reference size and against model
    size at the reference length, and sampling events/s against batch size at the reference size."""
    from backbone.config import GPTConfig
    from backbone.generate import generate
    from backbone.model import GPT

    ref = (2, 128, 4) if small else (8, 512, 8)
    lengths = (32, 64, 130) if small else (32, 64, 130, 256)
    sizes = ((2, 64, 2), (2, 128, 4), (4, 256, 4)) if small else ((4, 256, 4), (8, 512, 8), (12, 768, 12))
    sample_batches = (16, 64, 256) if small else (256, 1024, 4096)
    out = {"train_vs_seq_len": [], "train_vs_model_size": [], "sample_vs_batch": []}
    measured = {}  # the reference size at 130 tokens stands in both sweeps: timed once

    def step_time(layers, width, heads, T):
        if (layers, width, heads, T) in measured:
            return measured[layers, width, heads, T]
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=vocab, block_size=T, n_layer=layers, n_head=heads, n_embd=width)).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
        batch = torch.randint(0, vocab - 4, (batch_size, T), device=device)
        sec = timed(train_step(model, batch, optimizer, autocast, False), repeats, device)
        measured[layers, width, heads, T] = model, {
            "layers": layers, "width": width, "seq_len": T, "params": model.num_params(),
            "step_ms": round(sec * 1e3, 2), "tokens_per_s": round(batch_size * T / sec)}
        return measured[layers, width, heads, T]

    for T in lengths:
        out["train_vs_seq_len"].append(step_time(*ref, T)[1])
    for size in sizes:
        model, row = step_time(*size, 130)
        out["train_vs_model_size"].append(row)
        if size == ref:
            sampler = model.eval().to(torch.bfloat16 if device.type == "cuda" else torch.float32)
    for n in sample_batches:
        prompt = torch.zeros(n, 1, dtype=torch.long, device=device)
        sec = timed(lambda: generate(sampler, prompt, 129, cuda_graph=device.type == "cuda"), 1, device)
        out["sample_vs_batch"].append({"batch": n, "events_per_s": round(n / sec, 1)})
    for key, rows in out.items():
        for row in rows:
            print(key, row)
    return out


def main() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from backbone.config import GPTConfig
    from backbone.generate import generate
    from backbone.model import GPT

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="2 x 128 model, small batches (CPU)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sample-batch", type=int, default=2048)
    parser.add_argument("--hf-sample-batch", type=int, default=256)
    parser.add_argument("--scaling", action="store_true", help="also: step time vs length and size, sampling vs batch")
    parser.add_argument("--tag", default=platform.node() or "local")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    device = torch.device(args.device)
    layers, width, heads, T, vocab = (2, 128, 4, 130, 8196) if args.small else (8, 512, 8, 130, 8196)
    batch_size = 16 if args.small else args.batch
    torch.manual_seed(0)
    autocast = autocast_for(device)
    batch = torch.randint(0, vocab - 4, (batch_size, T), device=device)
    ours = GPT(GPTConfig(vocab_size=vocab, block_size=T, n_layer=layers, n_head=heads, n_embd=width)).to(device)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=T, n_embd=width, n_layer=layers, n_head=heads,
                                    attn_implementation="sdpa")).to(device)
    n_params = ours.num_params()
    flops_per_token = 6 * n_params + 12 * layers * width * T  # Kaplan et al.: weights + attention
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    repeats = 3 if args.small else 20
    result = {"date": date.today().isoformat(), "machine": args.tag, "device": name,
              "model": {"layers": layers, "width": width, "heads": heads, "seq_len": T, "params": n_params},
              "batch": batch_size, "train": {}, "sample": {}}
    candidates = [("ours (eager)", ours, False), ("huggingface GPT-2 (sdpa)", hf, True)]
    if device.type == "cuda":
        candidates.insert(1, ("ours (torch.compile)", torch.compile(ours), False))
    for label, model, is_hf in candidates:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
        seconds = timed(train_step(model, batch, optimizer, autocast, is_hf), repeats, device)
        tokens_per_s = batch_size * T / seconds
        result["train"][label] = {"tokens_per_s": round(tokens_per_s),
                                  "mfu": round(flops_per_token * tokens_per_s / peak, 3) if peak else None}
        print(f"train {label:<28} {tokens_per_s:>12,.0f} tokens/s", f"MFU {result['train'][label]['mfu']}")
    ref = result["train"]["huggingface GPT-2 (sdpa)"]["tokens_per_s"]
    result["train_speedup_vs_hf"] = {k: round(v["tokens_per_s"] / ref, 2) for k, v in result["train"].items()}

    new = T - 1
    ours.eval()
    hf.eval()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    ours_s, hf_s = ours.to(dtype), hf.to(dtype)
    n_ours = 64 if args.small else args.sample_batch
    n_hf = 16 if args.small else args.hf_sample_batch
    repeats = 1 if args.small else 3
    runs = [("ours (KV cache + CUDA graph)", n_ours, True), ("ours (KV cache, eager steps)", n_ours, False),
            ("ours (KV cache + CUDA graph)", n_hf, True)] if device.type == "cuda" else [("ours (KV cache)", n_ours, False)]
    for label, n, graph in runs:
        prompt = torch.zeros(n, 1, dtype=torch.long, device=device)
        sec = timed(lambda: generate(ours_s, prompt, new, cuda_graph=graph), repeats, device)
        result["sample"][f"{label}, batch {n}"] = {"batch": n, "events_per_s": round(n / sec, 1)}
    hf_prompt = torch.zeros(n_hf, 1, dtype=torch.long, device=device)
    with torch.no_grad():
        sec = timed(lambda: hf_s.generate(hf_prompt, max_new_tokens=new, min_new_tokens=new, do_sample=True, top_k=0,
                                          pad_token_id=vocab - 1), 1, device)
    result["sample"]["huggingface generate"] = {"batch": n_hf, "events_per_s": round(n_hf / sec, 1)}
    best = max(v["events_per_s"] for k, v in result["sample"].items() if k.startswith("ours"))
    same_batch = [v["events_per_s"] for k, v in result["sample"].items() if k.startswith("ours") and v["batch"] == n_hf]
    hf_rate = result["sample"]["huggingface generate"]["events_per_s"]
    result["sample_speedup_vs_hf"] = round(best / hf_rate, 1)
    result["sample_speedup_vs_hf_same_batch"] = round(max(same_batch) / hf_rate, 1) if same_batch else None
    for k, v in result["sample"].items():
        print(f"sample {k:<28} {v['events_per_s']:>10,.1f} events/s (batch {v['batch']}, {T} tokens)")
    if args.scaling:
        result["scaling"] = scaling(args.small, batch_size, vocab, device, autocast, 3 if args.small else 10)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"backbone_{args.tag}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
