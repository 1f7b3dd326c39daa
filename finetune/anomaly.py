"""python -m finetune.anomaly: anomaly scores of data events, and how well they find a signal.

    python -m finetune.anomaly score --backbone RUN --tokenizer RUN --input data.root --out scores.h5 \
        [--format nanoaod] [--method density nll masked entropy head calibrated] [--classifier RUN] \
        [--reference sm.h5 ...] [--class-events 200]
    python -m finetune.anomaly score ... --input 'data/*.root' --out scores/ [--scheduler local:4]
    python -m finetune.anomaly evaluate --background bkg_scores.h5 --signal sig_scores.h5 --out DIR
    python -m finetune.anomaly evaluate --scores mixed_scores.h5 --signal-process tttt_proxy --out DIR

`score` (a thin caller of finetune.scorer.AnomalyScorer, run over files by finetune.score_files)
streams each input once (files larger than
memory) and writes one row per event, in input order, with its id, a flag word (objects beyond the
caps 1, unknown object types 2, no objects 4) and one column per score (see finetune.scores). The
default, for a backbone with a density head, is the density scores first (density_nll, surprise),
then nll, masked and quantization (which object contributes most, and in HDF5 every object's
contribution, come with them). `calibrated` (with --reference: Standard Model events the model was
not trained on) is uniform for background events of every object count. `evaluate` gives ROC AUC, maximum significance improvement and
background rejection at 10%/30%/50% signal efficiency per score, with plots.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from common.cli import (UserError, add_model_arguments, check_output_folder, device_name, fraction,
                        nonnegative_int, positive_int, resolve_models, run_cli)
from events.options import add_read_arguments, read_options


def score(args) -> int:
    from common.filejobs import expand_inputs, is_single_output, print_report, run_file_job
    from common.provenance import run_info
    from finetune.score_files import SINGLE_SUFFIXES, ScoreJob

    resolve_models(args)
    inputs, references = expand_inputs(args.input), expand_inputs(args.reference or ())
    options = {"batch_size": args.batch_size, "mask_rate": args.mask_rate, "n_masks": args.n_masks,
               "seed": args.seed, "folds": args.folds, "head_mode": args.head_mode, "head_epochs": args.head_epochs,
               "head_events": args.head_events, "class_events": args.class_events}
    classifier = str(args.classifier) if args.classifier and "entropy" in (args.method or ()) else None
    run = run_info(json.loads(json.dumps(vars(args), default=str)), args.seed, args.device)
    job = ScoreJob(str(args.backbone), str(args.tokenizer), tuple(args.method) if args.method else None, classifier,
                   tuple(references), args.reference_format, args.format, read_options(args), options,
                   args.device, args.step_size, run,
                   progress=not args.quiet and len(inputs) == 1 and args.scheduler == "none")
    report = run_file_job(job, inputs, args.out, single=is_single_output(args.out, SINGLE_SUFFIXES),
                          protected=[args.backbone, args.tokenizer, *([args.classifier] if args.classifier else []),
                                     *references],
                          scheduler=args.scheduler, redo=args.redo, progress=not args.quiet)
    return print_report(report, args.out)


def _concatenated(paths) -> dict[str, np.ndarray]:
    """The columns every score file of `paths` has, concatenated in order."""
    from finetune.score_store import read_scores

    tables = [read_scores(p) for p in paths]
    common = set.intersection(*(set(t) for t in tables))
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0] if k in common}


def split_by_process(table: dict[str, np.ndarray], signal: str) -> tuple[dict, dict]:
    """(background, signal) rows of score columns `table`: the signal is the events of process `signal`."""
    is_signal = table["process"] == signal
    if not is_signal.any() or is_signal.all():
        raise UserError(f"--signal-process {signal!r} must be some but not all of the events; the "
                        f"files hold {sorted(set(table['process'].tolist()) - {''})}")
    return tuple({k: v[m] for k, v in table.items()} for m in (~is_signal, is_signal))


def compare(bkg: dict, sig: dict, methods=None) -> tuple[dict, dict]:
    """Per score column in both (or in `methods`): (binary metrics, (labels, scores) for plots);
    non-finite scores (flagged events) are left out."""
    from finetune.metrics import binary_metrics
    from finetune.score_store import NOT_SCORES

    columns = [c for c in bkg if c not in NOT_SCORES and c in sig and (not methods or c in methods)]
    if not columns:
        raise UserError("no score column in common between the background and signal events")
    table, curves = {}, {}
    for c in columns:
        b, s = bkg[c][np.isfinite(bkg[c])], sig[c][np.isfinite(sig[c])]
        labels, scores = np.concatenate([np.zeros(len(b)), np.ones(len(s))]), np.concatenate([b, s])
        table[c] = binary_metrics(labels, scores)
        curves[c] = (labels, scores)
    return table, curves


def evaluate(args) -> int:
    from finetune.plots import plot_anomaly

    check_output_folder(args.out, [*(args.scores or ()), *(args.background or ()), *(args.signal or ())])
    if args.scores:
        if not args.signal_process:
            raise UserError("--scores needs --signal-process NAME: the process whose events are the signal")
        bkg, sig = split_by_process(_concatenated(args.scores), args.signal_process)
    elif args.background and args.signal:
        bkg, sig = _concatenated(args.background), _concatenated(args.signal)
    else:
        raise UserError("give --background FILES and --signal FILES, or --scores FILES and --signal-process NAME")
    table, curves = compare(bkg, sig, args.methods)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "anomaly_metrics.json").write_text(json.dumps(table, indent=2))
    plot_anomaly(curves, out / "anomaly_roc_sic.png")
    print(f"{len(bkg['event'])} background and {len(sig['event'])} signal events")
    print("| score | AUC | max SIC | rejection at 10% | at 30% |\n|---|---|---|---|---|")
    for c, m in table.items():
        print(f"| {c} | {m['auc']:.3f} | {m['max_sic']:.2f} | {m['rejection_at_10']:.1f} | {m['rejection_at_30']:.1f} |")
    print(f"metrics and plots in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from common.executors import add_scheduler_argument
    from finetune.calibration import CLASS_EVENTS
    from finetune.scorer import METHODS

    parser = argparse.ArgumentParser(prog="python -m finetune.anomaly", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="anomaly scores of every event of event files",
                       description="One row per event, in input order, for every event of the input files: one "
                                   "score file per input (--out FOLDER) or one combined file (--out FILE.h5 or "
                                   ".csv, each row's input recorded). A rerun skips the files already complete.")
    add_model_arguments(p, backbone="default")
    p.add_argument("--input", required=True, nargs="+", metavar="FILE",
                   help="data events (ROOT or HDF5): paths, globs ('data/*.root', quoted), URLs (root://...), or "
                        "@LIST, a text file of them one per line")
    p.add_argument("--format", default="auto", help="input format (default: detected), e.g. nanoaod, delphes")
    p.add_argument("--out", required=True, type=Path,
                   help="a score file FILE.h5 or FILE.csv (several inputs: combined in input order) or a FOLDER "
                        "(one NAME.scores.h5 per input)")
    p.add_argument("--method", nargs="+", choices=METHODS,
                   help="scores to compute (default: density nll masked quantization; without a density head "
                        "nll masked quantization)")
    p.add_argument("--classifier", type=Path, help="fine-tuned classifier folder (method entropy)")
    p.add_argument("--reference", nargs="+",
                   help="Standard Model reference files (methods head and calibrated): paths, globs or @LIST")
    p.add_argument("--reference-format", default="auto", help="format of the reference files")
    p.add_argument("--folds", type=positive_int, default=2, help="method head: folds (each event scored out of fold)")
    p.add_argument("--head-mode", default="frozen", choices=("frozen", "full"), help="method head: backbone mode")
    p.add_argument("--head-epochs", type=positive_int, default=10, help="method head: training epochs")
    p.add_argument("--head-events", type=positive_int, default=50_000,
                   help="method head: the first N data events the heads train on (all events are scored)")
    p.add_argument("--class-events", type=positive_int, default=CLASS_EVENTS,
                   help="method calibrated: the fewest reference events of a multiplicity class (neighbouring object "
                        "counts are pooled up to it)")
    p.add_argument("--n-masks", type=positive_int, default=8, help="method masked: maskings averaged per event")
    p.add_argument("--mask-rate", type=fraction, default=0.35, help="method masked: fraction of tokens masked")
    p.add_argument("--batch-size", type=positive_int, default=512)
    p.add_argument("--step-size", type=positive_int, default=100_000, help="events read per chunk")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--redo", action="store_true", help="recompute outputs even where they are complete")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_scheduler_argument(p, "one per input file")
    add_read_arguments(p, selection="auto")
    e = sub.add_parser("evaluate", help="ROC AUC, max SIC and rejection of a signal against a background")
    e.add_argument("--background", type=Path, nargs="+", help="score file(s) of background events")
    e.add_argument("--signal", type=Path, nargs="+", help="score file(s) of signal events")
    e.add_argument("--scores", type=Path, nargs="+", help="score file(s) of mixed events, split by --signal-process")
    e.add_argument("--signal-process", help="with --scores: the process whose events are the signal")
    e.add_argument("--methods", nargs="+", help="score columns to compare (default: all in common)")
    e.add_argument("--out", default="runs/anomaly", type=Path, help="folder for metrics and plots")
    args = parser.parse_args(argv)
    if args.command == "score" and args.folds < 2:
        raise UserError("--folds must be >= 2")
    return score(args) if args.command == "score" else evaluate(args)


if __name__ == "__main__":
    run_cli(main, "python -m finetune.anomaly")
