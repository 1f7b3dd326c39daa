"""Peak memory of anomaly scoring and tokenizing as the input grows: streaming keeps it flat.

    python benchmarks/streaming_memory.py --backbone runs/demo/backbone --tokenizer runs/demo/tokenizer \
        --input runs/demo/data/ttbar.h5 --factors 1 10 --step-size 5000

The input is repeated `factor` times into one HDF5 file (event ids made unique); each command runs in
its own process and its peak resident memory (ru_maxrss) is recorded. Writes
benchmarks/results/streaming_memory_<tag>.json and prints a markdown table.

Without a trained run, --random scores random sequences with a randomly initialized backbone of a
config's size (its model section, e.g. configs/backbone/event.yaml) over --codes codes, each method in a
process of its own, timed from after the model is built:

    python benchmarks/streaming_memory.py --random configs/backbone/event.yaml --codes 8192 \
        --events 2048 --batch-size 512 --methods nll density masked --tag random-event_cpu \
        --baseline /tmp/before --baseline-label "before (1c31060, full logits)" --label "after (sliced head)"

--baseline DIR measures the same with the code of another checkout (e.g. `git archive COMMIT | tar -x
-C DIR`) as well: rows of both, each with its `code` (--baseline-label, --label), in one table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def repeated(base: Path, factor: int, out: Path, step_size: int) -> int:
    """Write `base` `factor` times into `out`, streaming; the number of events written."""
    from events.io import iter_events
    from events.io import open_writer

    with open_writer(out) as writer:
        for k in range(factor):
            for chunk in iter_events(base, step_size=step_size):
                chunk.info["event"] = chunk.info["event"] + k * 10**9
                writer.write(chunk)
    return writer.n_events


def peak_rss_mib(cmd: list[str]) -> tuple[float, float]:
    """(peak resident memory of `cmd`'s process in MiB, seconds), measured by a fresh wrapper process."""
    probe = ("import resource, subprocess, sys, json, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t]))")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=REPO, check=True, capture_output=True, text=True)
    kib, seconds = json.loads(out.stdout)
    return kib / 1024, seconds


#: object multiplicities of the random events: MET plus Poisson(9) others, at most 20 (the event mode's
#: caps: 12 jets, 4 leptons, 4 photons), about ttbar's
RANDOM_OBJECTS = (9, 20)
#: process tokens in the random backbone's vocabulary (a conditional event backbone's: 8,192 codes + 4
#: specials + 4 processes = 8,200 tokens)
RANDOM_PROCESSES = ("ttbar", "wjets", "zjets", "diboson")


def random_backbone(config: Path, n_codes: int, seed: int = 0):
    """A randomly initialized conditional backbone of `config`'s model size over `n_codes` codes, with its
    density head (where the config has one) told random code types."""
    import yaml
    import torch

    from backbone.config import GPTConfig
    from backbone.model import GPT
    from backbone.vocab import Vocab
    from events.model import Caps
    from tokenizer.features import FEATURES, TYPES

    m = yaml.safe_load(Path(config).read_text())["model"]
    caps = Caps()
    block = caps.jets + caps.leptons + caps.photons + 1 + 3  # BOS, process, objects, EOS
    density = int(m.get("density_components", 0))
    torch.manual_seed(seed)
    gpt = GPTConfig(vocab_size=Vocab(n_codes, RANDOM_PROCESSES).size, block_size=block, n_layer=m["n_layer"],
                    n_head=m["n_head"], n_embd=m["n_embd"], n_codes=n_codes, density_components=density,
                    density_mode="event" if density else "")
    model = GPT(gpt).eval()
    if density:
        types = np.random.default_rng(seed).choice([int(t) for t in TYPES["event"]], n_codes).tolist()
        n = len(FEATURES["event"])
        model.density.set_tokenizer(types, np.zeros(n), np.ones(n))
    return model


def random_sequences(n_events: int, n_codes: int, block_size: int, seed: int = 0):
    """`n_events` unlabelled event-mode sequences of random codes and features (see RANDOM_OBJECTS)."""
    import awkward as ak

    from backbone.vocab import Vocab
    from finetune.data import unlabelled_sequences
    from tokenizer.features import FEATURES
    from tokenizer.tokenizer import TokenBatch

    rng = np.random.default_rng(seed)
    mean, most = RANDOM_OBJECTS
    counts = 1 + np.minimum(rng.poisson(mean, n_events), most)
    ids = rng.integers(0, n_codes, counts.sum()).astype(np.int32)
    features = rng.standard_normal((counts.sum(), len(FEATURES["event"]))).astype(np.float32)
    batch = TokenBatch(ak.unflatten(ids, counts), {"process": np.full(n_events, -1)}, (),
                       ak.unflatten(features, counts))
    return unlabelled_sequences([batch], Vocab(n_codes), True, block_size, "random")


def score_random(args) -> None:
    """(child process) Score random events with method `args.child`; print peak RSS, RSS before scoring
    and seconds as JSON."""
    import resource

    import torch

    from finetune import scores

    model = random_backbone(args.random, args.codes)
    seqs = random_sequences(args.events, args.codes, model.config.block_size)
    score = {"nll": scores.nll_scores, "density": scores.density_scores,
             "masked": lambda *a, **k: scores.masked_scores(*a, n_masks=args.n_masks, **k)}[args.child]
    before = _rss_mib()
    t = time.perf_counter()
    score(model, seqs, torch.device("cpu"), batch_size=args.batch_size)
    seconds = time.perf_counter() - t
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_before_mib": before, "seconds": seconds, "scores": scores.__file__,
                      "tokens": int(seqs.lengths.sum()), "threads": torch.get_num_threads()}))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main_random(args) -> None:
    """Each method of `args.methods` scored in a fresh process, with this checkout's code and, with
    --baseline, the baseline's."""
    import torch

    model = random_backbone(args.random, args.codes)
    codes = ([(args.baseline_label, args.baseline)] if args.baseline else []) + [(args.label, REPO)]
    rows = []
    for method in args.methods:
        for label, tree in codes:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--random", str(Path(args.random).resolve()),
                   "--codes", str(args.codes), "--events", str(args.events), "--batch-size", str(args.batch_size),
                   "--n-masks", str(args.n_masks), "--child", method]
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
            out = subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.splitlines()[-1])
            rows.append({"command": f"score {method}", "code": label, "factor": 1, "events": args.events,
                         "peak_rss_mib": round(r["peak_rss_mib"], 1), "rss_before_mib": round(r["rss_before_mib"], 1),
                         "seconds": round(r["seconds"], 2), "events_per_s": round(args.events / r["seconds"], 1),
                         "tokens": r["tokens"], "threads": r["threads"], "scores_module": r["scores"]})
            print(json.dumps(rows[-1]), flush=True)
    c = model.config
    result = {"tag": args.tag, "date": str(date.today()), "host": platform.node(), "cpu_count": _cores(),
              "step_size": args.batch_size, "batch_size": args.batch_size, "methods": args.methods,
              "n_masks": args.n_masks, "input": f"{args.events} random events, objects {RANDOM_OBJECTS}",
              "backbone": f"random: {args.random}", "random_backbone": {
                  "config": str(args.random), "n_codes": args.codes, "vocab_size": c.vocab_size,
                  "n_layer": c.n_layer, "n_head": c.n_head, "n_embd": c.n_embd,
                  "density_components": c.density_components, "torch": torch.__version__},
              "baseline": str(args.baseline) if args.baseline else None,
              "rows": rows, "time": time.strftime("%H:%M:%S")}
    out = REPO / "benchmarks" / "results" / f"streaming_memory_{args.tag}.json"
    out.write_text(json.dumps(result, indent=2))
    print("\n| method | code | peak RSS (MiB) | above the loaded model (MiB) | events/s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['command']} | {r['code']} | "
              f"{r['peak_rss_mib']:.0f} | {r['peak_rss_mib'] - r['rss_before_mib']:.0f} | {r['events_per_s']:,.0f} |")
    print(f"\nwritten to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", type=Path)
    parser.add_argument("--tokenizer", type=Path)
    parser.add_argument("--input", type=Path, help="base event file, repeated")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--step-size", type=int, default=5000, help="events per streamed chunk")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="default: nll masked quantization; with --random: nll density masked")
    parser.add_argument("--tag", default="cpu")
    random = parser.add_argument_group("random backbone (no trained run needed)")
    random.add_argument("--random", type=Path, metavar="CONFIG", help="a backbone config whose model size to use")
    random.add_argument("--codes", type=int, default=8192, help="tokenizer codes")
    random.add_argument("--events", type=int, default=2048)
    random.add_argument("--batch-size", type=int, default=512)
    random.add_argument("--n-masks", type=int, default=8, help="method masked: maskings per event")
    random.add_argument("--baseline", type=Path, metavar="DIR", help="also measure the code of this checkout")
    random.add_argument("--baseline-label", default="baseline", help="its name in the table")
    random.add_argument("--label", default="this checkout", help="the name of this checkout's code in the table")
    random.add_argument("--child", choices=("nll", "density", "masked"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.random:
        args.methods = args.methods or ["nll", "density", "masked"]
        return score_random(args) if args.child else main_random(args)
    if not (args.backbone and args.tokenizer and args.input):
        parser.error("give --backbone, --tokenizer and --input (or --random CONFIG)")
    args.methods = args.methods or ["nll", "masked", "quantization"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors:
            path = Path(tmp) / f"x{factor}.h5"
            n = repeated(args.input, factor, path, args.step_size)
            score = [sys.executable, "-m", "finetune.anomaly", "score", "--backbone", str(args.backbone),
                     "--tokenizer", str(args.tokenizer), "--input", str(path), "--out", str(Path(tmp) / "s.h5"),
                     "--method", *args.methods, "--step-size", str(args.step_size), "--device", "cpu", "--quiet"]
            tokenize = [sys.executable, "-m", "tokenizer.tokenize", "--tokenizer", str(args.tokenizer), "--input",
                        str(path), "--out", str(Path(tmp) / "t.h5"), "--step-size", str(args.step_size),
                        "--device", "cpu"]
            for name, cmd in (("score", score), ("tokenize", tokenize)):
                mib, seconds = peak_rss_mib(cmd)
                rows.append({"command": name, "factor": factor, "events": n, "peak_rss_mib": round(mib, 1),
                             "seconds": round(seconds, 1), "events_per_s": round(n / seconds, 1)})
                print(json.dumps(rows[-1]), flush=True)
    result = {"tag": args.tag, "date": str(date.today()), "host": platform.node(), "cpu_count": _cores(),
              "step_size": args.step_size, "methods": args.methods, "input": str(args.input),
              "backbone": str(args.backbone), "rows": rows, "time": time.strftime("%H:%M:%S")}
    out = REPO / "benchmarks" / "results" / f"streaming_memory_{args.tag}.json"
    out.write_text(json.dumps(result, indent=2))
    print("\n| command | events | peak RSS (MiB) | events/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['command']} | {r['events']:,} | {r['peak_rss_mib']:.0f} | {r['events_per_s']:,.0f} |")
    print(f"\nwritten to {out}")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    main()
