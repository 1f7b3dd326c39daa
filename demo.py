"""The whole pipeline on a small generated sample, on the CPU: `make demo` runs this.

Each stage writes its headline numbers under its own key of runs/demo/summary.json and its plots
beside it. Stages that later issues add (tokenizer, backbone, sample, finetune, anomaly) plug in here.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import awkward as ak
import numpy as np

from common.provenance import record_run
from common.cli import nonnegative_int, positive_int

#: records per process in the demo sample (event mode, then constituent mode)
DEMO_SAMPLE = {"wjets": 800, "single_top_t": 500, "ttbar": 1500, "ttt_proxy": 300, "tttt_proxy": 300}
#: what the tokenizer and the backbone are pretrained on (up to two top quarks); 3 and 4 tops stay unseen
PRETRAIN = ("wjets", "single_top_t", "ttbar")
HELD_OUT = 0.2  # the last fifth of each pretraining sample: background for the anomaly stage
DEMO_JETS = {"top_jets": 300, "qcd_jets": 300}
#: a resonance for the anomaly stage, beside the four tops (never seen in pretraining, not classified)
DEMO_SIGNALS = {"zprime_ttbar": 300}
SHARED_HZZ = Path(__file__).resolve().parent.parent / "shared" / "data" / "cms-hep-tutorial-hzz.root"


def stage_events(out: Path, workers: int, seed: int) -> dict:
    """Generate the demo samples, check the ROOT round trip and the top/W peaks, plot them."""
    from events.io import read_events, write_events
    from events.model import Events, ObjectType
    from events.physics import peak_position, top_candidates
    from events.plots import plot_event_overview, plot_jet_overview
    from events.pythia import GenerateConfig, GenerateStats, generate

    data = out / "data"
    samples, rates = {}, {}
    for process, n in {**DEMO_SAMPLE, **DEMO_SIGNALS, **DEMO_JETS}.items():
        stats = GenerateStats()
        # small blocks so that both workers share even the smallest sample
        events = Events.concatenate(generate(process, n, seed=seed, workers=workers, stats=stats,
                                             config=GenerateConfig(block_size=150)))
        write_events(events, data / f"{process}.h5")
        samples[process] = events
        rates[process] = round(stats.records_per_s_per_core, 1)
    # the same events through NanoAOD-style ROOT and back must be identical, in order
    write_events(samples["ttbar"], data / "ttbar.root")
    back = read_events(data / "ttbar.root")
    identical = ak.to_list(back.objects) == ak.to_list(samples["ttbar"].objects) and \
        all(np.array_equal(back.info[k], samples["ttbar"].info[k]) for k in samples["ttbar"].info)
    tops = top_candidates(samples["ttbar"])
    event_samples = {k: samples[k] for k in DEMO_SAMPLE}
    plot_event_overview(event_samples, out / "events_overview.png")
    plot_jet_overview({k: samples[k] for k in DEMO_JETS}, out / "jets_overview.png")
    summary = {
        "processes": {k: len(v) for k, v in samples.items()},
        "records_per_s_per_core": rates,
        "mean_jets": {k: round(float(v.count(ObjectType.JET, ObjectType.BJET).mean()), 2)
                      for k, v in event_samples.items()},
        "ttbar_m_bjj_peak_gev": peak_position(tops.m_bjj, 50, 400, 10),
        "ttbar_m_jj_peak_gev": peak_position(tops.m_jj, 20, 250, 5),
        "truncated_objects": {k: int(v.info["n_truncated"].sum()) for k, v in samples.items()},
        "root_round_trip_identical": bool(identical),
    }
    if SHARED_HZZ.is_file():
        hzz = read_events(SHARED_HZZ)
        summary["cms_hzz_file"] = {"events": len(hzz), "objects": hzz.n_objects}
    return summary


def stage_tokenizer(out: Path) -> dict:
    """Train the small demo tokenizer on the pretraining samples (runs/demo/tokenizer/)."""
    from common.config import load_config
    from events.io import read_events, write_events
    from events.model import Events
    from tokenizer.config import TokenizerTrainConfig
    from tokenizer.train import run

    train, held_out = [], []
    for p in PRETRAIN:
        events = read_events(out / "data" / f"{p}.h5")
        cut = int(len(events) * (1 - HELD_OUT))
        train.append(events[:cut])
        held_out.append(events[cut:])
    write_events(Events.concatenate(train), out / "data" / "pretrain.h5")
    write_events(Events.concatenate(held_out), out / "data" / "held_out.h5")
    files = [str(out / "data" / "pretrain.h5")]
    cfg = load_config(TokenizerTrainConfig, Path(__file__).parent / "configs" / "tokenizer" / "demo.yaml",
                      [f"data.files={files}", f"out={out / 'tokenizer'}"])
    metrics = run(cfg, progress=False)
    keys = ("codebook_size", "codebook_usage", "perplexity", "pt_rel_resolution", "eta_resolution", "phi_resolution",
            "type_accuracy", "charge_agreement")
    summary = {k: metrics[k] for k in keys}
    summary["autoencoder"] = {k: metrics["autoencoder"][k] for k in keys if k in metrics["autoencoder"]}
    summary["information_loss"] = metrics["information_loss"]
    return summary


def stage_backbone(out: Path) -> dict:
    """Tokenize the pretraining sample and pretrain a small backbone on it (runs/demo/backbone/)."""
    from backbone.config import PretrainConfig
    from backbone.pretrain import run
    from common.config import load_config
    from tokenizer.store import TokenWriter
    from tokenizer.tokenize import tokenize_into
    from tokenizer.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_pretrained(out / "tokenizer")
    with TokenWriter.for_tokenizer(out / "tokens.h5", tokenizer, out / "tokenizer", features=True) as writer:
        tokenize_into(writer, tokenizer, out / "data" / "pretrain.h5", features=True)
    cfg = load_config(PretrainConfig, Path(__file__).parent / "configs" / "backbone" / "demo.yaml",
                      [f"data.train={out / 'tokens.h5'}", f"out={out / 'backbone'}"])
    result = run(cfg, progress=False)
    return {k: result[k] for k in ("val_loss_next", "val_loss_masked", "val_perplexity_next",
                                   "val_perplexity_masked", "tokens_per_s", "steps", "parameters")}


def stage_sample(out: Path, seed: int) -> dict:
    """Generate synthetic ttbar events with the demo backbone (runs/demo/synthetic.h5) and compare."""
    from backbone.model import GPT
    from backbone.sampling import sample_events
    from events.compare import plot, w1_table
    from events.io import read_events, write_events
    from events.model import ObjectType
    from tokenizer.tokenizer import Tokenizer

    n = 1000
    start = time.perf_counter()
    backbone, tokenizer = GPT.from_pretrained(out / "backbone"), Tokenizer.from_pretrained(out / "tokenizer")
    write_events(sample_events(backbone, tokenizer, n, process="ttbar", seed=seed), out / "synthetic.h5")
    seconds = time.perf_counter() - start
    synthetic, real = read_events(out / "synthetic.h5"), read_events(out / "data" / "ttbar.h5")
    jets = (ObjectType.JET, ObjectType.BJET)
    plot(real, synthetic, out / "real_vs_generated.png", ("real", "generated"))
    return {"events": n, "events_per_s": round(n / seconds, 1), "w1_vs_floor": w1_table(real, synthetic),
            "mean_jets": {"real": float(real.count(*jets).mean()), "synthetic": float(synthetic.count(*jets).mean())},
            "mean_bjets": {"real": float(real.count(ObjectType.BJET).mean()),
                           "synthetic": float(synthetic.count(ObjectType.BJET).mean())}}


def stage_finetune(out: Path) -> dict:
    """Head swap: 0t..4t classification (3 and 4 tops unseen in pretraining), frozen, full and from
    scratch, on the same split (runs/demo/finetune_<mode>/)."""
    from dataclasses import replace

    from common.config import load_config
    from finetune.classify import prepare, train_and_test
    from finetune.config import ClassifyConfig
    from tokenizer.tokenizer import Tokenizer

    files = [str(out / "data" / f"{p}.h5") for p in DEMO_SAMPLE]
    cfg = load_config(ClassifyConfig, Path(__file__).parent / "configs" / "finetune" / "demo.yaml",
                      [f"backbone={out / 'backbone'}", f"tokenizer={out / 'tokenizer'}", f"data.train={files}"])
    splits = prepare(cfg, Tokenizer.from_pretrained(out / "tokenizer"))
    summary = {}
    for mode in ("frozen", "full", "scratch"):
        m = train_and_test(replace(cfg, train=replace(cfg.train, mode=mode), out=str(out / f"finetune_{mode}")),
                           splits, progress=False)
        summary[mode] = {"auc": m["auc"], "mean_auc": m["mean_auc"], "accuracy": m["accuracy"]}
    summary["test_events"] = int(len(splits.test.indices))
    return summary


def stage_anomaly(out: Path) -> dict:
    """Score held-out SM events, four-top events and a Z' resonance (never seen in pretraining) with
    every method, the density scores (the default) first; AUC and max SIC per signal and method, beside the
    HT cut (runs/demo/anomaly/)."""
    from common.config import load_config
    from events.io import read_events, write_events
    from events.model import Events
    from finetune.anomaly import compare, split_by_process
    from finetune.classify import prepare, train_and_test
    from finetune.config import ClassifyConfig
    from finetune.plots import plot_anomaly
    from finetune.score_store import read_scores
    from finetune.scorer import AnomalyScorer
    from tokenizer.tokenizer import Tokenizer

    from events.physics import ht

    folder = out / "anomaly"
    signals = ("tttt_proxy", *DEMO_SIGNALS)
    parts = [read_events(out / "data" / "held_out.h5")] + [read_events(out / "data" / f"{s}.h5") for s in signals]
    data = Events.concatenate(parts)
    write_events(data, folder / "data.h5")
    n = len(data)
    # the entropy method's classifier knows the SM processes only
    cfg = load_config(ClassifyConfig, Path(__file__).parent / "configs" / "finetune" / "demo.yaml",
                      [f"backbone={out / 'backbone'}", f"tokenizer={out / 'tokenizer'}", "data.label=process",
                       f"data.train={[str(out / 'data' / 'pretrain.h5')]}", f"out={folder / 'sm_classifier'}",
                       "train.mode=full"])
    train_and_test(cfg, prepare(cfg, Tokenizer.from_pretrained(out / "tokenizer")), progress=False)
    start = time.perf_counter()
    scorer = AnomalyScorer.from_pretrained(out / "backbone", out / "tokenizer",
                                           ["density", "nll", "masked", "quantization", "entropy", "head"],
                                           classifier=folder / "sm_classifier", device="cpu")
    scorer.fit(out / "data" / "pretrain.h5").score_file(folder / "data.h5", folder / "scores.h5")
    seconds = time.perf_counter() - start
    scores = read_scores(folder / "scores.h5")
    scores["HT cut"] = ht(data)
    is_bkg = ~np.isin(scores["process"], signals)
    result = {}
    for signal in signals:
        rows = is_bkg | (scores["process"] == signal)
        metrics, curves = compare(*split_by_process({k: v[rows] for k, v in scores.items()}, signal))
        result[signal] = {c: {"auc": round(m["auc"], 4), "max_sic": round(m["max_sic"], 3)} for c, m in metrics.items()}
        plot_anomaly(curves, out / f"anomaly_roc_sic_{signal}.png")
    return {"signals": result, "background": "held-out " + "+".join(PRETRAIN), "events": n,
            "scoring_events_per_s": round(n / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the whole pipeline on a small generated sample (CPU).")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--workers", type=positive_int, default=2, help="generator worker processes (default 2)")
    parser.add_argument("--seed", type=nonnegative_int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    record_run(args.out, {"out": str(args.out), "workers": args.workers}, args.seed)
    summary_path = args.out / "summary.json"
    summary = {}
    stages = (("events", lambda: stage_events(args.out, args.workers, args.seed)),
              ("tokenizer", lambda: stage_tokenizer(args.out)),
              ("backbone", lambda: stage_backbone(args.out)),
              ("sample", lambda: stage_sample(args.out, args.seed)),
              ("finetune", lambda: stage_finetune(args.out)),
              ("anomaly", lambda: stage_anomaly(args.out)))
    for name, stage in stages:
        start = time.perf_counter()
        print(f"== stage {name}")
        summary[name] = stage()
        summary[name]["seconds"] = round(time.perf_counter() - start, 1)
        summary_path.write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary[name], indent=2))
    print(f"summary: {summary_path}; plots: {', '.join(str(p) for p in sorted(args.out.glob('*.png')))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
