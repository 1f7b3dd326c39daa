"""Render benchmark results (benchmarks/results/*.json) as markdown tables into docs/results.md (and the
headline and Dask tables of README.md).

    python benchmarks/report.py            # rewrites the marked sections of both documents
Each table sits between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers; DOCUMENTS says which
document holds which tables. Running it again without new results changes nothing.
"""
from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from events.compare import ratio

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def generate_table() -> str:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("generate_*.json"))]
    runs.sort(key=lambda r: (r["machine"].startswith("cpu"), -r["cpu_cores_used"]))
    processes = list(dict.fromkeys(p for r in runs for p in r["generate"]))
    head = "| process | " + " | ".join(f"{r['machine']} ({r['cpu_cores_used']} workers)" for r in runs) + " |"
    lines = [head, "|---" * (len(runs) + 1) + "|"]
    for proc in processes:
        cells = []
        for r in runs:
            row = r["generate"].get(proc)
            cells.append(f"{row['records_per_s']:.0f} /s ({row['records_per_s_per_core']:.0f} /s/core)" if row else "")
        lines.append(f"| {proc} | " + " | ".join(cells) + " |")
    notes = []
    for r in runs:
        single = r.get("single_process_ttbar_per_s")
        if single:
            notes.append(f"- {r['machine']}, one process, ttbar: ours {single['ours']:.0f} events/s with full "
                         f"reconstruction; a per-event Python particle loop making jets only: "
                         f"{single['python_loop_baseline']:.0f} events/s (ratio {single['ratio']:.2f}).")
        if "read_events_per_s" in r and r["cpu_cores_used"] == max(x["cpu_cores_used"] for x in runs):
            rd = r["read_events_per_s"]
            notes.append(f"- {r['machine']}: reading ttbar back: HDF5 store {rd['hdf5']:,} events/s, "
                         f"NanoAOD-style ROOT {rd['nanoaod_root']:,} events/s.")
    dates = sorted({r["date"] for r in runs})
    return "\n".join(lines + [""] + notes + [f"\n(measured {', '.join(dates)}; "
                                             "`python benchmarks/generate_throughput.py`)"])


def tokenizer_table() -> str:
    """Real-run tokenizer metrics (VQ-VAE vs the quantization-free autoencoder) and encode speed."""
    runs = {mode: json.loads(p.read_text()) for mode in ("event", "constituent")
            if (p := RESULTS / f"tokenizer_real_run_{mode}.json").is_file()}
    rows = [("objects (train / held-out)", lambda m, ae: f"{m['objects']['train']:,} / {m['objects']['val']:,}" if not ae else ""),
            ("codebook usage (held-out)", lambda m, ae: "" if ae else f"{m['codebook_usage']:.1%} of {m['codebook_size']}"),
            ("perplexity", lambda m, ae: "" if ae else f"{m['perplexity']:.0f}"),
            ("pt relative resolution", lambda m, ae: f"{m['pt_rel_resolution']:.4f}"),
            ("eta resolution", lambda m, ae: f"{m['eta_resolution']:.4f}"),
            ("phi resolution", lambda m, ae: f"{m['phi_resolution']:.4f}"),
            ("b-tag score resolution", lambda m, ae: f"{m['btag_resolution']:.4f}" if "btag_resolution" in m else ""),
            ("charge agreement", lambda m, ae: f"{m['charge_agreement']:.4f}" if "charge_agreement" in m else ""),
            ("type accuracy", lambda m, ae: f"{m['type_accuracy']:.4f}")]
    head = "| | " + " | ".join(f"{mode}: VQ-VAE | {mode}: autoencoder" for mode in runs) + " |"
    lines = [head, "|---" * (1 + 2 * len(runs)) + "|"]
    for label, fmt in rows:
        cells = []
        for m in runs.values():
            cells += [fmt(m, False), fmt(m["autoencoder"], True)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for mode, m in runs.items():
        il = m.get("information_loss", {})
        if "auc_original" in il:
            lines.append(f"- information loss, {mode} mode ({il['task']}, {il['events']:,} held-out events, gradient-"
                         f"boosted trees on the leading objects): ROC AUC {il['auc_original']:.4f} on original "
                         f"features, {il['auc_tokenized']:.4f} after tokenize-decode, {il['auc_autoencoder']:.4f} "
                         "through the autoencoder.")
    for p in sorted(RESULTS.glob("tokenizer_*.json")):
        r = json.loads(p.read_text())
        for device, speeds in r.get("encode_objects_per_s", {}).items():
            best = max(speeds.items(), key=lambda kv: kv[1])
            lines.append(f"- encode throughput, {r['machine']}, {device}: {best[1]:,} objects/s (batch {best[0]})")
    return "\n".join(lines)


def encoder_table() -> str:
    """Per-object MLP vs set-transformer encoder on the same data (benchmarks/tokenizer_encoder_comparison.sh)."""
    lines = ["| mode | encoder | held-out objects | best val loss | codebook usage | pt rel. res. | eta res. | phi res. "
             "| AUC original / tokenized | train objects/s (H100) |", "|---" * 10 + "|"]
    for mode in ("event", "constituent"):
        for encoder in ("mlp", "transformer"):
            path = RESULTS / f"encoder_{mode}_{encoder}.json"
            if not path.is_file():
                continue
            m = json.loads(path.read_text())
            il = m["information_loss"]
            lines.append(f"| {mode} | {encoder} | {m['objects']['val']:,} | {min(h['val_loss'] for h in m['history']):.4f} "
                         f"| {m['codebook_usage']:.1%} | {m['pt_rel_resolution']:.3f} | {m['eta_resolution']:.3f} "
                         f"| {m['phi_resolution']:.3f} | {il['auc_original']:.4f} / {il['auc_tokenized']:.4f} "
                         f"| {m['history'][-1]['objects_per_s']:,.0f} |")
    return "\n".join(lines)


def backbone_table() -> str:
    """Training and sampling speed against Hugging Face, from benchmarks/backbone_throughput.py."""
    lines = []
    for p in sorted(RESULTS.glob("backbone_*.json")):
        r = json.loads(p.read_text())
        m = r["model"]
        lines += [f"{r['device']} ({r['machine']}, {r['date']}): {m['layers']} layers x {m['width']}, {m['heads']} heads, "
                  f"{m['seq_len']} tokens, {m['params'] / 1e6:.1f}M parameters, batch {r['batch']}", "",
                  "| training step (bf16 autocast on CUDA) | tokens/s | MFU | vs Hugging Face |", "|---|---|---|---|"]
        for label, v in r["train"].items():
            mfu = f"{v['mfu']:.1%}" if v["mfu"] is not None else "-"
            lines.append(f"| {label} | {v['tokens_per_s']:,} | {mfu} | {r['train_speedup_vs_hf'][label]:.2f}x |")
        lines += ["", "| sampling full-length sequences | batch | events/s |", "|---|---|---|"]
        for label, v in r["sample"].items():
            lines.append(f"| {label.rsplit(', batch', 1)[0]} | {v['batch']} | {v['events_per_s']:,.1f} |")
        same = r.get("sample_speedup_vs_hf_same_batch")
        lines += ["", f"Sampling speed-up over `generate`: {r['sample_speedup_vs_hf']}x"
                      + (f" ({same}x at generate's batch size)." if same else "."), ""]
    return "\n".join(lines).rstrip()


def real_run_table() -> str:
    """Pretraining, generation quality, data efficiency and anomaly detection of the real runs
    (benchmarks/real_run_event.sh), one block per profile."""
    lines = []
    for folder in sorted(RESULTS.glob("real_run_event_*")):
        if not (folder / "pretrain_metrics.json").is_file():
            continue
        pre = json.loads((folder / "pretrain_metrics.json").read_text())
        tok = json.loads((folder / "tokenizer_metrics.json").read_text())
        lines += [f"**{folder.name}** ({pre['device']}, {pre['parameters'] / 1e6:.1f}M parameters, {pre['steps']} steps, "
                  f"{pre['tokens_per_s']:,.0f} tokens/s): tokenizer usage {tok['codebook_usage']:.1%}, perplexity "
                  f"{tok['perplexity']:,.0f}; validation next-token loss {pre['val_loss_next']:.3f} (perplexity "
                  f"{pre['val_perplexity_next']:,.0f}), masked-token loss {pre['val_loss_masked']:.3f} (perplexity "
                  f"{pre['val_perplexity_masked']:,.0f}).", ""]
        if (folder / "w1.json").is_file():
            w1 = json.loads((folder / "w1.json").read_text())
            lines += ["| generated ttbar vs Pythia (seed 2) | W1 | floor W1(real, real) | ratio |", "|---|---|---|---|"]
            for name, row in w1.items():
                lines.append(f"| {name} | {row['w1']:.4g} | {row['floor']:.4g} | {_over_floor(row)} |")
            lines.append("")
        if (folder / "data_efficiency.json").is_file():
            de = json.loads((folder / "data_efficiency.json").read_text())
            modes = list(dict.fromkeys(r["mode"] for r in de["rows"]))
            lines += [f"Mean one-vs-rest AUC over {', '.join(de.get('classes', []))} on {de.get('test_events', '?'):,} "
                      "test events (mean ± spread over seeds):", "",
                      "| labelled events | " + " | ".join(modes) + " |", "|---" * (len(modes) + 1) + "|"]
            for n in sorted({r["n_train"] for r in de["rows"]}):
                cells = []
                for mode in modes:
                    v = [r["mean_auc"] for r in de["rows"] if r["n_train"] == n and r["mode"] == mode]
                    cells.append(f"{sum(v) / len(v):.4f} ± {(max(v) - min(v)) / 2:.4f}" if v else "")
                lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
            for mode, f in (de.get("label_factor") or {}).items():
                lines.append("" if f is None else f"\n{mode}: reaches from-scratch's best ({f['scratch_best']:.4f} at "
                             f"{f['scratch_n']:,} labels) with {f['n_needed']:,} labels: {f['factor']:.0f}x fewer.")
            lines.append("")
        anomalies = sorted(folder.glob("anomaly_*.json"))
        if anomalies:
            tables = {}
            for p in anomalies:  # anomaly_<signal>[+<extra methods>].json: one column per signal
                tables.setdefault(p.stem[len("anomaly_"):].split("+")[0], {}).update(json.loads(p.read_text()))
            scores = list(dict.fromkeys(k for t in tables.values() for k in t))
            lines += ["| score | " + " | ".join(f"{sig}: AUC / max SIC" for sig in tables) + " |",
                      "|---" * (len(tables) + 1) + "|"]
            for c in scores:
                cells = [f"{t[c]['auc']:.3f} / {t[c]['max_sic']:.2f}" if c in t else "" for t in tables.values()]
                lines.append(f"| {c} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines).rstrip() or "(no real run recorded yet)"


def _comparison_rows(folder: Path) -> dict[str, tuple[float, float, bool]]:
    """{metric: (value, margin, higher is better)} of one real-run results folder; a difference within
    the margins of both is no win (the seed spread of AUCs, 1% of perplexities and single AUCs, and 10%
    of W1 ratios, whose samples of 20,000 events fluctuate by about that much)."""
    rows = {}
    pre = json.loads((folder / "pretrain_metrics.json").read_text())
    rows["validation next-token perplexity"] = (pre["val_perplexity_next"], 0.005 * pre["val_perplexity_next"], False)
    rows["validation masked-token perplexity"] = (pre["val_perplexity_masked"], 0.005 * pre["val_perplexity_masked"],
                                                  False)
    if (folder / "w1.json").is_file():
        for name, r in json.loads((folder / "w1.json").read_text()).items():
            rows[f"generated ttbar W1/floor: {name}"] = (ratio(r), 0.05 * ratio(r), False)
    if (folder / "data_efficiency.json").is_file():
        de = json.loads((folder / "data_efficiency.json").read_text())
        for n in sorted({r["n_train"] for r in de["rows"]}):
            for mode in dict.fromkeys(r["mode"] for r in de["rows"]):
                v = [r["mean_auc"] for r in de["rows"] if r["n_train"] == n and r["mode"] == mode]
                rows[f"0t..4t mean AUC, {n:,} labels, {mode}"] = (sum(v) / len(v), (max(v) - min(v)) / 2, True)
    for p in sorted(folder.glob("anomaly_*.json")):
        signal = p.stem[len("anomaly_"):].split("+")[0]
        for score, m in json.loads(p.read_text()).items():
            rows[f"anomaly AUC, {signal}: {score}"] = (m["auc"], 0.005, True)
    return rows


def hybrid_table() -> str:
    """Plain token input against the hybrid (continuous features embedded beside the tokens), same
    tokenizer, data, backbone size and steps (benchmarks/real_run_event.sh with HYBRID=1)."""
    plain, hybrid = RESULTS / "real_run_event_cpu", RESULTS / "real_run_event_cpu_hybrid"
    if not (plain / "pretrain_metrics.json").is_file() or not (hybrid / "pretrain_metrics.json").is_file():
        return "(the hybrid run is not recorded yet)"
    a, b = _comparison_rows(plain), _comparison_rows(hybrid)
    lines = ["| metric | tokens | hybrid | better |", "|---|---|---|---|"]
    wins = {"tokens": 0, "hybrid": 0, "neither": 0}
    for name in (k for k in a if k in b):
        (va, sa, up), (vb, sb, _) = a[name], b[name]
        better = "neither" if abs(va - vb) <= sa + sb else ("hybrid" if (vb > va) == up else "tokens")
        wins[better] += 1
        fmt = (lambda v: f"{v:.4f}") if up else (lambda v: f"{v:,.1f}")
        lines.append(f"| {name} | {fmt(va)} | {fmt(vb)} | {better} |")
    lines += ["", f"Better: hybrid {wins['hybrid']}, tokens {wins['tokens']}, neither {wins['neither']} "
                  f"(of {sum(wins.values())} metrics)."]
    return "\n".join(lines)


def memory_table() -> str:
    """Peak memory of scoring and tokenizing as the input grows, and of each token score with a random
    backbone of the real size, where measured against a baseline's code (benchmarks/streaming_memory.py)."""
    lines = []
    for p in sorted(RESULTS.glob("streaming_memory_*.json")):
        r = json.loads(p.read_text())
        if "random_backbone" in r:
            lines += _random_memory_lines(r)
            continue
        lines += [f"{r['tag']} ({r['cpu_count']} cores, {r['date']}; chunks of {r['step_size']:,} events; scores "
                  f"{', '.join(r['methods'])}):", "", "| command | events | peak resident memory | events/s |",
                  "|---|---|---|---|"]
        lines += [f"| {row['command']} | {row['events']:,} | {row['peak_rss_mib']:,.0f} MiB | {row['events_per_s']:,.0f} |"
                  for row in r["rows"]]
        lines.append("")
    return "\n".join(lines).rstrip() or "(not measured yet)"


def _random_memory_lines(r: dict) -> list[str]:
    """The rows of a `streaming_memory.py --random` run: each score's peak, and its peak above the
    process with the model loaded, per code measured."""
    m = r["random_backbone"]
    lines = [f"{r['tag']} ({r['cpu_count']} cores, {r['date']}; a randomly initialized backbone of "
             f"{Path(m['config']).name}'s size: {m['n_layer']} layers, width {m['n_embd']}, {m['vocab_size']:,} "
             f"tokens ({m['n_codes']:,} codes); {r['rows'][0]['events']:,} random events in batches of "
             f"{r['batch_size']:,}; masked: {r['n_masks']} maskings):", "",
             "| score | code | peak resident memory | above the loaded model | events/s |", "|---|---|---|---|---|"]
    lines += [f"| {row['command'].removeprefix('score ')} | {row['code']} | {row['peak_rss_mib']:,.0f} MiB | "
              f"{row['peak_rss_mib'] - row['rss_before_mib']:,.0f} MiB | {row['events_per_s']:,.1f} |"
              for row in r["rows"]]
    return lines + [""]


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def _baseline(name: str) -> dict | None:
    p = RESULTS / f"{name}_cpu.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _ntop_aucs() -> tuple[list[int], dict[str, list[float | None]]] | None:
    """(label counts, {model: mean 0t..4t AUC per label count}) of the baselines and our real CPU runs."""
    gbdt = _baseline("baseline_gbdt")
    if gbdt is None:
        return None
    models = {f"XGBoost, {len(gbdt['features'])} high-level features": gbdt["rows"]}
    for name, label in (("baseline_transformer", "continuous transformer, scratch"),
                        ("baseline_transformer_pretrained", "continuous transformer, masked pretraining + full"),
                        ("baseline_part", "Particle Transformer, scratch")):
        if (r := _baseline(name)) is not None:
            models[label] = r["rows"]
    for label, folder in (("tokens", "real_run_event_cpu"), ("hybrid", "real_run_event_cpu_hybrid")):
        de = RESULTS / folder / "data_efficiency.json"
        if de.is_file():
            rows = json.loads(de.read_text())["rows"]
            for mode in ("frozen", "full", "scratch"):
                models[f"ours: {label}, {mode}"] = [r for r in rows if r["mode"] == mode]
    sizes = sorted({r["n_train"] for r in gbdt["rows"]})
    return sizes, {label: [_mean(v, "mean_auc") if (v := [r for r in rows if r["n_train"] == n]) else None
                           for n in sizes] for label, rows in models.items()}


def baseline_table() -> str:
    """0t..4t mean AUC of the baselines (benchmarks/baseline.py --task ntop) against the token and hybrid
    models of the real CPU runs (frozen, full fine-tuning, scratch), same files and label counts; the best
    of each column in bold."""
    if (found := _ntop_aucs()) is None:
        return "(no baseline recorded yet)"
    sizes, table = found
    best = [max(t[i] for t in table.values() if t[i] is not None) for i in range(len(sizes))]
    lines = ["| model | " + " | ".join(f"{n:,} labels" for n in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for label, values in table.items():
        cells = ["" if v is None else f"**{v:.4f}**" if v == best[i] else f"{v:.4f}" for i, v in enumerate(values)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _jets_rows() -> list[tuple[str, int, int, float, float]]:
    """(model, labelled jets, seeds, AUC, QCD rejection at 30%) of top vs QCD, ours and the baselines."""
    rows = []
    for label, folder in (("tokens", "real_run_constituent_cpu"), ("hybrid", "real_run_constituent_cpu_hybrid")):
        for mode in ("frozen", "full", "scratch"):
            p = RESULTS / folder / f"classify_{mode}.json"
            if p.is_file():
                m = json.loads(p.read_text())
                rows.append((f"ours: {label}, {mode}", m["n_train"], 1, m["mean_auc"], m["rejection_at_30"]))
    for name, label in (("gbdt", "XGBoost, 8 substructure features"), ("transformer", "continuous transformer, scratch"),
                        ("part", "Particle Transformer, scratch")):
        if (r := _baseline(f"baseline_jets_{name}")) is not None:
            rows.append((label, r["rows"][0]["n_train"], len(r["rows"]), _mean(r["rows"], "mean_auc"),
                         _mean(r["rows"], "rejection_at_30")))
    return rows


def jets_baseline_table() -> str:
    """Top vs QCD: the token model (head swap and scratch, real_run_constituent.sh) against the baselines
    (benchmarks/baseline.py --task jets), same training jets and test set."""
    rows = _jets_rows()
    lines = ["| model | labelled jets | seeds | AUC | QCD rejection at 30% top efficiency |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {n:,} | {seeds} | {auc:.3f} | {rej:.1f} |" for label, n, seeds, auc, rej in rows]
    return "\n".join(lines)


def anomaly_baseline_table() -> str:
    """Unseen signals against the six SM processes: the token model's scores (real_run_event.sh) and the
    entropy of the baselines' SM-process classifiers (benchmarks/baseline.py --task anomaly)."""
    signals = ("ttt_proxy", "tttt_proxy", "zprime_ttbar")
    columns = {}
    for folder, label in (("real_run_event_cpu", "tokens"), ("real_run_event_cpu_hybrid", "hybrid")):
        for method in ("nll", "entropy"):
            columns[f"{label}: {method}"] = {
                s: json.loads(p.read_text())[method] for s in signals
                if (p := RESULTS / folder / f"anomaly_{s}.json").is_file()}
    for name, label in (("gbdt", "XGBoost: entropy"), ("transformer", "continuous transformer: entropy")):
        if (r := _baseline(f"baseline_anomaly_{name}")) is not None:
            columns[label] = {s: {k: _mean([x for x in r["rows"] if Path(x["signal"]).stem.startswith(s)], k)
                                  for k in ("auc", "max_sic")} for s in signals}
    columns = {k: v for k, v in columns.items() if v}
    lines = ["| signal (AUC / max SIC) | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for s in signals:
        lines.append(f"| {s} | " + " | ".join(f"{c[s]['auc']:.3f} / {c[s]['max_sic']:.2f}" if s in c else ""
                                             for c in columns.values()) + " |")
    return "\n".join(lines)


def speed_table() -> str:
    """Every speed figure in one table, each next to its reference measured in the same run, from the
    results of tokenizer_throughput.py, backbone_throughput.py, generate_throughput.py, real_run_event.sh
    (sampling ttbar) and streaming_memory.py (anomaly scoring)."""
    rows = []
    for p in sorted(RESULTS.glob("tokenizer_*.json")):
        r = json.loads(p.read_text())
        if "encode_objects_per_s" in r:
            for device, rates in r["encode_objects_per_s"].items():
                batch, rate = max(rates.items(), key=lambda kv: kv[1])
                rows.append(("tokenizer encode, objects/s", device, r["date"], f"{rate:,} (batch {int(batch):,})", "", ""))
    for p in sorted(RESULTS.glob("backbone_*.json")):
        r = json.loads(p.read_text())
        m = r["model"]
        size = f"{m['layers']} x {m['width']}, {m['seq_len']} tokens"
        hf = r["train"]["huggingface GPT-2 (sdpa)"]["tokens_per_s"]
        label, best = max(((k, v) for k, v in r["train"].items() if k.startswith("ours")), key=lambda kv: kv[1]["tokens_per_s"])
        mfu = f", MFU {best['mfu']:.1%}" if best["mfu"] else ""
        rows.append((f"training, {size}, tokens/s", r["device"], r["date"], f"{best['tokens_per_s']:,}{mfu} {label[5:]}",
                     f"HF GPT-2 {hf:,}", f"{best['tokens_per_s'] / hf:.2f}x"))
        hf_s = r["sample"]["huggingface generate"]
        label, best = max(((k, v) for k, v in r["sample"].items() if k.startswith("ours")), key=lambda kv: kv[1]["events_per_s"])
        rows.append((f"sampling {m['seq_len']}-token sequences, events/s", r["device"], r["date"],
                     f"{best['events_per_s']:,.0f} (batch {best['batch']})",
                     f"HF generate {hf_s['events_per_s']:,.0f} (batch {hf_s['batch']})",
                     f"{best['events_per_s'] / hf_s['events_per_s']:.1f}x"))
    pythia = {}
    for p in sorted(RESULTS.glob("generate_*.json")):
        r = json.loads(p.read_text())
        if "ttbar" in r["generate"]:
            pythia[r["machine"]] = (r["generate"]["ttbar"]["records_per_s_per_core"], r["cpu_cores_used"])
    sample_log = RESULTS / "real_run_event_cpu" / "sample.log"
    if sample_log.is_file() and "cpu-2core" in pythia and (m := re.search(r"\(([\d.]+) events/s on (\w+)\)", sample_log.read_text())):
        rate, per_core = float(m.group(1)), pythia["cpu-2core"][0]
        rows.append(("sampling ttbar events (1.8M backbone) vs Pythia 8 + FastJet ttbar, events/s per core", "cpu (2 threads)",
                     "real run", f"{rate / 2:,.0f}", f"Pythia {per_core:,.0f}", f"{rate / 2 / per_core:.1f}x"))
    for p in sorted(RESULTS.glob("streaming_memory_*.json")):
        r = json.loads(p.read_text())
        if "random_backbone" in r:
            continue  # the random-backbone memory study: no file commands to time
        for command in ("score", "tokenize"):
            best = max((x for x in r["rows"] if x["command"] == command), key=lambda x: x["events_per_s"])
            what = f"anomaly scoring ({', '.join(r['methods'])})" if command == "score" else "tokenizing files"
            rows.append((f"{what}, events/s", f"cpu ({r['cpu_count']} cores)", r["date"],
                         f"{best['events_per_s']:,.0f} ({best['events']:,} events)", "", ""))
    lines = ["| what | device | date | ours | reference, same run | ratio |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if "h100-host-16workers" in pythia:
        lines.append(f"\nThe Pythia 8 source makes {pythia['h100-host-16workers'][0]:.0f} ttbar events/s per core on the H100 "
                     "machine's host (16 workers).")
    return "\n".join(lines)


def scaling_table() -> str:
    """How training and sampling costs grow (benchmarks/backbone_throughput.py --scaling)."""
    lines = []
    for p in sorted(RESULTS.glob("backbone_*.json")):
        r = json.loads(p.read_text())
        if "scaling" not in r:
            continue
        sc = r["scaling"]
        lines += [f"{r['device']} ({r['machine']}, {r['date']}), batch {r['batch']}:", "",
                  "| training step | parameters | step | tokens/s |", "|---|---|---|---|"]
        lines += [f"| {x['layers']} x {x['width']}, {x['seq_len']} tokens | {x['params'] / 1e6:.1f}M | "
                  f"{x['step_ms']:,.1f} ms | {x['tokens_per_s']:,} |" for x in sc["train_vs_seq_len"] + sc["train_vs_model_size"]]
        lines += ["", "| sampling batch | events/s |", "|---|---|"]
        lines += [f"| {x['batch']:,} | {x['events_per_s']:,.1f} |" for x in sc["sample_vs_batch"]]
        lines.append("")
    return "\n".join(lines).rstrip() or "(not measured yet)"


def constituent_table() -> str:
    """Top vs QCD by head swap and from scratch (benchmarks/real_run_constituent.sh)."""
    lines = ["| mode | AUC | accuracy | QCD rejection at 30% / 50% top efficiency |", "|---|---|---|---|"]
    for mode in ("frozen", "full", "scratch"):
        p = RESULTS / "real_run_constituent_cpu" / f"classify_{mode}.json"
        if p.is_file():
            m = json.loads(p.read_text())
            lines.append(f"| {mode} | {m['mean_auc']:.3f} | {m['accuracy']:.3f} | {m['rejection_at_30']:.1f} / "
                         f"{m['rejection_at_50']:.1f} |")
    return "\n".join(lines)


def _density_run() -> Path:
    return RESULTS / "anomaly_density_cpu"


def _configured_run() -> Path:
    """real_run_anomaly.sh on the event configs as they are since feature logits (RESULTS= this folder)."""
    return RESULTS / "anomaly_feature_logits_cpu"


def density_anomaly_table() -> str:
    """Every anomaly score beside the one-variable cuts, per signal, against ttbar and against the SM mix
    (benchmarks/real_run_anomaly.sh -> anomaly_table.json)."""
    p = _density_run() / "anomaly_table.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    scores = [c for c in ("density_nll", "surprise", "nll", "nll_per_token", "masked", "masked_surprise",
                          "quantization") if c in r["scores"]]
    refs = r["references"]
    lines = []
    mix = r.get("sm_mix")  # the events of each process in the mix (earlier runs: 2,000 of each)
    mix_text = ("the SM mix (" + ", ".join(f"{p} {n:,}" for p, n in mix.items()) + " events: the training mix's "
                "proportions)") if mix else "the SM mix (six processes, 2,000 events each)"
    for bkg in ("SM mix", "ttbar"):
        lines += [f"Against {mix_text if bkg == 'SM mix' else 'ttbar alone'}, "
                  "AUC / max SIC (best of each row in bold; references: one-variable cuts on the same events):", "",
                  "| signal | " + " | ".join(f"`{c}`" for c in scores) + " | " + " | ".join(refs) + " |",
                  "|---" * (1 + len(scores) + len(refs)) + "|"]
        for signal, by_bkg in r["signals"].items():
            row = by_bkg[bkg]
            best = max(scores + refs, key=lambda c: row[c]["auc"])
            cells = [(f"**{row[c]['auc']:.3f}** / {row[c]['max_sic']:.1f}" if c == best else
                      f"{row[c]['auc']:.3f} / {row[c]['max_sic']:.1f}") for c in scores + refs]
            lines.append(f"| {signal} | " + " | ".join(cells) + " |")
        # a search does not know its signal: the cut must be chosen before, and its worst case counts
        worst = {c: min(by_bkg[bkg][c]["auc"] for by_bkg in r["signals"].values()) for c in scores + refs}
        lines.append("| *worst of these signals* | " + " | ".join(f"*{worst[c]:.3f}*" for c in scores + refs) + " |")
        lines.append("")
    wins = []
    for signal, by_bkg in r["signals"].items():
        row = by_bkg["SM mix"]
        ref = max(refs, key=lambda c: row[c]["auc"])
        verdict = "beats" if row["density_nll"]["auc"] > row[ref]["auc"] else "**loses to**"
        wins.append(f"{signal}: {row['density_nll']['auc']:.3f} {verdict} {ref} ({row[ref]['auc']:.3f})")
    lines += ["The default score, `density_nll`, against the best one-variable cut on the SM mix: " + "; ".join(wins)
              + ".", "",
              "Spearman correlation with the number of objects on the SM mix (a score that follows it counts "
              "objects): " + ", ".join(f"`{c}` {r['spearman_with_objects_sm'][c]:+.2f}" for c in scores) + ".",
              "", f"({r['date']}; {r['note']})"]
    return "\n".join(lines)


def density_backbone_comparison_table(paths: tuple[Path, Path] | None = None,
                                      labels: tuple[str, str] = ("event-small", "default")) -> str:
    """AUC against the SM mix of the scores of two backbones on the same test events, beside the best
    one-variable cut: by default the bundled event-small (density head, one softmax, token input) against
    the event configs' default of the time (hybrid input, type head): anomaly_table_event_small.json against
    anomaly_table.json."""
    paths = paths or (_density_run() / "anomaly_table_event_small.json", _density_run() / "anomaly_table.json")
    if not all(p.is_file() for p in paths):
        return "(not measured yet)"
    old, new = (json.loads(p.read_text()) for p in paths)
    scores = [c for c in ("density_nll", "surprise", "nll") if c in old["scores"] and c in new["scores"]]
    lines = ["| signal | " + " | ".join(f"`{c}` {labels[0]} / {labels[1]}" for c in scores) + " | best cut |",
             "|---" * (2 + len(scores)) + "|"]
    worst = {c: [1.0, 1.0] for c in scores}
    for signal, by_bkg in new["signals"].items():
        a, b = old["signals"][signal]["SM mix"], by_bkg["SM mix"]
        ref = max(new["references"], key=lambda c: b[c]["auc"])
        for c in scores:
            worst[c] = [min(worst[c][0], a[c]["auc"]), min(worst[c][1], b[c]["auc"])]
        lines.append(f"| {signal} | " + " | ".join(f"{a[c]['auc']:.3f} / {b[c]['auc']:.3f}" for c in scores)
                     + f" | {ref} {b[ref]['auc']:.3f} |")
    lines.append("| *worst* | " + " | ".join(f"*{w[0]:.3f} / {w[1]:.3f}*" for w in worst.values()) + " | |")
    rho = lambda r, c: r["spearman_with_objects_sm"][c]  # noqa: E731
    return "\n".join(lines) + (f"\n\nSpearman with the object count on the SM mix, {labels[0]} / {labels[1]}: "
                               + ", ".join(f"`{c}` {rho(old, c):+.2f} / {rho(new, c):+.2f}" for c in scores)
                               + f" ({new['date']})")


def conditional_generation_table(name: str, hazards: bool = True) -> str:
    """Per process: multiplicities, the first object, the held-out next-token loss and W1 over the floor of
    generated events against the process's own (benchmarks/conditional_generation.py -> NAME.json); with
    `hazards`, the chance that another jet follows k jets in the data, teacher forced and generated."""
    p = RESULTS / f"{name}.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    first = next(iter(r["processes"].values()))
    observables = list(first["w1_over_floor"])
    lines = ["| process | jets gen / real | b-jets | leptons | no jet % | P(first is jet) data / model / generated | "
             "next-token loss (held out) | " + " | ".join(f"W1/floor {o}" for o in observables) + " |",
             "|---" * (7 + len(observables)) + "|"]
    for process, x in r["processes"].items():
        g, d = x["generated"], x["real"]
        pair = lambda k: f"{g[k]:.2f} / {d[k]:.2f}"  # noqa: E731
        lines.append(f"| {process} | {pair('mean_jets')} | {pair('mean_bjets')} | {pair('mean_leptons')} | "
                     f"{100 * g['no_jet']:.1f} / {100 * d['no_jet']:.1f} | {d['first']['jets']:.3f} / "
                     f"{x['predicted_first']['jets']:.3f} / {g['first']['jets']:.3f} | {x['next_token_loss']:.3f} | "
                     + " | ".join(f"{x['w1_over_floor'][o]:.1f}" for o in observables) + " |")
    worst = {o: max(x["w1_over_floor"][o] for x in r["processes"].values()) for o in observables}
    lines.append("| *worst* | | | | | | | " + " | ".join(f"*{w:.1f}*" for w in worst.values()) + " |")
    lines.append(f"\n({first['n_generated']:,} generated events per process against its training file; process "
                 f"unknown (MASK): P(first is jet) = {r['unknown']['predicted_first']['jets']:.3f})")
    if "count_fit_w1_over_floor" in first:
        kinds = list(first["count_fit_w1_over_floor"])
        lines += ["", "The multiplicity token's counts, exactly (its distribution, no sampling noise): W1/floor", "",
                  "| process | " + " | ".join(kinds) + " |", "|---" * (1 + len(kinds)) + "|"]
        lines += [f"| {process} | " + " | ".join(f"{x['count_fit_w1_over_floor'][k]:.1f}" for k in kinds) + " |"
                  for process, x in r["processes"].items()]
    if hazards and "predicted_jet_hazard" in first:
        ks = range(len(first["predicted_jet_hazard"]))
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines += ["", "P(another jet after k jets): data / teacher forced / generated", "",
                  "| process | " + " | ".join(f"k = {k}" for k in ks) + " |", "|---" * (1 + len(ks)) + "|"]
        for process, x in r["processes"].items():
            rows = zip(x["real"]["jet_hazard"], x["predicted_jet_hazard"], x["generated"]["jet_hazard"])
            lines.append(f"| {process} | " + " | ".join(f"{fmt(a)} / {fmt(b)} / {fmt(c)}" for a, b, c in rows) + " |")
    return "\n".join(lines)


def _hazard_gaps(r: dict, k_max: int = 5) -> tuple[float, float]:
    """Mean |teacher forced - data| (the fit) and |generated - teacher forced| (the drift) of the jet
    hazards for k < k_max, over the processes of a conditional_generation.py result."""
    fit, drift = [], []
    for x in r["processes"].values():
        for d, m, g in list(zip(x["real"]["jet_hazard"], x["predicted_jet_hazard"], x["generated"]["jet_hazard"]))[:k_max]:
            if None not in (d, m, g):
                fit.append(abs(m - d))
                drift.append(abs(g - m))
    return statistics.mean(fit), statistics.mean(drift)


def conditional_summary_table(runs: list[tuple[str, Path]], first: str = "run") -> str:
    """One row per conditional_generation.py result (label, path): the mean held-out next-token loss, the
    worst W1/floor over the processes of each observable, and the hazards' fit and drift."""
    results = [(label, json.loads(path.read_text())) for label, path in runs if path.is_file()]
    if len(results) < 2:
        return "(not measured yet)"
    # the observables conditional_generation.py measured, in its order
    observables = list(next(iter(results[0][1]["processes"].values()))["w1_over_floor"])
    lines = [f"| {first} | held-out next-token loss, mean over processes | worst W1/floor: "
             + " | ".join(o.split(" [")[0] for o in observables)
             + " | hazard error teacher forced (fit) | generated against teacher forced (drift) |",
             "|---" * (4 + len(observables)) + "|"]
    for label, r in results:
        xs = r["processes"].values()
        fit, drift = _hazard_gaps(r)
        lines.append(f"| {label} | {statistics.mean(x['next_token_loss'] for x in xs):.3f} | "
                     + " | ".join(f"{max(x['w1_over_floor'][o] for x in xs):.1f}" for o in observables)
                     + f" | {fit:.3f} | {drift:.3f} |")
    return "\n".join(lines) + ("\n\n(hazard errors: mean absolute difference of P(another jet after k jets), k = 0-4, "
                               "over the six processes)")


def conditional_checkpoints_table() -> str:
    """How the per-process generation of the default event backbone changes along its pretraining
    (conditional_generation.py on the kept checkpoints of real_run_anomaly.sh; 2,000 generated events
    per process at the checkpoints, 5,000 at step 2000)."""
    steps = sorted(int(p.stem.rsplit("step", 1)[1]) for p in RESULTS.glob("conditional_generation_default_cpu_step*.json"))
    runs = [(str(s), RESULTS / f"conditional_generation_default_cpu_step{s}.json") for s in steps]
    return conditional_summary_table(runs + [("2000", RESULTS / "conditional_generation_default_cpu.json")], "step")


def conditional_ema_table() -> str:
    """The default CPU run's generation with the drawn pt order kept, and two seeds' runs with a weight
    average: each measured with the average and with the last step's weights."""
    runs = [("seed 0, last step, pt order free (before)", RESULTS / "conditional_generation_default_cpu.json"),
            ("seed 0, last step", RESULTS / "conditional_generation_default_cpu_pt_ordered.json")]
    for seed in (0, 1):
        runs += [(f"EMA run seed {seed}, last step", RESULTS / f"conditional_generation_ema_seed{seed}_raw.json"),
                 (f"EMA run seed {seed}, average", RESULTS / f"conditional_generation_ema_seed{seed}_ema.json")]
    return conditional_summary_table(runs)


def conditional_variants_table() -> str:
    """Seed 0 of the weight-average runs against two variants of the same run: the process embedding
    added at every position (a branch, not kept) and no weight decay."""
    runs = []
    for label, name in (("as configured", "ema_seed0"), ("process at every position", "process_everywhere_seed0"),
                        ("no weight decay", "no_weight_decay_seed0")):
        runs += [(f"{label}, last step", RESULTS / f"conditional_generation_{name}_raw.json"),
                 (f"{label}, average", RESULTS / f"conditional_generation_{name}_ema.json")]
    return conditional_summary_table(runs)


def conditional_guidance_table() -> str:
    """The two weight-average runs sampled with classifier-free guidance w (1: none); teacher-forced
    losses and hazards are those of the guided distribution."""
    runs = []
    for seed in (0, 1):
        runs.append((f"seed {seed}, w = 1", RESULTS / f"conditional_generation_ema_seed{seed}_ema.json"))
        runs += [(f"seed {seed}, w = {w}", RESULTS / f"conditional_generation_ema_seed{seed}_guidance{w}.json")
                 for w in (1.25, 1.5, 2.5)]
    return conditional_summary_table(runs)


def conditional_low_lr_table() -> str:
    """The weight-average runs against the same runs with the learning rate decayed to 1% of its peak,
    not 10% (`train.min_lr_fraction` 0.01), sampled without and with guidance."""
    runs = []
    for seed in (0, 1):
        runs.append((f"seed {seed}, min_lr_fraction 0.1 (configured)",
                     RESULTS / f"conditional_generation_ema_seed{seed}_ema.json"))
        runs += [(f"seed {seed}, min_lr_fraction 0.01, w = {w}",
                  RESULTS / f"conditional_generation_low_min_lr_seed{seed}_guidance{w}.json") for w in (1, 1.25)]
    return conditional_summary_table(runs)


def conditional_more_data_table() -> str:
    """The weight-average recipe (seed 0) on the 60,500-event mix against four times as many events, with
    the density trained plain and pt-ordered (`model.density_pt_order`; benchmarks/conditional_more_data.sh),
    sampled without and with guidance."""
    runs = [("60,500 events, plain density, w = 1", RESULTS / "conditional_generation_ema_seed0_ema.json"),
            ("60,500 events, plain density, w = 1.25", RESULTS / "conditional_generation_ema_seed0_guidance1.25.json")]
    for label, name in (("plain density", "more_data_seed0"), ("pt-ordered density", "more_data_pt_order_seed0"),
                        ("pt-ordered density, seed 1", "more_data_pt_order_seed1")):
        runs += [(f"242,000 events, {label}, w = {w}", RESULTS / f"conditional_generation_{name}_guidance{w}.json")
                 for w in (1, 1.25)]
    return conditional_summary_table(runs)


def conditional_type_weight_table() -> str:
    """The pt-ordered recipe on 242,000 events (seed 0): 2,000 steps (conditional_more_data.sh) against
    3,000, and 3,000 with the type decisions weighted (`train.weight_type` 4; conditional_type_weight.sh),
    sampled without and with guidance."""
    runs = []
    for label, name in (("2,000 steps", "more_data_pt_order_seed0"), ("3,000 steps", "steps3000_seed0"),
                        ("3,000 steps, weight_type 4", "steps3000_type_weight4_seed0")):
        runs += [(f"{label}, w = {w}", RESULTS / f"conditional_generation_{name}_guidance{w}.json") for w in (1, 1.25)]
    return conditional_summary_table(runs)


def batch_gradient_norms_table(name: str = "steps3000_seed0") -> str:
    """benchmarks/batch_gradient_norms.py: the gradient norm of length-sorted batches by their mean event
    length, and the weight clipping leaves them, beside uniform batches."""
    p = RESULTS / f"batch_gradient_norms_{name}.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    # a conditional sequence is BOS, the process, the objects and EOS
    rows = [(f"{int(k) - 3} object{'s' * (int(k) != 4)}", v["batches"], v["mean_norm"]) for k, v in r["sorted"].items()]
    rows.append(("uniform batches", r["uniform"]["batches"], r["uniform"]["mean_norm"]))
    return "\n".join(["| batches of events with about | batches | gradient norm | weight left by clipping at "
                      f"{r['clip']:g} |", "|---|---|---|---|"]
                     + [f"| {label} | {n} | {g:.2f} | {min(1.0, r['clip'] / g):.3f} |" for label, n, g in rows])


def conditional_batching_table() -> str:
    """The 3,000-step run continued 300 steps at its final learning rate with length-sorted batches (as
    trained), with uniform batches (`data.length_bucket` 1) and with sorted batches clipped at 10, not 1,
    sampled without guidance."""
    runs = [("3,000 steps", RESULTS / "conditional_generation_steps3000_seed0_guidance1.json")]
    runs += [(f"+300 steps, {label}", RESULTS / f"conditional_generation_steps3000_then300_{name}_seed0_guidance1.json")
             for label, name in (("length-sorted batches (length_bucket 50)", "bucket50"),
                                 ("uniform batches (length_bucket 1)", "bucket1"),
                                 ("length-sorted batches, clip 10", "clip10"))]
    return conditional_summary_table(runs)


def conditional_uniform_batches_table() -> str:
    """The 2,000-step recipe on 242,000 events trained from the start with uniform batches
    (`data.length_bucket` 1; conditional_uniform_batches.sh) beside the same runs with length-sorted
    batches (conditional_more_data.sh), seeds 0 and 1, sampled without and with guidance."""
    runs = []
    for seed in (0, 1):
        for label, name in (("length-sorted batches", f"more_data_pt_order_seed{seed}"),
                            ("uniform batches", f"uniform_batches_seed{seed}")):
            runs += [(f"seed {seed}, {label}, w = {w}", RESULTS / f"conditional_generation_{name}_guidance{w}.json")
                     for w in (1, 1.25)]
    return conditional_summary_table(runs)


def _generation_result(name: str, top_p: float, guidance: float = 1) -> Path:
    """conditional_generation.py's JSON for backbone `name` (real_run_lib.sh measure_generation)."""
    return RESULTS / f"conditional_generation_{name}_guidance{guidance:g}{'' if top_p == 1 else f'_top_p{top_p}'}.json"


def conditional_top_p_table() -> str:
    """The uniform-batch backbones (seeds 0 and 1) sampled with each object type's codes from its nucleus
    (sample.py --top-p; conditional_top_p.sh), at guidance 1."""
    runs = []
    for seed in (0, 1):
        runs += [(f"seed {seed}, top-p {p}", _generation_result(f"uniform_batches_seed{seed}", p))
                 for p in (1, 0.98, 0.95, 0.9)]
    return conditional_summary_table(runs)


FRAME_RUNS = (("as before", "uniform_batches_seed0", (1, 0.95)),
              ("feature logits", "feature_logits_seed0", (1, 0.98, 0.95)),
              ("leading jet's frame", "rot_seed0", (1, 0.95)),
              ("leading jet's frame + feature logits", "rot_feature_logits_seed0", (1, 0.98)),
              ("leading jet's frame + feature logits, seed 1", "rot_feature_logits_seed1", (1, 0.98)))


def conditional_frame_table(specs: tuple = FRAME_RUNS) -> str:
    """Conditional generation of each run in `specs` (label, run name, top-p values; by default FRAME_RUNS:
    the uniform-batch recipe as before, with feature logits, on events turned to their leading jet, and
    both), each sampled with the full distribution and each type's nuclei; then ttbar's leading jet pair
    and mass windows."""
    runs = [(f"{label}, top-p {p}", _generation_result(name, p)) for label, name, ps in specs for p in ps]
    table = conditional_summary_table(runs)
    results = [(label, json.loads(path.read_text())["processes"]["ttbar"]) for label, path in runs if path.is_file()]
    results = [(label, x) for label, x in results if "dphi_j1j2" in x["generated"]]
    if table.startswith("(") or not results:
        return "(not measured yet)"
    keys = ("dphi_j1j2", "deta_j1j2", "w_window", "top_window")
    data = results[0][1]["real"]
    lines = ["| ttbar | mean abs dphi(j1, j2) | mean abs deta(j1, j2) | m(jj) in 60-100 GeV | m(bjj) in 140-200 GeV |",
             "|---|---|---|---|---|", "| data | " + " | ".join(f"{data[k]:.3f}" for k in keys) + " |"]
    lines += [f"| {label} | " + " | ".join(f"{x['generated'][k]:.3f}" for k in keys) + " |" for label, x in results]
    return table + "\n\n" + "\n".join(lines) + ("\n\n(5,000 generated ttbar events against the 24,000 of its "
                                              "training file; the mass windows as fractions of the top candidates)")


#: conditional_feature_logits.sh: two seeds, and the basis widened by a 64-wide MLP (WIDTH=64)
FEATURE_BASIS_RUNS = tuple((f"{label}, seed {seed}", f"{name}_seed{seed}", (1, 0.98, 0.95))
                           for label, name in (("features and squares", "feature_logits"),
                                               ("+ MLP of width 64", "feature_logits_w64")) for seed in (0, 1))


def feature_logits_guidance_table() -> str:
    """The feature-logit backbones (seeds 0 and 1) at the 0.98 nucleus, unguided and with classifier-free
    guidance 1.1 (conditional_feature_logits.sh GUIDANCE=1.1), then the count shapes (`count_shape_table`)."""
    return count_shape_table([(f"seed {seed}, guidance {g:g}", _generation_result(f"feature_logits_seed{seed}", 0.98, g))
                              for g in (1, 1.1) for seed in (0, 1)])


def multiplicity_table() -> str:
    """The configured recipe with the multiplicity token (conditional_multiplicity.sh, seeds 0 and 1) with the
    full distribution and the 0.98 nucleus, beside the same recipe without it at 0.98 (`count_shape_table`)."""
    runs = [(f"without, seed {seed}, top-p 0.98", _generation_result(f"feature_logits_seed{seed}", 0.98))
            for seed in (0, 1)]
    runs += [(f"multiplicity token, seed {seed}, top-p {p:g}", _generation_result(f"multiplicity_seed{seed}", p))
             for seed in (0, 1) for p in (1, 0.98)]
    return count_shape_table(runs)


def count_shape_table(runs: list[tuple[str, Path]]) -> str:
    """`conditional_summary_table` of `runs` (label, result), then the b-jet and lepton count shapes of each
    process: data against the runs that recorded them."""
    table = conditional_summary_table(runs)
    results = [(label, json.loads(path.read_text())["processes"]) for label, path in runs if path.is_file()]
    results = [(label, r) for label, r in results if "bjet_fractions" in next(iter(r.values()))["generated"]]
    if table.startswith("(") or not results:
        return "(not measured yet)"
    shape = lambda x: (" / ".join(f"{f:.3f}" for f in x["bjet_fractions"]) + " | "  # noqa: E731
                       + " / ".join(f"{f:.3f}" for f in x["lepton_fractions"]))
    lines = ["| process | events | b-jets: 0 / 1 / 2 / 3+ | leptons: 0 / 1 / 2 / 3+ | W1/floor b-jets | leptons |",
             "|---|---|---|---|---|---|"]
    for process, data in results[0][1].items():
        lines.append(f"| {process} | data | {shape(data['real'])} | | |")
        lines += [f"| | {label} | {shape(r[process]['generated'])} | {r[process]['w1_over_floor']['b-jets']:.1f} | "
                  f"{r[process]['w1_over_floor']['leptons']:.1f} |" for label, r in results]
    return table + "\n\n" + "\n".join(lines) + "\n\n(fractions of events; 5,000 generated per process and run)"


def second_lepton_table() -> str:
    """Teacher forced, the chance of a second lepton right after the first, per process, of the two
    feature-logit seeds beside the held-out data (benchmarks/second_lepton.py)."""
    runs = [json.loads(p.read_text()) for seed in (0, 1)
            if (p := RESULTS / f"second_lepton_feature_logits_seed{seed}.json").is_file()]
    if len(runs) < 2:
        return "(not measured yet)"
    lines = ["| process | held-out events with a lepton | with a second, data | model seed 0 | model seed 1 |",
             "|---|---|---|---|---|"]
    for process, x in runs[0]["processes"].items():
        lines.append(f"| {process} | {x['events_with_a_lepton']:,} | {x['data']:.4f} | {x['model']:.4f} | "
                     f"{runs[1]['processes'][process]['model']:.4f} |")
    return "\n".join(lines)


def conditional_width_table() -> str:
    """The uniform-batch recipe (seed 0) at n_embd 128 and 192 (conditional_width.sh), each sampled with the
    full distribution and each type's 0.95 nucleus, and ttbar's first-code mass under 50 GeV."""
    runs = []
    for label, name in (("n_embd 128", "uniform_batches_seed0"), ("n_embd 192", "wide192_seed0")):
        runs += [(f"{label}, top-p {p}", _generation_result(name, p)) for p in (1, 0.95)]
    table = conditional_summary_table(runs)
    drift = [(label, json.loads(path.read_text())) for label, path in
             (("n_embd 128", RESULTS / "generation_drift_ttbar_seed0.json"),
              ("n_embd 192", RESULTS / "generation_drift_ttbar_wide192_seed0.json")) if path.is_file()]
    if table.startswith("(") or len(drift) < 2:
        return "(not measured yet)"
    below = lambda r, key: sum(b[key] for b in r["first_code_mass"] if b["pt_bin"][1] is not None  # noqa: E731
                               and b["pt_bin"][1] <= 50)
    return table + "\n\nttbar's first code under 50 GeV (centroid pt), backbone / data: " + "; ".join(
        f"{label} {below(r, 'model'):.4f} / {below(r, 'data'):.4f}" for label, r in drift)


def _pt_bin(edges: list) -> str:
    lo, hi = edges
    return f"{lo:.0f}-{hi:.0f} GeV" if hi is not None else f"> {lo:.0f} GeV"


def generation_drift_table() -> str:
    """benchmarks/generation_drift.py on ttbar (seed 0's uniform-batch backbone): jet hazards teacher forced
    with real, drawn and centroid features; completions from the first m real objects with and without
    the nucleus; the first object's code mass by code pt."""
    runs = [(p, json.loads(path.read_text())) for p, path in
            ((1.0, RESULTS / "generation_drift_ttbar_seed0.json"),
             (0.95, RESULTS / "generation_drift_ttbar_seed0_top_p0.95.json")) if path.is_file()]
    if len(runs) < 2:
        return "(not measured yet)"
    plain = runs[0][1]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    hazards = plain["jet_hazard"]
    ks = range(len(hazards["data"]))
    lines = ["| P(another jet after k jets), ttbar | " + " | ".join(f"k = {k}" for k in ks) + " |",
             "|---" * (1 + len(ks)) + "|"]
    lines += [f"| {name} | " + " | ".join(fmt(v) for v in values) + " |" for name, values in hazards.items()]
    lines += ["", "| completed from the first m real objects | m = " + " | m = ".join(
        str(c["prefix"]) for c in plain["completions"]) + " |", "|---" * (1 + len(plain["completions"])) + "|",
              "| the same events' own jets | " + " | ".join(f"{c['data_jets']:.3f}" for c in plain["completions"]) + " |"]
    lines += [f"| completed, top-p {r['top_p']:g} | " + " | ".join(f"{c['completed_jets']:.3f}" for c in r["completions"])
              + " |" for _, r in runs]
    bins = plain["first_code_mass"]
    lines += ["", "| first object's code pt (centroid) | " + " | ".join(_pt_bin(b["pt_bin"]) for b in bins) + " |",
              "|---" * (1 + len(bins)) + "|", "| codes | " + " | ".join(str(b["codes"]) for b in bins) + " |",
              "| backbone's probability | " + " | ".join(f"{b['model']:.4f}" for b in bins) + " |",
              "| data's frequency | " + " | ".join(f"{b['data']:.4f}" for b in bins) + " |"]
    return "\n".join(lines) + f"\n\n({plain['events']:,} held-out ttbar events; hazards teacher forced on their tokens)"


def length_split_speed_table() -> str:
    """benchmarks/length_split_speed.sh: seconds per step of the CPU recipe by batching."""
    p = RESULTS / "length_split_speed.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    ref = next(x for x in r["runs"] if x["length_bucket"] > 1 and x["length_split"] == 1)
    lines = [f"| batches ({r['threads']} threads) | length_bucket | length_split | s/step | tokens/s | against sorted |",
             "|---|---|---|---|---|---|"]
    for x in r["runs"]:
        label = "length-sorted" if x["length_bucket"] > 1 else "uniform" + (
            f", in {x['length_split']} slices" if x["length_split"] > 1 else "")
        lines.append(f"| {label} | {x['length_bucket']} | {x['length_split']} | {x['seconds_per_step']:.2f} | "
                     f"{x['tokens_per_s']:,.0f} | {x['seconds_per_step'] / ref['seconds_per_step']:.2f}x |")
    return "\n".join(lines)


def finetune_batching_table() -> str:
    """Process classification fine-tuned with length-sorted or uniform batches (finetune_batching.sh), beside
    the best one-variable cuts on the same test events (process_cuts.py)."""
    runs = [(f"seed {seed}, {label}", RESULTS / f"finetune_batching_bucket{bucket}_seed{seed}.json")
            for seed in (0, 1) for label, bucket in (("length-sorted batches (length_bucket 50)", 50),
                                                     ("uniform batches (length_bucket 1)", 1))]
    results = [(label, json.loads(p.read_text())) for label, p in runs if p.is_file()]
    cuts = RESULTS / "process_cuts.json"
    if not results or not cuts.is_file():
        return "(not measured yet)"
    classes = results[0][1]["classes"]
    lines = ["| classifier | mean one-vs-rest AUC | accuracy | validation loss | " + " | ".join(classes) + " |",
             "|---" * (4 + len(classes)) + "|"]
    lines += [f"| {label} | {m['mean_auc']:.4f} | {m['accuracy']:.4f} | {m['best_val_loss']:.4f} | "
              + " | ".join(f"{m['auc'][c]:.3f}" for c in classes) + " |" for label, m in results]
    best = sorted(json.loads(cuts.read_text())["cuts"].items(), key=lambda kv: -kv[1]["mean_auc"])[:3]
    lines += [f"| cut on {name} | {c['mean_auc']:.4f} | | | " + " | ".join(f"{c['auc'][k]:.3f}" for k in classes) + " |"
              for name, c in best]
    return "\n".join(lines) + "\n\n(the three best one-variable cuts, each placed in its better direction per process)"


def first_met_table() -> str:
    """P(the first object is MET: an event with no jet, lepton or photon) in the data, the backbone teacher
    forced and its generated events, for the processes where it is common and with the process unknown."""
    runs = [("3,000 steps", "steps3000_seed0"), ("3,000 steps, weight_type 4", "steps3000_type_weight4_seed0"),
            ("+300 steps, length-sorted batches", "steps3000_then300_bucket50_seed0"),
            ("+300 steps, uniform batches", "steps3000_then300_bucket1_seed0"),
            ("+300 steps, length-sorted batches, clip 10", "steps3000_then300_clip10_seed0"),
            ("2,000 steps, length-sorted batches", "more_data_pt_order_seed0"),
            ("2,000 steps, length-sorted batches, seed 1", "more_data_pt_order_seed1"),
            ("2,000 steps, uniform batches from the start", "uniform_batches_seed0"),
            ("2,000 steps, uniform batches from the start, seed 1", "uniform_batches_seed1")]
    results = [(label, json.loads(p.read_text())) for label, name in runs
               if (p := RESULTS / f"conditional_generation_{name}_guidance1.json").is_file()]
    if not results:
        return "(not measured yet)"
    processes = ("wjets", "ww", "single_top_s")
    lines = ["| run | " + " | ".join(f"{p}: data / model / generated" for p in processes) + " | process unknown: model |",
             "|---" * (2 + len(processes)) + "|"]
    for label, r in results:
        cells = [f"{x['real']['first']['met']:.3f} / {x['predicted_first']['met']:.3f} / {x['generated']['first']['met']:.3f}"
                 for x in (r["processes"][p] for p in processes)]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {r['unknown']['predicted_first']['met']:.3f} |")
    return "\n".join(lines)


def density_order_bias_table() -> str:
    """benchmarks/density_order_bias.py: for objects after one of their group, teacher forced, the head's
    mass above the bound and the shift of its free and truncated draws, trained plain or pt-ordered."""
    runs = [("60,500 events, plain density (seed 0)", "ema_seed0"), ("242,000 events, plain density", "more_data_seed0"),
            ("242,000 events, pt-ordered density", "more_data_pt_order_seed0"),
            ("242,000 events, pt-ordered density, seed 1", "more_data_pt_order_seed1")]
    results = [(label, json.loads(path.read_text())["processes"]) for label, name in runs
               if (path := RESULTS / f"density_order_bias_{name}.json").is_file()]
    if not results:
        return "(not measured yet)"
    lines = ["| run | objects | mass above the bound | free draws' pt shift | truncated draws' pt shift (as sampled) | "
             "ttbar: above the bound | ttbar: truncated shift |", "|---" * 7 + "|"]
    for label, r in results:
        a, t = r["all"], r["ttbar"]
        lines.append(f"| {label} | {a['objects']:,} | {a['leak']:.3f} | {a['free_shift_percent']:+.2f}% | "
                     f"{a['truncated_shift_percent']:+.2f}% | {t['leak']:.3f} | {t['truncated_shift_percent']:+.2f}% |")
    return "\n".join(lines)


def conditional_guidance_process_table(seed: int = 0, ws=(1.25, 1.5)) -> str:
    """Per process, W1/floor of a few observables at each guidance w (seed `seed`'s weight-average run)."""
    paths = [RESULTS / f"conditional_generation_ema_seed{seed}_ema.json"] + \
        [RESULTS / f"conditional_generation_ema_seed{seed}_guidance{w}.json" for w in ws]
    if not all(p.is_file() for p in paths):
        return "(not measured yet)"
    results = [json.loads(p.read_text())["processes"] for p in paths]
    observables = ("jets", "b-jets", "leptons", "HT [GeV]", "m(bjj) [GeV]")
    w = " / ".join(["1", *map(str, ws)])
    lines = ["| process | " + " | ".join(f"{o.split(' [')[0]}, w = {w}" for o in observables) + " |",
             "|---" * (1 + len(observables)) + "|"]
    for process in results[0]:
        lines.append(f"| {process} | " + " | ".join(" / ".join(f"{r[process]['w1_over_floor'][o]:.1f}" for r in results)
                                                for o in observables) + " |")
    return "\n".join(lines)


def _over_floor(row: dict) -> str:
    """A w1_table row's W1 over its floor, as the tables print it."""
    return f"{ratio(row):.1f}"


def density_generation_table(run: Path | None = None) -> str:
    """W1 to the floor of every observable, centroid against continuous decoding: sampled from scratch
    (sample.py) and decoded from real events' own tokens (decode_fidelity.py), of real_run_anomaly.sh's
    results in `run` (default the first anomaly run's)."""
    run = run or _density_run()
    runs = {m: json.loads(p.read_text()) for m in ("centroid", "continuous") if (p := run / f"w1_{m}.json").is_file()}
    p = run / "decode_fidelity.json"
    if len(runs) < 2 or not p.is_file():
        return "(not measured yet)"
    teacher = json.loads(p.read_text())
    lines = ["| observable | sampled, centroid | sampled, continuous | real tokens, centroid | real tokens, head |",
             "|---|---|---|---|---|"]
    for name, row in runs["centroid"].items():
        lines.append(f"| {name} | {_over_floor(row)} | {_over_floor(runs['continuous'][name])} | "
                     f"{_over_floor(teacher['centroid'][name])} | {_over_floor(teacher['continuous'][name])} |")
    return "\n".join(lines) + (f"\n\n(W1 / floor; sampled: 10,000 ttbar events from `sample.py --process ttbar` "
                               f"against Pythia ttbar; real tokens: {teacher['decoded']:,} Pythia ttbar events "
                               f"decoded from their own tokens against {teacher['reference']:,} others)")


def density_likelihood_table(run: Path | None = None) -> str:
    """Held-out log-density per object: the head against the per-code Gaussian (python -m backbone.likelihood),
    of real_run_anomaly.sh's results in `run` (default the first anomaly run's)."""
    p = (run or _density_run()) / "likelihood.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    lines = ["| objects | held-out objects | density head | per-code Gaussian (no context) |", "|---|---|---|---|",
             f"| all | {r['objects']:,} | **{r['head']:.3f}** | {r['per_code_gaussian']:.3f} |"]
    lines += [f"| {t.lower()} | {v['objects']:,} | {v['head']:.3f} | {v['per_code_gaussian']:.3f} |"
              for t, v in r["per_type"].items()]
    return "\n".join(lines) + f"\n\n(mean log-density per object in {r['space']}; higher is better)"


def masked_study_table() -> str:
    """The masked-token score across pretraining (benchmarks/masked_study.py)."""
    p = _density_run() / "masked_study.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    lines = ["| pretraining step | `masked`: four-top AUC | its Spearman with the object count (SM) | "
             "`masked_surprise`: AUC | its Spearman |", "|---|---|---|---|---|"]
    for row in r["rows"]:
        m, c = row["masked"], row["masked_surprise"]
        lines.append(f"| {row['step']} | {m['auc']:.3f} | {m['spearman_with_objects_sm']:+.2f} | {c['auc']:.3f} | "
                     f"{c['spearman_with_objects_sm']:+.2f} |")
    last = r["rows"][-1]["masked"]["mean_by_objects_sm"]
    lines.append("\nMean masked cross-entropy on the SM mix by number of objects, last step: " +
                 ", ".join(f"{k}: {v:.2f}" for k, v in last.items()))
    return "\n".join(lines)


def density_finetune_table(paths: tuple[Path, ...] | None = None,
                           labels: tuple[str, ...] = ("with the density head", "without")) -> str:
    """0t..4t mean AUC by labels and mode of backbones' data-efficiency runs, each against the last: by
    default the backbone with the density head against the same backbone without it (real_run_anomaly.sh)."""
    paths = paths or tuple(_density_run() / f"data_efficiency_{v}.json" for v in ("backbone", "backbone_no_head"))
    if not all(p.is_file() for p in paths):
        return "(not measured yet)"
    runs = [json.loads(p.read_text()) for p in paths]
    differences = ["difference"] if len(runs) == 2 else [f"{label} - {labels[-1]}" for label in labels[:-1]]
    lines = ["| labelled events | mode | " + " | ".join(labels) + " | " + " | ".join(differences) + " |",
             "|---" * (2 + len(runs) + len(differences)) + "|"]
    for n in sorted({r["n_train"] for r in runs[0]["rows"]}):
        for mode in ("frozen", "full", "scratch"):
            rows = [[r for r in x["rows"] if r["n_train"] == n and r["mode"] == mode] for x in runs]
            if all(rows):
                aucs = [_mean(r, "mean_auc") for r in rows]
                lines.append(f"| {n:,} | {mode} | " + " | ".join(f"{a:.3f}" for a in aucs) + " | "
                             + " | ".join(f"{a - aucs[-1]:+.3f}" for a in aucs[:-1]) + " |")
    return "\n".join(lines) + f"\n\n({runs[0]['test_events']:,} test events; mean one-vs-rest AUC of 0t..4t)"


def generation_comparison_table(runs: dict[str, Path]) -> str:
    """ttbar sampled from scratch with continuous decoding, and real events decoded from their own tokens by
    the head, W1 over the floor of each observable, for real_run_anomaly.sh-style results folders `runs`
    (label: folder)."""
    paths = {label: (run / "w1_continuous.json", run / "decode_fidelity.json") for label, run in runs.items()}
    if not all(p.is_file() for pair in paths.values() for p in pair):
        return "(not measured yet)"
    sampled = {label: json.loads(a.read_text()) for label, (a, _) in paths.items()}
    teacher = {label: json.loads(b.read_text())["continuous"] for label, (_, b) in paths.items()}
    lines = ["| observable | " + " | ".join(f"sampled: {label}" for label in runs) + " | "
             + " | ".join(f"real tokens, head: {label}" for label in runs) + " |", "|---" * (1 + 2 * len(runs)) + "|"]
    for name in next(iter(sampled.values())):
        lines.append(f"| {name} | " + " | ".join(_over_floor(sampled[label][name]) for label in runs) + " | "
                     + " | ".join(_over_floor(teacher[label][name]) for label in runs) + " |")
    return "\n".join(lines) + ("\n\n(W1 / floor; sampled: 10,000 ttbar events from `sample.py --process ttbar`, "
                               "continuous decoding, against Pythia ttbar; real tokens: Pythia ttbar events decoded "
                               "from their own tokens by the density head, as in the table above)")


def decode_feedback_table(runs: dict[str, Path]) -> str:
    """Real ttbar events decoded from their own tokens (decode_fidelity.py in each real_run_anomaly.sh-style
    results folder of `runs`, label: folder): at the codes' centroids (the tokenizer's, the same for every
    run), and by each run's head teacher forced and fed its own draws; W1 over the floor."""
    paths = {label: run / "decode_fidelity.json" for label, run in runs.items()}
    results = {label: json.loads(p.read_text()) for label, p in paths.items() if p.is_file()}
    if len(results) < len(runs) or not all("fed_back" in r for r in results.values()):
        return "(not measured yet)"
    first = next(iter(results.values()))
    # the head's means fed back (`--decode mean`), where every run measured them
    columns = {"continuous": "head, real features before", "fed_back": "head, its own draws before"}
    if all("mean" in r for r in results.values()):
        columns["mean"] = "head's means, fed back"
    lines = ["| observable | centroids | " + " | ".join(f"{what}: {label}" for label in runs
                                                       for what in columns.values()) + " |",
             "|---" * (2 + len(columns) * len(runs)) + "|"]
    for name, row in first["centroid"].items():
        lines.append(f"| {name} | {_over_floor(row)} | " + " | ".join(
            _over_floor(r[c][name]) for r in results.values() for c in columns) + " |")
    if all("pairs" in r for r in results.values()):
        for key, what in (("w_window", "m(jj) in 60-100 GeV"), ("top_window", "m(bjj) in 140-200 GeV")):
            lines.append(f"| top candidates with {what} (data {first['pairs']['data'][key]:.3f}) | "
                         f"{first['pairs']['centroid'][key]:.3f} | " + " | ".join(
                             f"{r['pairs'][c][key]:.3f}" for r in results.values() for c in columns) + " |")
    return "\n".join(lines) + (f"\n\n(W1 / floor; {first['decoded']:,} Pythia ttbar events decoded from their own "
                               f"tokens against {first['reference']:,} others)")


def decode_modes_table(run: Path) -> str:
    """One backbone's ttbar under each decoding (results folder `run` of anomaly_multiplicity.sh-style scripts):
    sampled from scratch (w1_{centroid,continuous,mean}.json) and decoded from real events' own tokens
    (decode_fidelity.json: centroids, the head's draws fed back, its means fed back); W1 over the floor."""
    sampled = {m: json.loads(p.read_text()) for m in ("centroid", "continuous", "mean")
               if (p := run / f"w1_{m}.json").is_file()}
    p = run / "decode_fidelity.json"
    real = json.loads(p.read_text()) if p.is_file() else {}
    if len(sampled) < 3 or "mean" not in real:
        return "(not measured yet)"
    lines = ["| observable | sampled: centroids | sampled: head's draws | sampled: head's means | real tokens: centroids "
             "| real tokens: head's draws fed back | real tokens: head's means fed back |", "|---" * 7 + "|"]
    for name, row in sampled["centroid"].items():
        lines.append(f"| {name} | " + " | ".join(_over_floor(sampled[m][name]) for m in ("centroid", "continuous", "mean"))
                     + " | " + " | ".join(_over_floor(real[m][name]) for m in ("centroid", "fed_back", "mean")) + " |")
    return "\n".join(lines) + (f"\n\n(W1 / floor; sampled: 10,000 ttbar events from `sample.py --process ttbar "
                               f"--decode ...` against Pythia ttbar; real tokens: {real['decoded']:,} Pythia ttbar "
                               f"events decoded from their own tokens against {real['reference']:,} others)")


def head_retrain_table(runs: dict[str, Path], own: Path) -> str:
    """benchmarks/head_retrain.py: fresh heads trained alone on one frozen trunk (label: results folder with
    head_training.json and decode_fidelity.json), beside the backbone's own jointly trained head (its
    decode_fidelity.json in `own`)."""
    def read(folder: Path, name: str) -> dict | None:
        return json.loads((folder / name).read_text()) if (folder / name).is_file() else None

    results = {label: (read(r, "head_training.json"), read(r, "decode_fidelity.json")) for label, r in runs.items()}
    own_decoded = read(own, "decode_fidelity.json")
    if own_decoded is None or not all(t and d for t, d in results.values()):
        return "(not measured yet)"
    training, _ = next(iter(results.values()))
    rows = [("the backbone's own (trained with the trunk)", training["val_density_backbone_head"], own_decoded)]
    rows += [(label, t["val_density"], d) for label, (t, d) in results.items()]
    lines = ["| head | held-out density per object (head coordinates, lower is better) | fed back: m(jj) | m(bjj) | "
             "W window | top window | means fed back: m(jj) | m(bjj) |", "|---" * 8 + "|"]
    for label, density, d in rows:
        means = [_over_floor(d["mean"][k]) if "mean" in d else "" for k in ("m(jj) [GeV]", "m(bjj) [GeV]")]
        lines.append(f"| {label} | {density:.3f} | {_over_floor(d['fed_back']['m(jj) [GeV]'])} | "
                     f"{_over_floor(d['fed_back']['m(bjj) [GeV]'])} | {d['pairs']['fed_back']['w_window']:.3f} | "
                     f"{d['pairs']['fed_back']['top_window']:.3f} | {means[0]} | {means[1]} |")
    return "\n".join(lines) + (f"\n\n({training['steps']:,} steps of {training['batch_size']} events on the frozen "
                               f"trunk; held out: {training['held_out_events']:,} of its {training['events']:,} "
                               "training events; W1 / floor and windows from 10,000 Pythia ttbar events decoded "
                               "from their own tokens, data 0.429 and 0.384)")


PAIR_COMPLETION_RUNS = {f"token, seed {seed}": RESULTS / "pair_completion" / f"{name}.json"
                        for seed, name in ((0, "multiplicity"), (1, "multiplicity_seed1"))}
PARTNER_PROBE_RUNS = tuple((f"token, seed {seed}", RESULTS / "partner_probe" / f"{name}_{pair}.json")
                           for seed, name, pair in ((0, "multiplicity", "relative"), (1, "multiplicity_seed1", "relative"),
                                                    (0, "multiplicity", "direction")))


def pair_completion_table(runs: dict[str, Path], window: str) -> str:
    """benchmarks/pair_completion.py: per number of real objects given, the share of the data's `window`
    fraction above its pairless floor that each run's completions place, at the codes' centroids and at the
    head's means."""
    results = {label: json.loads(p.read_text()) for label, p in runs.items() if p.is_file()}
    if len(results) < len(runs):
        return "(not measured yet)"
    name = {"w_window": "m(jj) in 60-100 GeV", "top_window": "m(bjj) in 140-200 GeV"}[window]
    head = ["objects given", f"data: {name} (its pairless floor)"]
    for label in results:
        head += [f"{label}: completed (its floor)", "share placed at the centroids", "at the head's means"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    first = next(iter(results.values()))
    for i, entry in enumerate(first["prefixes"]):
        given = "none, counts drawn" if entry["given"] == "scratch" else \
            f"{entry['given']}, with the counts" if entry["given"] else "none, with the counts"
        data = entry["centroid"]
        row = [given, f"{data['data'][window]:.3f} ({data['data_floor'][window]:.3f})"]
        for result in results.values():
            e = result["prefixes"][i]
            c = e["centroid"]
            row += [f"{c['completed'][window]:.3f} ({c['completed_floor'][window]:.3f})",
                    f"{c['placed'][window]:.2f}", f"{e['mean']['placed'][window]:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + (f"\n\n({first['completed']:,} Pythia {first['process']} events unseen in training, "
                               "each completed from its first real objects; data and floors at the codes' centroids, "
                               "floors averaged over 4 random turns; share placed: (completed - its floor) / "
                               "(data - its floor))")


def probe_generation_table(runs: tuple[tuple[str, Path], ...]) -> str:
    """benchmarks/pair_completion.py with and without --probe: ttbar from scratch and completed from two real
    jets, the windows' shares placed and W1 over the floor against the training file."""
    if not all(p.is_file() for _, p in runs):
        return "(not measured yet)"
    observables = ("jets", "b-jets", "HT [GeV]", "leading jet pt [GeV]", "m(jj) [GeV]", "m(bjj) [GeV]")
    data = json.loads(runs[0][1].read_text())["prefixes"][0]["mean"]["data"]
    lines = [f"| run | objects given | m(jj) in 60-100 GeV: completed (its floor; data {data['w_window']:.3f}) | "
             f"share placed | m(bjj) in 140-200 GeV (data {data['top_window']:.3f}) | share placed | "
             + " | ".join(f"W1/floor {o}" for o in observables) + " |", "|---" * (6 + len(observables)) + "|"]
    for label, path in runs:
        result = json.loads(path.read_text())
        for entry in result["prefixes"]:
            if entry["given"] not in ("scratch", 2):
                continue
            m = entry["mean"]
            given = "none, counts drawn" if entry["given"] == "scratch" else "2 jets, with the counts"
            w1 = entry.get("w1_over_floor", {})
            lines.append(f"| {label} | {given} | {m['completed']['w_window']:.3f} ({m['completed_floor']['w_window']:.3f}) | "
                         f"{m['placed']['w_window']:.2f} | {m['completed']['top_window']:.3f} "
                         f"({m['completed_floor']['top_window']:.3f}) | {m['placed']['top_window']:.2f} | "
                         + " | ".join(f"{w1[o]:.1f}" if o in w1 else "" for o in observables) + " |")
    n = json.loads(runs[0][1].read_text())["completed"]
    return "\n".join(lines) + (f"\n\n({n:,} Pythia ttbar events unseen in training, completed as sample.py --decode mean "
                               "samples, read at the head's means; W1 / floor against the 24,000 ttbar events of the "
                               "training file)")


def partner_probe_table(runs: tuple[tuple[str, Path], ...]) -> str:
    """benchmarks/partner_probe.py: held-out gain of a mixture over partners on a frozen trunk's jet logits
    (runs: (label, result file) pairs)."""
    if not all(p.is_file() for _, p in runs):
        return "(not measured yet)"
    results = [(label, json.loads(p.read_text())) for label, p in runs]
    lines = ["| run | bumps in | held-out jets | backbone: nats per jet | with the probe | gain per jet | "
             "gain per event | gain at the 2nd / 3rd / 4th / 5th / 6th object |", "|---" * 8 + "|"]
    for label, r in results:
        by = " / ".join(f"{r['gain_by_position'].get(str(k), float('nan')):.3f}" for k in range(2, 7))
        what = {"relative": "ln m², ΔR with each earlier jet", "direction": "Δη, Δφ with each earlier jet (control)"}[r["pair"]]
        lines.append(f"| {label} | {what} | {r['held_out_jets']:,} | {r['nll_backbone']:.3f} | {r['nll_probe']:.3f} | "
                     f"{r['gain_per_jet']:.3f} | {r['gain_per_event']:.3f} | {by} |")
    r = results[0][1]
    return "\n".join(lines) + (f"\n\n(the probe trained {r['steps']:,} steps of {r['batch_size']} events on the trunk's "
                               f"hidden states of its {r['training_events']:,} {r['process']} training events; held out: "
                               f"{r['held_out_events']:,} Pythia {r['process']} events it never saw; each jet's code "
                               "scored among its type's codes)")


def sampling_noise_table(names: tuple[str, ...] = ("sampling_noise_wjets_multiplicity",)) -> str:
    """benchmarks/sampling_noise.py: W1 over the floor of one backbone's process under several sampler seeds,
    beside the multiplicity token's exact count fit."""
    paths = [RESULTS / f"{name}.json" for name in names]
    if not all(p.is_file() for p in paths):
        return "(not measured yet)"
    lines = []
    for r in (json.loads(p.read_text()) for p in paths):
        observables = list(r["draws"][0]["w1_over_floor"])
        if not lines:
            lines = ["| process | draw | mean jets | " + " | ".join(f"W1/floor {k}" for k in observables) + " |",
                     "|---" * (3 + len(observables)) + "|"]
        lines.append(f"| {r['process']} | data | {r['real_mean_jets']:.3f} |" + " |" * len(observables))
        for d in r["draws"]:
            lines.append(f"| | seed {d['seed']} | {d['mean_jets']:.3f} | "
                         + " | ".join(f"{d['w1_over_floor'][k]:.1f}" for k in observables) + " |")
        if "fit" in r:
            fit = r["fit"]
            lines.append(f"| | the token's distribution, exactly | {fit['mean_jets']:.3f} | "
                         + " | ".join(f"{fit['w1_over_floor'][k]:.1f}" if k in fit["w1_over_floor"] else ""
                                      for k in observables) + " |")
    return "\n".join(lines) + f"\n\n({r['events']:,} generated events per draw, top-p {r['top_p']}; `{r['backbone']}`)"


def real_nanoaod_table() -> str:
    """A real NanoAOD file scored beside simulated events, with and without the object selection
    (benchmarks/real_file_scores.py)."""
    p = RESULTS / "real_nanoaod" / "scores.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    lines = ["| score | median simulated | median real (no selection) | median real (reco) | "
             "percentile (no selection) | percentile (reco) |", "|---|---|---|---|---|---|"]
    for c, row in r["columns"].items():
        name = "HT [GeV] (the simplest cut)" if c == "HT" else c
        lines.append(f"| {name} | {row['median simulated']:.3g} | {row['median real (none)']:.3g} | "
                     f"{row['median real (reco)']:.3g} | {row['percentile real (none)']:.2f} | "
                     f"**{row['percentile real (reco)']:.2f}** |")
    lines += ["", "| observable | W1 / floor (no selection) | p | W1 / floor (reco) | p |", "|---|---|---|---|---|"]
    none, reco = r["compare"]["none"], r["compare"]["reco"]
    for name in none:
        a, b = none[name], reco[name]
        lines.append(f"| {name} | {_over_floor(a)} | {a['p_value']:.3f} | {_over_floor(b)} | "
                     f"{b['p_value']:.3f} |")
    flags = ", ".join(f"{sel}: " + ", ".join(f"flag {k}: {v}" for k, v in f.items()) for sel, f in r["flags"].items())
    return "\n".join(lines) + (f"\n\n({r['n_real']} real events against {r['n_simulated']} simulated, "
                               f"{r['simulated']}; events per flag value, {flags})")


def nanoaod_speed_table() -> str:
    """Reading real NanoAOD, TTree against RNTuple, with and without the selection (nanoaod_read_speed.py)."""
    p = RESULTS / "nanoaod_read_speed.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    lines = ["| layout | no selection | `reco` selection |", "|---|---|---|"]
    for layout in ("TTree", "RNTuple"):
        lines.append(f"| {layout} | {r[f'{layout} selection none']:,} events/s | "
                     f"{r[f'{layout} selection reco']:,} events/s |")
    return "\n".join(lines) + f"\n\n({r['events']:,} events: the shared real file tiled; 2-core CPU)"


def _first_then_median(row: dict) -> str:
    """A file job's task seconds: the first on each worker (torch imported, model loaded), then the median."""
    if "task_seconds" not in row:
        return ""
    first, rest, seen = [], [], set()
    for seconds, worker in zip(row["task_seconds"], row["task_worker"]):
        (rest if worker in seen else first).append(seconds)
        seen.add(worker)
    return f"{max(first):.2f}, then {statistics.median(rest):.2f}" if rest else f"{max(first):.2f}"


def dask_table(path: Path = RESULTS / "dask_throughput.json") -> str:
    """Generation, tokenizing and scoring in this process, forked processes and Dask LocalClusters, with
    the engines' start-up and per-task costs (benchmarks/dask_throughput.py)."""
    if not path.is_file():
        return "(not measured yet)"
    r = json.loads(path.read_text())
    g, m, ov = r["generation"], r["machine"], r["overhead"]
    files = lambda s: f"{s['files']} files x {s['events_per_file']:,} events"  # noqa: E731
    jobs = [(f"generation, {g['process']}, {g['events']:,} events", g),
            (f"tokenizing, {files(r['tokenization'])}", r["tokenization"]),
            (f"scoring ({', '.join(r['scoring']['methods'])}; {r['scoring']['scorer'].get('n_masks', 8)} maskings), "
             f"{files(r['scoring'])}", r["scoring"])]
    lines = ["| job | engine | workers | events/s (without start-up) | speed-up vs 1 worker | a file's seconds: "
             "first on its worker, then median |", "|---|---|---|---|---|---|"]
    for label, job in jobs:
        for i, row in enumerate(job["rows"]):
            rate = f"{row['events_per_s']:,.0f}"
            if row["startup_s"]:
                rate += f" ({row['events_per_s_without_startup']:,.0f})"
            up = job["speedup_2_vs_1"].get(row["engine"]) if row["workers"] > 1 else None
            up = f"{up['events_per_s']:.2f}x ({up['events_per_s_without_startup']:.2f}x)" if up else ""
            lines.append(f"| {label if i == 0 else ''} | {row['engine']} | {row['workers']} | {rate} | {up} | "
                         f"{_first_then_median(row)} |")
    start = ov["startup_s"]
    repeats = max(s["repeats"] for s in start.values())
    lines += ["", f"Start-up (open, first no-op task, close; median of {repeats}): "
              + ", ".join(f"{name} {s['total_s']:.2f} s" for name, s in start.items()) + ". "
              f"Per no-op task, {ov['tasks']} submitted at once: "
              + ", ".join(f"{name} {c['per_task_ms']:.3f} ms" for name, c in ov["task_ms"].items())
              + f"; one at a time ({ov['round_trips']} round trips): "
              + ", ".join(f"{name} {c['round_trip_ms']:.3f} ms" for name, c in ov["task_ms"].items()) + "."]
    if "malloc" in r:
        slow = [f"{r['malloc'][k]:.1f}x with {k.split('_')[1]} thread(s)" for k in r["malloc"] if k.startswith("slowdown")]
        lines += ["", "Dask's default MALLOC_TRIM_THRESHOLD_=65536 in a worker slows small torch layers "
                  f"{' and '.join(slow)}; `--scheduler local` starts its workers without it."]
    same = "identical generated events on every engine" if g["identical"] else \
        "**the engines generated different events**"
    quick = "; **smoke run (--quick): sizes too small to read as throughput**" if r["quick"] else ""
    lines.append(f"\n({m['cpu_count']} cores, {m['platform']}, torch {m['torch']}, Dask {m['dask']}, {r['date']}; "
                 f"{same}{quick}; `{r.get('command', 'python benchmarks/dask_throughput.py')}`)")
    return "\n".join(lines)


def headline_table() -> str:
    """The README's few headline numbers, each linking to its section of docs/results.md."""
    link = lambda anchor: f"[details](docs/results.md#{anchor})"  # noqa: E731
    rows = []
    p = RESULTS / "tokenizer_real_run_event.json"
    if p.is_file():
        m = json.loads(p.read_text())
        il = m["information_loss"]
        rows.append(("one token per object (8192 codes, event mode)",
                     f"{il['task'].replace('wjets', 'W+jets')} AUC {il['auc_original']:.4f} on the original objects, "
                     f"{il['auc_tokenized']:.4f} after tokenize and decode; {m['codebook_usage']:.0%} of the codes used",
                     link("tokenizer")))
    p = RESULTS / "real_run_event_cpu" / "data_efficiency.json"
    if p.is_file() and (f := (json.loads(p.read_text()).get("label_factor") or {}).get("full")):
        rows.append(("pretraining saves labels (0t..4t classes, mean one-vs-rest AUC)",
                     f"full fine-tuning reaches from-scratch's best ({f['scratch_best']:.3f} with {f['scratch_n']:,} "
                     f"labels) with {f['n_needed']:,} labels: {f['factor']:.0f}x fewer", link("the-real-event-mode-run")))
    p = _density_run() / "anomaly_table.json"
    if p.is_file():
        r = json.loads(p.read_text())
        sm = {sig: by_bkg["SM mix"] for sig, by_bkg in r["signals"].items()}
        aucs = [row["density_nll"]["auc"] for row in sm.values()]
        worst_cut = max(r["references"], key=lambda c: min(row[c]["auc"] for row in sm.values()))
        losses = sum(row["density_nll"]["auc"] < max(row[c]["auc"] for c in r["references"]) for row in sm.values())
        aucs_text = f"AUC {min(aucs):.3f} to {max(aucs):.3f}"
        if (today := _configured_run() / "anomaly_table.json").is_file():
            now = [b["SM mix"]["density_nll"]["auc"] for b in json.loads(today.read_text())["signals"].values()]
            aucs_text += f" (with the event configs as they are today: {min(now):.3f} to {max(now):.3f})"
        rows.append((f"anomaly detection: {len(sm)} signals never seen, against the SM mix",
                     f"default score `density_nll`: {aucs_text}. A one-variable cut chosen "
                     f"in advance falls lower on some signal (the best worst case, {worst_cut}: "
                     f"{min(row[worst_cut]['auc'] for row in sm.values()):.3f}); the cut that defines each signal "
                     f"beats `density_nll` on {losses} of {len(sm)}", link("anomaly-scores-that-see-kinematics")))
    # the CPU recipe as configured (feature logits), sampled as sample.py samples by default (each type's 0.98 nucleus)
    found = {seed: RESULTS / f"conditional_generation_feature_logits_seed{seed}_guidance1_top_p0.98.json" for seed in (0, 1)}
    found = {seed: json.loads(p.read_text())["processes"] for seed, p in found.items() if p.is_file()}
    seeds = list(found.values())
    if seeds:
        def worst(o: str, runs: list = seeds) -> str:
            return " / ".join(f"{v:.1f}x" + (f" ({proc})" if o == "jets" else "") for v, proc in
                              (max((x["w1_over_floor"][o], proc) for proc, x in r.items()) for r in runs))

        within = " / ".join(str(sum(x["w1_over_floor"]["jets"] <= 2 for x in r.values())) for r in seeds)
        no_jet = " / ".join(f"{100 * r['ttbar']['generated']['no_jet']:.1f}%" for r in seeds)
        counts = lambda r: str(sum(x["w1_over_floor"][o] <= 2 for x in r.values()  # noqa: E731
                                   for o in ("jets", "b-jets", "leptons")))
        token = [json.loads(p.read_text())["processes"] for p in
                 (_generation_result(f"multiplicity_seed{seed}", 0.98) for seed in (0, 1)) if p.is_file()]
        # on 60,500 events, each process its own draw, and the exact fit
        own = [json.loads(p.read_text())["processes"] for p in
               (_generation_result(f"anom_multiplicity_seed{seed}", 0.98) for seed in (0, 1)) if p.is_file()]
        exact = lambda r: str(sum(v <= 2 for x in r.values() for v in x["count_fit_w1_over_floor"].values()))  # noqa: E731
        opt_in = "" if len(token) < 2 or len(own) < 2 else (
            f"; with the multiplicity token (`data.multiplicity_token`, in the event configs since 2026-12-06) the "
            f"jet, b-jet and lepton counts are within 2x in {' / '.join(map(counts, token))} of 18 cells (without: "
            f"{' / '.join(map(counts, seeds))}; one draw for every process), m(bjj) {worst('m(bjj) [GeV]', token)}; "
            f"on 60,500 events with each process's own draw, seed 0 / 1: {' / '.join(map(counts, own))} of 18, "
            f"and {' / '.join(map(exact, own))} of 18 in the token's own distribution")
        fidelity = RESULTS / "anomaly_multiplicity_cpu" / "decode_fidelity.json"
        if opt_in and fidelity.is_file():  # the part of the mass goal the tokenizer alone misses
            decoded = json.loads(fidelity.read_text())
            opt_in += (f"; ttbar's m(bjj) decoded from its own tokens at the codes' centroids: "
                       f"{_over_floor(decoded['centroid']['m(bjj) [GeV]'])}x")
            if "mean" in decoded:
                opt_in += f", at the density head's means (`--decode mean`): {_over_floor(decoded['mean']['m(bjj) [GeV]'])}x"
        rows.append((f"conditional generation (`sample.py --process`), {len(seeds[0])} SM processes, the CPU event "
                     "config on 242,000 events",
                     f"W1 over its statistical floor (goal: 2x) at worst, seed {' / '.join(map(str, found))}: "
                     f"jets {worst('jets')}, HT {worst('HT [GeV]')}, m(bjj) {worst('m(bjj) [GeV]')}; the jet count "
                     f"within 2x for {within} of {len(seeds[0])} processes; ttbar events with no jet {no_jet} (data "
                     f"{100 * seeds[0]['ttbar']['real']['no_jet']:.1f}%){opt_in}",
                     link("conditional-generation-per-process")))
    if (found := _ntop_aucs()) is not None:
        sizes, table = found
        i = len(sizes) - 1
        ours = {k: v[i] for k, v in table.items() if k.startswith("ours") and v[i] is not None}
        theirs = {k: v[i] for k, v in table.items() if not k.startswith("ours") and v[i] is not None}
        o, t = max(ours, key=ours.get), max(theirs, key=theirs.get)
        jets = _jets_rows()
        ours_j = max((r for r in jets if r[0].startswith("ours")), key=lambda r: r[3], default=None)
        theirs_j = max((r for r in jets if not r[0].startswith("ours")), key=lambda r: r[3], default=None)
        text = (f"0t..4t with {sizes[i]:,} labels: ours {ours[o]:.3f} ({o[6:]}), best baseline {theirs[t]:.3f} ({t})")
        if ours_j and theirs_j:
            text += f"; top vs QCD jets: ours {ours_j[3]:.3f}, best baseline {theirs_j[3]:.3f} ({theirs_j[0]})"
        rows.append(("against the baselines physicists use", text, link("against-the-baselines")))
    p = RESULTS / "real_nanoaod" / "scores.json"
    if p.is_file():
        r = json.loads(p.read_text())
        c = r["columns"]["density_nll"]
        rows.append((f"real CMS Open Data NanoAOD ({r['n_real']} ttbar events)",
                     f"mean percentile of `density_nll` among simulated ttbar: {c['percentile real (none)']:.2f} as "
                     f"read, {c['percentile real (reco)']:.2f} with the `reco` object selection (0.5: alike)",
                     link("a-real-nanoaod-file")))
    p = RESULTS / "backbone_h100.json"
    if p.is_file():
        r = json.loads(p.read_text())
        train = max(v for k, v in r["train_speedup_vs_hf"].items() if k.startswith("ours"))
        ours = max((v for k, v in r["sample"].items() if k.startswith("ours")), key=lambda v: v["events_per_s"])
        hf = r["sample"]["huggingface generate"]
        rows.append((f"speed against Hugging Face GPT-2 of the same size ({r['device']})",
                     f"training {train:.1f}x the tokens/s; sampling {r['sample_speedup_vs_hf']:.1f}x the events/s "
                     f"(batch {ours['batch']:,} against `generate` at {hf['batch']:,})", link("backbone-speed")))
    lines = ["| what | result | |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def signal_injection_table() -> str:
    """Signals injected into data: every method's SIC and AUC by injected fraction (signal_injection.py)."""
    from signal_injection import markdown

    p = RESULTS / "signal_injection_cpu.json"
    if not p.is_file():
        return "(not measured yet)"
    r = json.loads(p.read_text())
    out = markdown(r) + f"\n({r['date']}; `bash benchmarks/signal_injection.sh`, {r['seconds'] // 60} min on 2 cores)"
    head = RESULTS / "signal_injection_cpu_head.json"
    if head.is_file():  # the backbone's head costs minutes per training on a CPU: one signal, fraction and seed
        h = json.loads(head.read_text())
        s = h["settings"]
        out += (f"\n\nThe backbone's `head` at {', '.join(f'{f:.1%}' for f in s['head_fractions'])} injection "
                f"(references: {', '.join(s['head_references'])}; seeds {s['head_seeds']}; {s['head_epochs']} epochs, "
                f"{s['folds']} folds), on the same events as the table above's seed 0:\n\n"
                + markdown(h, tuple(s["head_fractions"])).split("\nAt 1% injection")[0]
                + f"\n({h['date']}; {h['seconds'] // 60} min on 2 cores)")
    return out


TABLES = {"nanoaod-speed-table": nanoaod_speed_table, "real-nanoaod-table": real_nanoaod_table, "generate-table": generate_table, "tokenizer-table": tokenizer_table, "encoder-table": encoder_table,
          "backbone-table": backbone_table, "finetune-table": real_run_table, "constituent-table": constituent_table,
          "hybrid-table": hybrid_table, "memory-table": memory_table, "baseline-table": baseline_table,
          "jets-baseline-table": jets_baseline_table, "anomaly-baseline-table": anomaly_baseline_table,
          "scaling-table": scaling_table, "speed-table": speed_table,
          "density-anomaly-table": density_anomaly_table, "density-generation-table": density_generation_table,
          "density-backbone-comparison-table": density_backbone_comparison_table,
          "conditional-default-table": lambda: conditional_generation_table("conditional_generation_default_cpu"),
          "conditional-event-small-table": lambda: conditional_generation_table("conditional_generation_event_small_hazard"),
          "conditional-no-masked-table": lambda: conditional_generation_table("conditional_generation_no_masked_cpu"),
          "conditional-checkpoints-table": conditional_checkpoints_table,
          "conditional-ema-table": conditional_ema_table,
          "conditional-variants-table": conditional_variants_table,
          "conditional-guidance-table": conditional_guidance_table,
          "conditional-guidance-process-table": conditional_guidance_process_table,
          "conditional-low-lr-table": conditional_low_lr_table,
          "conditional-more-data-table": conditional_more_data_table,
          "conditional-type-weight-table": conditional_type_weight_table,
          "batch-gradient-norms-table": batch_gradient_norms_table,
          "conditional-batching-table": conditional_batching_table,
          "conditional-uniform-batches-table": conditional_uniform_batches_table,
          "conditional-uniform-batches-process-table":
              lambda: conditional_generation_table("conditional_generation_uniform_batches_seed0_guidance1"),
          "first-met-table": first_met_table,
          "conditional-top-p-table": conditional_top_p_table,
          "conditional-top-p-process-table":
              lambda: conditional_generation_table("conditional_generation_uniform_batches_seed0_guidance1_top_p0.95"),
          "generation-drift-table": generation_drift_table,
          "conditional-width-table": conditional_width_table,
          "conditional-frame-table": conditional_frame_table,
          "conditional-feature-basis-table": lambda: conditional_frame_table(FEATURE_BASIS_RUNS),
          "feature-logits-guidance-table": feature_logits_guidance_table,
          "multiplicity-table": multiplicity_table,
          "multiplicity-anomaly-table": lambda: density_backbone_comparison_table(
              (_configured_run() / "anomaly_table.json", RESULTS / "anomaly_multiplicity_cpu" / "anomaly_table.json"),
              ("without", "with the token")),
          "multiplicity-process-table":
              lambda: conditional_generation_table("conditional_generation_multiplicity_seed0_guidance1_top_p0.98"),
          "second-lepton-table": second_lepton_table,
          "sampling-noise-table": sampling_noise_table,
          "multiplicity-own-draws-table":
              lambda: conditional_generation_table("conditional_generation_anom_multiplicity_seed0_guidance1_top_p0.98"),
          "multiplicity-finetune-table": lambda: density_finetune_table(
              (RESULTS / "anomaly_multiplicity_cpu" / "data_efficiency_backbone_multiplicity.json",
               RESULTS / "anomaly_multiplicity_cpu_seed1" / "data_efficiency_backbone_multiplicity_seed1.json",
               _configured_run() / "data_efficiency_backbone.json"),
              ("with the token, seed 0", "with the token, seed 1", "without")),
          "momentum-process-table": lambda: conditional_frame_table(
              (("token, seed 0", "anom_multiplicity_seed0", (0.98,)), ("token, seed 1", "anom_multiplicity_seed1", (0.98,)),
               ("token + momentum logits, seed 0", "anom_momentum_seed0", (0.98,)),
               ("token + momentum logits, seed 1", "anom_momentum_seed1", (0.98,)))),
          "momentum-generation-table": lambda: generation_comparison_table(
              {"token, seed 0": RESULTS / "anomaly_multiplicity_cpu", "token, seed 1": RESULTS / "anomaly_multiplicity_cpu_seed1",
               "token + momentum logits, seed 0": RESULTS / "anomaly_momentum_cpu",
               "token + momentum logits, seed 1": RESULTS / "anomaly_momentum_cpu_seed1"}),
          "momentum-feedback-table": lambda: decode_feedback_table(
              {"token, seed 0": RESULTS / "anomaly_multiplicity_cpu",
               "token + momentum logits, seed 0": RESULTS / "anomaly_momentum_cpu",
               "token + momentum logits, seed 1": RESULTS / "anomaly_momentum_cpu_seed1"}),
          "decode-modes-table": lambda: decode_modes_table(RESULTS / "anomaly_multiplicity_cpu"),
          "head-retrain-table": lambda: head_retrain_table(
              {f"fresh, {k}": RESULTS / "head_retrain_cpu" / folder for k, folder in
               (("8 components (the control)", "k8"), ("8 components + pairs (89bcb86)", "k8_pairs64"),
                ("32 components", "k32"))}, RESULTS / "anomaly_multiplicity_cpu"),
          "head-retrain-seed1-table": lambda: head_retrain_table(
              {f"fresh, {k}": RESULTS / "head_retrain_cpu" / folder for k, folder in
               (("8 components (the control)", "seed1_k8"), ("32 components", "seed1_k32"))},
              RESULTS / "anomaly_multiplicity_cpu_seed1"),
          "pair-completion-w-table": lambda: pair_completion_table(PAIR_COMPLETION_RUNS, "w_window"),
          "pair-completion-top-table": lambda: pair_completion_table(PAIR_COMPLETION_RUNS, "top_window"),
          "partner-probe-table": lambda: partner_probe_table(PARTNER_PROBE_RUNS),
          "probe-generation-table": lambda: probe_generation_table(
              tuple((f"token, seed {seed}{probe}", RESULTS / "pair_completion" / f"{name}{suffix}.json")
                    for seed, name in ((0, "multiplicity"), (1, "multiplicity_seed1"))
                    for probe, suffix in (("", "_n6000"), (", with the partner probe", "_probe")))),
          "decode-feedback-table": lambda: decode_feedback_table(
              {"token, seed 0": RESULTS / "anomaly_multiplicity_cpu", "token, seed 1": RESULTS / "anomaly_multiplicity_cpu_seed1"}),
          "multiplicity-generation-table": lambda: generation_comparison_table(
              {"without": _configured_run(), "with the token, seed 0": RESULTS / "anomaly_multiplicity_cpu",
               "with the token, seed 1": RESULTS / "anomaly_multiplicity_cpu_seed1"}),
          "feature-logits-generation-table": lambda: density_generation_table(_configured_run()),
          "feature-logits-likelihood-table": lambda: density_likelihood_table(_configured_run()),
          "feature-logits-finetune-table": lambda: density_finetune_table(
              (_configured_run() / "data_efficiency_backbone.json", _density_run() / "data_efficiency_backbone.json"),
              ("today's backbone", "2026-11-29 backbone")),
          "feature-logits-anomaly-table": lambda: density_backbone_comparison_table(
              (_density_run() / "anomaly_table.json", _configured_run() / "anomaly_table.json"),
              ("2026-12-04", "today")),
          "conditional-frame-process-table":
              lambda: conditional_generation_table("conditional_generation_feature_logits_seed0_guidance1_top_p0.98"),
          "finetune-batching-table": finetune_batching_table,
          "length-split-speed-table": length_split_speed_table,
          "density-order-bias-table": density_order_bias_table,
          "conditional-more-data-process-table":
              lambda: conditional_generation_table("conditional_generation_more_data_pt_order_seed0_guidance1"),
          "density-likelihood-table": density_likelihood_table, "masked-study-table": masked_study_table,
          "density-finetune-table": density_finetune_table, "dask-table": dask_table,
          "signal-injection-table": signal_injection_table}


#: which tables each document holds (paths relative to the repository)
DOCUMENTS = {"docs/results.md": TABLES, "README.md": {"headline-table": headline_table, "dask-table": dask_table}}


def rendered(text: str, tables: dict = TABLES, where: str = "docs/results.md") -> str:
    """`text` (the document `where`) with each of `tables` rendered anew from the results."""
    for name, render in tables.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{where} has no <!-- {name}:start/end --> markers")
        text = pattern.sub(lambda m: m.group(1) + render() + "\n" + m.group(2), text)
    return text


def main() -> None:
    for name, tables in DOCUMENTS.items():
        path = ROOT / name
        text = path.read_text()
        new = rendered(text, tables, name)
        if new != text:
            path.write_text(new)
        print(f"{'updated' if new != text else 'unchanged'}: {name}")


if __name__ == "__main__":
    main()
