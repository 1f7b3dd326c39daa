"""python -m finetune.classify: process classification by head swap on a pretrained backbone.

    python -m finetune.classify --backbone runs/backbone/event --tokenizer runs/tokenizer/event \
        --train a.h5 b.h5 --val c.h5 --test d.h5 --mode frozen|full|scratch [--label ntop|process] [overrides]

Reports per-class one-vs-rest ROC AUC and their mean, accuracy, the confusion matrix, ROC curves
(classification.png) and, for two classes, background rejection at fixed signal efficiency. The run
folder holds the classifier (backbone + head: config.json + model.safetensors) and metrics.json.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from backbone.data import TokenSequences
from common.cli import UserError, check_output_folder, run_cli
from common.config import config_path, load_config, to_dict
from common.pretrained import model_folder, paired_tokenizer
from finetune.config import ClassifyConfig


@dataclass
class Labelled:
    seqs: TokenSequences
    y: np.ndarray
    indices: np.ndarray  # the events of `seqs` in this split


@dataclass
class Splits:
    train: Labelled
    val: Labelled
    test: Labelled
    classes: tuple[str, ...]


def prepare(cfg: ClassifyConfig, tokenizer) -> Splits:
    """Read, tokenize and label the train/val/test files once (data-efficiency studies reuse them)."""
    from backbone.model import GPT, check_pair
    from finetune.data import labels, read_sequences

    d = cfg.data
    if not d.train:
        raise UserError("no training files: give --train FILES")
    backbone = GPT.from_pretrained(cfg.backbone)
    check_pair(backbone, tokenizer)

    def labelled(files, classes=()):
        seqs = read_sequences(files, tokenizer, backbone.vocab, backbone.conditional, d.format,
                              backbone.config.block_size, d.max_events_per_file, d.read)
        y, classes = labels(seqs, d.label, classes or d.classes, ", ".join(files))
        return Labelled(seqs, y, np.arange(len(y))), classes

    train, classes = labelled(d.train)
    present = np.unique(train.y)
    if len(present) < 2:
        raise UserError(f"the training files hold events of one class only ({classes[present[0]]}): "
                        "a classifier needs at least two")
    if d.val:
        val = labelled(d.val, classes)[0]
    else:
        is_val = np.random.default_rng([cfg.train.seed, 5]).random(len(train.y)) < d.val_fraction
        val = Labelled(train.seqs, train.y, np.flatnonzero(is_val))
        train = Labelled(train.seqs, train.y, np.flatnonzero(~is_val))
    test = labelled(d.test, classes)[0] if d.test else val
    val = Labelled(val.seqs, val.y, subsample(val.y, val.indices, d.val_events, cfg.train.seed + 1))
    return Splits(train, val, test, classes)


def subsample(y: np.ndarray, indices: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` of `indices`, stratified by class (every present class keeps at least one event)."""
    if n <= 0 or n >= len(indices):
        return indices
    rng = np.random.default_rng([seed, 7])
    classes, counts = np.unique(y[indices], return_counts=True)
    share = counts / counts.sum() * n
    take = np.floor(share).astype(int)
    take[np.argsort(take - share)[:n - take.sum()]] += 1  # largest remainders first: exactly n in all
    take = np.maximum(take, 1)
    picked = [rng.choice(indices[y[indices] == c], size=min(k, cnt), replace=False)
              for c, k, cnt in zip(classes, take, counts)]
    return np.sort(np.concatenate(picked))


def train_and_test(cfg: ClassifyConfig, splits: Splits, progress: bool = True, save: bool = True,
                   resume: bool = False) -> dict:
    """Head swap, training and evaluation on the test split; writes the run folder (with a checkpoint
    to `resume` from) when `save`."""
    from finetune.metrics import classification_metrics
    from finetune.model import Classifier
    from finetune.plots import plot_classification
    from common.provenance import record_run
    from finetune.train import fit, predict
    from common.runtime import resolve_device

    tc = cfg.train
    device = resolve_device(tc.device)
    model = Classifier.from_backbone(cfg.backbone, len(splits.classes), cfg.head, tc.mode, device, tc.seed)
    train_idx = subsample(splits.train.y, splits.train.indices, tc.max_train, tc.seed)
    result = fit(model, splits.train.seqs, splits.train.y, train_idx, splits.val.seqs, splits.val.y,
                 splits.val.indices, tc, device, progress, Path(cfg.out) / "checkpoint" if save else None, resume)
    if save:
        record_run(cfg.out, to_dict(cfg), tc.seed, str(device))
    test = splits.test
    probs = predict(model, test.seqs, test.indices, tc.batch_size * 2, device)
    metrics = classification_metrics(test.y[test.indices], probs, splits.classes)
    metrics.update(mode=tc.mode, n_train=int(len(train_idx)), classes=list(splits.classes), **result)
    if save:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, classes=list(splits.classes), label=cfg.data.label, mode=tc.mode,
                              backbone=cfg.backbone, tokenizer=cfg.tokenizer, config=to_dict(cfg))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        plot_classification(test.y[test.indices], probs, splits.classes, metrics, out / "classification.png")
    return metrics


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments finetune.classify and finetune.data_efficiency share: config, models, files, labels."""
    parser.add_argument("--config", type=Path, default=Path("configs/finetune/classify.yaml"), help="YAML config")
    parser.add_argument("--backbone", help="pretrained backbone folder (backbone.pretrain), or a bundled model's name "
                                           "(event-small)")
    parser.add_argument("--tokenizer", help="the tokenizer the backbone was trained with (default: a bundled "
                                            "backbone's own)")
    parser.add_argument("--train", nargs="+", help="labelled training files (event files or token stores)")
    parser.add_argument("--val", nargs="+", help="validation files (default: hold out data.val_fraction of train)")
    parser.add_argument("--test", nargs="+", help="test files (default: the validation split)")
    parser.add_argument("--label", choices=("ntop", "process"), help="classes: top-quark multiplicity or process")


def task_config(parser: argparse.ArgumentParser, args, overrides: list[str]) -> ClassifyConfig:
    """The config file (the default one only where it exists) with `--a.b=value` overrides, then the
    task arguments of `add_task_arguments` on top; backbone and tokenizer must be given somewhere."""
    explicit = args.config != parser.get_default("config")
    cfg = load_config(ClassifyConfig, args.config if explicit or config_path(args.config).is_file() else None, overrides)
    cfg = replace(cfg, backbone=args.backbone or cfg.backbone, tokenizer=args.tokenizer or cfg.tokenizer,
                  data=replace(cfg.data, train=tuple(args.train or cfg.data.train), val=tuple(args.val or cfg.data.val),
                               test=tuple(args.test or cfg.data.test), label=args.label or cfg.data.label))
    if not cfg.backbone:
        raise UserError("give --backbone (a folder, or a bundled model's name such as event-small)")
    backbone = model_folder(cfg.backbone, "backbone")
    return replace(cfg, backbone=str(backbone), tokenizer=str(paired_tokenizer(backbone, cfg.tokenizer or None)))


def task_inputs(cfg) -> list[str]:
    """Every file and folder a fine-tuning task reads: its run folder must hold none of them."""
    d = cfg.data
    return [p for p in (cfg.backbone, cfg.tokenizer, *d.train, *d.val, *d.test) if p]


def main(argv: list[str] | None = None) -> int:
    from tokenizer.tokenizer import Tokenizer
    from common.runtime import resolve_device

    parser = argparse.ArgumentParser(prog="python -m finetune.classify", description=__doc__.split("\n\n")[0],
                                     epilog="Any config key can be overridden, e.g. --train.epochs=5 --head.pooling=eos")
    add_task_arguments(parser)
    parser.add_argument("--mode", choices=("frozen", "full", "scratch"), help="frozen backbone, full fine-tuning, "
                                                                             "or the same architecture from scratch")
    parser.add_argument("--out", help="run folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    args, overrides = parser.parse_known_args(argv)
    cfg = task_config(parser, args, overrides)
    cfg = replace(cfg, out=args.out or cfg.out, train=replace(cfg.train, mode=args.mode or cfg.train.mode))
    check_output_folder(Path(cfg.out), task_inputs(cfg), "run folder")
    tokenizer = Tokenizer.from_pretrained(cfg.tokenizer, device=str(resolve_device(cfg.train.device)))
    metrics = train_and_test(cfg, prepare(cfg, tokenizer), progress=not args.quiet, resume=args.resume)
    print(json.dumps({k: v for k, v in metrics.items() if k not in ("history", "confusion")}, indent=2))
    print(f"classifier, metrics.json and classification.png in {cfg.out}")
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m finetune.classify")
