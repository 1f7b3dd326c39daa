"""Package a trained tokenizer and backbone as a bundled model: weights (the backbone in fp16 where the
held-out metrics do not move), the held-out metrics, the check values the tests reproduce, and the
model card.

    python -m benchmarks.bundle_model --tokenizer runs/bundled/tokenizer --backbone runs/bundled/backbone \
        --data data/bundled --background ttbar wjets ... --signals zprime_ttbar ... --out models/event-small

(benchmarks/train_bundled.sh runs it after training.) The check: a fixed Pythia sample (`CHECK`), scored
with the default methods; tests/test_bundled_model.py generates it again and must find the same means.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

#: the fixed sample the recorded check values are of: Pythia's events are the same for the same seed
CHECK = {"process": "ttbar", "events": 300, "seed": 7, "block_size": 150}
#: fp16 weights are kept where no held-out loss moves by more than this (nats per token or object)
FP16_TOLERANCE = 1e-3
MAX_BYTES = 10 * 2**20


def held_out_losses(model, test) -> dict:
    """Next-token, masked-token and density losses per target on the held-out store."""
    from contextlib import nullcontext

    from backbone.config import TrainSection
    from backbone.pretrain import evaluate

    return evaluate(model, test, np.arange(len(test)), TrainSection(batch_size=512), "cpu", nullcontext())


def check_values(backbone: str | Path, tokenizer: str | Path) -> dict:
    """The default scores' means on the fixed sample `CHECK`."""
    from events.model import Events
    from events.pythia import GenerateConfig, generate
    from finetune.scorer import AnomalyScorer

    events = Events.concatenate(generate(CHECK["process"], CHECK["events"], seed=CHECK["seed"], progress=False,
                                         config=GenerateConfig(block_size=CHECK["block_size"])))
    scores = AnomalyScorer.from_pretrained(backbone, tokenizer, device="cpu").score(events)
    return {**CHECK, "means": {k: float(np.nanmean(v)) for k, v in scores.items()
                               if k in ("density_nll", "surprise", "nll", "masked", "quantization")}}


def efficiency(result: dict | None, name: str) -> str:
    """The card's 0t..4t table: mean one-vs-rest AUC per number of labelled events and mode."""
    if not result:
        return (f"The 0t..4t data-efficiency table is not measured for this model (`python -m "
                f"finetune.data_efficiency --backbone {name} ...` makes it).")
    rows = result["rows"]
    sizes, modes = sorted({r["n_train"] for r in rows}), list(dict.fromkeys(r["mode"] for r in rows))
    auc = {(r["n_train"], r["mode"]): r["mean_auc"] for r in rows}
    lines = [f"| {n:,} | " + " | ".join(f"{auc[n, m]:.3f}" if (n, m) in auc else "" for m in modes) + " |"
             for n in sizes]
    return ("Fine-tuned to 0t..4t (the number of top quarks: WW and W+jets; single top; ttbar; ttt; tttt), mean\n"
            "one-vs-rest ROC AUC on held-out events against the number of labelled training events (seed 0;\n"
            "`python -m finetune.data_efficiency --backbone " + name + " ...`; scratch: the same architecture\n"
            "re-initialized):\n\n| labelled events | " + " | ".join(modes) + " |\n|---|" + "---|" * len(modes) + "\n"
            + "\n".join(lines))


def card(name: str, record: dict) -> str:
    """MODEL_CARD.md: what the model is, what it was trained on, how well it does and where it stops."""
    t, m = record["training"], record["metrics"]
    rows = "\n".join(f"| {p} | {n:,} |" for p, n in t["events"].items())
    table = record["anomaly"]
    signal_rows, wins = [], 0
    for signal, by_bkg in table["signals"].items():
        mix = by_bkg["SM mix"]
        best = max(table["references"], key=lambda r: mix[r]["auc"])
        wins += mix["density_nll"]["auc"] > mix[best]["auc"]
        signal_rows.append(f"| {signal} | {mix['density_nll']['auc']:.3f} | {mix['nll']['auc']:.3f} | "
                           f"{mix['masked']['auc']:.3f} | {best} {mix[best]['auc']:.3f} |")
    likelihood = m["likelihood"]
    return f"""# {name}

The bundled pretrained model of colliderfm {record['version']}: an event-mode tokenizer (each jet, b-jet,
electron, muon, photon and MET one of {record['sizes']['codes']:,} codes) and a GPT backbone over the token
sequences with the continuous density head, pretrained on next- and masked-token prediction. Use it by
name: `AnomalyScorer.from_pretrained("{name}")`, `GPT.from_pretrained("{name}")`,
`Tokenizer.from_pretrained("{name}")`, `--backbone {name}` (and `--tokenizer {name}`, or nothing: a
bundled backbone brings its own) on every command; `finetune.anomaly score` uses it when no model is named.

## Training data

Simulation only: Pythia 8.317 at 13 TeV, reconstructed by the built-in detector model (`events.reco`:
anti-kt 0.4 jets with pt > 20 GeV and |eta| < 2.5, b-tagging at the simulation's working point 0.2783,
isolated electrons and muons with pt > 10 GeV, photons with pt > 15 GeV, MET), multiplicity caps of the
data model. Standard Model processes, seed 1:

| process | events |
|---|---|
{rows}

Held out: {t['held_out_per_process']:,} events of each process with seed 2 (the metrics below), and signals the
model never saw.

## Sizes

Tokenizer: {record['sizes']['tokenizer_parameters']:,} parameters, {record['sizes']['codes']:,} codes. Backbone:
{record['sizes']['backbone_parameters']:,} parameters ({record['sizes']['backbone']}), density head of
{record['sizes']['density_components']} components, {t['steps']:,} steps of batch {t['batch_size']}
(`configs/backbone/event-cpu.yaml`). Weights: backbone in {record['weights']['backbone_dtype']}, tokenizer in
float32, {record['weights']['bytes'] / 2**20:.1f} MB in all; their SHA-256 is in each folder's config.json
and checked at every load.

## Held-out metrics

| | value |
|---|---|
| next-token loss (nats per token) | {m['val_loss_next']:.4f} |
| masked-token loss (nats per masked token) | {m['val_loss_masked']:.4f} |
| density head loss (nats per object, head coordinates) | {m['val_loss_density']:.4f} |
| per-object log-density, density head (stated space) | {likelihood['head']:.3f} |
| per-object log-density, per-code Gaussian fitted on training objects | {likelihood['per_code_gaussian']:.3f} |

fp32 against the stored {record['weights']['backbone_dtype']} weights: the largest change of a held-out loss
was {record['weights']['fp16_largest_change']:.2e} nats.

Anomaly scores of signals the model never saw, ROC AUC against the held-out SM mix (in the training mix's
proportions), beside the best one-variable cut on the same events (HT, leading jet, leading lepton, MET,
jet, b-jet, lepton and object counts):

| signal | density_nll | nll | masked | best cut |
|---|---|---|---|---|
{chr(10).join(signal_rows)}

The default score (`density_nll`) beats the best cut on {wins} of {len(signal_rows)} signals: where a signal is
defined by one variable, that variable's cut is still the stronger test.

{efficiency(record.get("data_efficiency"), name)}

## Known limits

- Simulation only, with the built-in detector model: real data differs in jet energy scale and resolution,
  pileup, trigger and efficiencies. Real files need the object selection that matches the simulation
  (`--selection auto`, the default, applies each branch map's `reco` selection) and their era's b-tag
  working points (`--era`, from the run numbers by default).
- A CPU-size model ({record['sizes']['backbone']}); the reference size (8 x 512) needs a GPU.
- The default score grows with the number of objects (see docs/results.md): compare events of like
  multiplicity, or use `surprise`.

Licence: MIT, as the code. Made by `bash benchmarks/train_bundled.sh` on {record['date']}
({record['machine']}).
"""


def main(argv: list[str] | None = None) -> int:
    from backbone.data import TokenSequences
    from backbone.likelihood import compare
    from backbone.model import GPT
    from benchmarks.anomaly_table import table
    from finetune.scorer import AnomalyScorer
    from tokenizer.tokenizer import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--backbone", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="folder of PROCESS_s1.h5 and PROCESS_s2.h5")
    parser.add_argument("--background", nargs="+", required=True)
    parser.add_argument("--signals", nargs="+", required=True)
    parser.add_argument("--out", required=True, type=Path, help="the bundled model's folder (models/NAME)")
    parser.add_argument("--work", required=True, type=Path, help="scratch folder (score files)")
    parser.add_argument("--data-efficiency", type=Path, help="finetune.data_efficiency's JSON, for the card")
    args = parser.parse_args(argv)
    name = args.out.name
    model = GPT.from_pretrained(args.backbone)
    train_config = model.pretrained_config["train_config"]
    test_store = args.backbone.parent / "test_tokens.h5"
    train = TokenSequences.from_store(args.backbone.parent / "tokens.h5", model.conditional, model.vocab)
    test = TokenSequences.from_store(test_store, model.conditional, model.vocab)
    fp32 = held_out_losses(model, test)

    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.tokenizer, args.out / "tokenizer",
                    ignore=lambda folder, names: [n for n in names if n not in ("config.json", "model.safetensors")])
    half = GPT.from_pretrained(args.backbone).half()
    half.save_pretrained(args.out / "backbone", train_config, metrics=model.pretrained_config.get("metrics", {}))
    stored = GPT.from_pretrained(args.out / "backbone")  # fp16 weights, loaded into fp32
    losses = held_out_losses(stored, test)
    largest = max(abs(losses[k] - fp32[k]) for k in fp32 if k.startswith("val_loss"))
    dtype = "float16"
    if largest > FP16_TOLERANCE:
        model.save_pretrained(args.out / "backbone", train_config, metrics=model.pretrained_config.get("metrics", {}))
        stored, losses, dtype = GPT.from_pretrained(args.out / "backbone"), fp32, "float32"
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    if size > MAX_BYTES:
        raise SystemExit(f"{args.out}: {size / 2**20:.1f} MB, more than the {MAX_BYTES / 2**20:.0f} MB a package carries")

    scorer = AnomalyScorer.from_pretrained(args.out / "backbone", args.out / "tokenizer", device="cpu")
    scores = args.work / "scores"
    scores.mkdir(parents=True, exist_ok=True)
    for process in [*args.background, *args.signals]:
        scorer.score_file(args.data / f"{process}_s2.h5", scores / f"{process}_s2.scores.h5")
    counts = {p: _events_in(args.data / f"{p}_s1.h5") for p in args.background}
    anomaly = table(args.data, scores, list(args.background), list(args.signals), "_s2", counts)
    tokenizer = Tokenizer.from_pretrained(args.out / "tokenizer")
    record = {
        "name": name, "version": _version(), "date": time.strftime("%Y-%m-%d"), "machine": _machine(),
        "training": {"events": counts, "held_out_per_process": len(test) // len(args.background),
                     "steps": train_config["train"]["max_steps"], "batch_size": train_config["train"]["batch_size"]},
        "sizes": {"codes": tokenizer.vocab_size, "tokenizer_parameters": sum(p.numel() for p in tokenizer.model.parameters()),
                  "backbone_parameters": stored.num_params(),
                  "backbone": f"{stored.config.n_layer} x {stored.config.n_embd}",
                  "density_components": stored.config.density_components},
        "weights": {"backbone_dtype": dtype, "bytes": size, "fp16_largest_change": largest},
        "metrics": {**losses, "likelihood": compare(stored, train, test)},
        "anomaly": anomaly,
        "check": check_values(args.out / "backbone", args.out / "tokenizer"),
    }
    if args.data_efficiency:
        record["data_efficiency"] = json.loads(args.data_efficiency.read_text())
    (args.out / "metrics.json").write_text(json.dumps(record, indent=1))
    (args.out / "MODEL_CARD.md").write_text(card(name, record))
    print(json.dumps({k: record[k] for k in ("weights", "check")}, indent=1))
    print(f"wrote {args.out}")
    return 0


def _events_in(path: Path) -> int:
    from events.io import open_events

    with open_events(path) as reader:
        return len(reader)


def _version() -> str:
    from importlib.metadata import version

    return version("colliderfm")


def _machine() -> str:
    import os
    import platform

    return f"{os.cpu_count()} cores, {platform.platform()}, torch {torch.__version__}"


if __name__ == "__main__":
    from common.cli import run_cli

    run_cli(main, "python -m benchmarks.bundle_model")
