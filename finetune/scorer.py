"""`AnomalyScorer`: the anomaly scores of events, in memory or streamed over a file.

    from events import read_events
    from finetune import AnomalyScorer
    scorer = AnomalyScorer.from_pretrained("runs/demo/backbone", "runs/demo/tokenizer")
    scores = scorer.score(read_events("data.root"))  # {"event": ..., "flag": ..., "nll": ...}
    scorer.score_file("data.root", "scores.h5")      # the same rows, streamed into a score file

The score methods (what each measures: finetune.scores) are registered in `METHODS`, one entry each:
its columns, its per-object columns, what it needs and how it is computed on a chunk of events.
`python -m finetune.anomaly score` is a thin caller of `score_file`.

The weakly supervised `head` method learns what tells the data scored from a Standard Model
reference (`fit(reference)`): for each input, `folds` heads are trained on its first `head_events`
events and the reference, then every event is scored in the same single pass over the input. An
event of that sample is scored by the head of the fold it was left out of; a later event, which no
head saw, by the mean of the heads (they are equally valid, and their mean varies less).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import awkward as ak
import numpy as np
import torch

from backbone.data import TokenSequences
from backbone.model import GPT, check_pair
from common.cli import check_output, checked, device_name, fraction, nonnegative_int, positive_int
from common.errors import EventDataError, UserError
from common.pretrained import DEFAULT_MODEL, paired_tokenizer
from common.runtime import resolve_device
from events.model import Events
from events.options import ReadOptions
from finetune.model import Classifier
from finetune.calibration import CLASS_EVENTS, Calibration
from finetune.scores import (calibrated_scores, composition_kinematics, density_scores, entropy_scores, head_scores,
                             masked_scores, nll_scores, quantization_scores)
from tokenizer.tokenizer import FLAGS, TokenBatch, Tokenizer

#: events read (and scored) at once
STEP_SIZE = 100_000


@dataclass
class Chunk:
    """Events on their way to being scored: their sequences (the tokens of the objects the tokenizer
    represents), each object's tokenizer residual, the index of the first in the input (masks depend
    on it), and the heads of the `head` method with the fold each event was left out of (-1: none)."""

    seqs: TokenSequences
    residuals: ak.Array
    first: int
    heads: list
    fold_of: np.ndarray


@dataclass(frozen=True)
class Method:
    """A score method: its columns, `compute(scorer, chunk)` -> {column: values per event, and for
    `object_columns` "objects": {column: jagged per-object values}}, what it needs ("density head",
    "classifier", "reference"), and whether it is computed when no methods are named."""

    columns: tuple[str, ...]
    compute: Callable[["AnomalyScorer", Chunk], dict]
    object_columns: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    default: bool = False


METHODS = {
    "density": Method(("density_nll", "surprise"),
                      lambda s, c: density_scores(s.backbone, c.seqs, s.device, s.batch_size),
                      object_columns=("surprise",), needs=("density head",), default=True),
    "nll": Method(("nll", "nll_per_token"), lambda s, c: nll_scores(s.backbone, c.seqs, s.device, s.batch_size),
                  default=True),
    "masked": Method(("masked", "masked_surprise"),
                     lambda s, c: masked_scores(s.backbone, c.seqs, s.device, s.mask_rate, s.n_masks, s.seed,
                                                s.batch_size, first=c.first), default=True),
    "entropy": Method(("entropy",), lambda s, c: entropy_scores(s.classifier, c.seqs, s.device, s.batch_size),
                      needs=("classifier",)),
    "quantization": Method(("quantization",), lambda s, c: quantization_scores(c.residuals), default=True),
    "head": Method(("head",), lambda s, c: head_scores(c.heads, c.fold_of, c.seqs, s.device, s.batch_size),
                   needs=("reference",)),
    "calibrated": Method(("calibrated", "composition", "kinematics"),
                         lambda s, c: calibrated_scores(s.backbone, c.seqs, s.device, s.calibration, s.code_types,
                                                        s.batch_size),
                         object_columns=("kinematics",), needs=("density head", "reference")),
}
COLUMNS = {name: m.columns for name, m in METHODS.items()}
#: per-object columns (HDF5 score files hold them jagged, under /objects)
OBJECT_COLUMNS = {name: m.object_columns for name, m in METHODS.items() if m.object_columns}


def default_methods(backbone: GPT) -> list[str]:
    """What is computed when no methods are named: the density scores first where the backbone has a
    density head, then nll, masked and quantization."""
    return [name for name, m in METHODS.items()
            if m.default and ("density head" not in m.needs or backbone.config.density_components)]


@dataclass
class ScoredFile:
    """What `score_file` did."""

    n_events: int
    columns: tuple[str, ...]
    flagged: int  # events with a nonzero flag word
    seconds: float


class AnomalyScorer:
    """Anomaly scores of events by a backbone and its tokenizer (and a classifier for `entropy`).

    `methods`: names in `METHODS` (default `default_methods`; a `classifier` adds `entropy`, and
    `fit(reference)` adds `head`); `batch_size`: events per forward pass;
    `mask_rate`, `n_masks`: the maskings of `masked`; `seed`: those maskings and the heads;
    `folds`, `head_mode` (frozen or full backbone), `head_epochs` and `head_events` (the bounded data
    sample the heads train on): the `head` method; `class_events`: the fewest reference events of a
    multiplicity class of the `calibrated` method (finetune.calibration); `progress`: progress bars on
    stderr.
    """

    def __init__(self, backbone: GPT, tokenizer: Tokenizer, methods: Sequence[str] | None = None,
                 classifier: Classifier | None = None, *, device: str | torch.device | None = None,
                 batch_size: int = 512, mask_rate: float = 0.35, n_masks: int = 8, seed: int = 0, folds: int = 2,
                 head_mode: str = "frozen", head_epochs: int = 10, head_events: int = 50_000,
                 class_events: int = CLASS_EVENTS, progress: bool = False):
        if isinstance(device, str):
            device = resolve_device(checked(device_name, device, "device"))
        self.device = torch.device(device) if device is not None else next(backbone.parameters()).device
        self.backbone = backbone.to(self.device).eval()
        self.tokenizer = tokenizer.to(self.device)
        self.classifier = classifier.to(self.device).eval() if classifier is not None else None
        check_pair(self.backbone, self.tokenizer)
        if self.classifier is not None:
            check_pair(self.classifier, self.tokenizer)
        methods = [methods] if isinstance(methods, str) else methods  # one name, not its letters
        unknown = [m for m in methods or () if m not in METHODS]
        if unknown:
            raise UserError(f"unknown score method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
        for name, rule, value in (("batch_size", positive_int, batch_size), ("mask_rate", fraction, mask_rate),
                                  ("n_masks", positive_int, n_masks), ("seed", nonnegative_int, seed),
                                  ("folds", positive_int, folds), ("head_epochs", positive_int, head_epochs),
                                  ("head_events", positive_int, head_events),
                                  ("class_events", positive_int, class_events)):
            checked(rule, value, name)  # as the CLI's --batch-size, --mask-rate, ...
        if folds < 2:
            raise UserError("folds must be >= 2: each event is scored by a head that did not train on it")
        if head_mode not in ("frozen", "full"):
            raise UserError(f"head_mode: expected frozen or full, got {head_mode!r}")
        self.methods = list(dict.fromkeys([*(methods or default_methods(backbone)),
                                           *(["entropy"] if classifier is not None else [])]))
        self.batch_size, self.mask_rate, self.n_masks, self.seed = batch_size, mask_rate, n_masks, seed
        self.folds, self.head_mode, self.head_epochs, self.head_events = folds, head_mode, head_epochs, head_events
        self.class_events, self.progress = class_events, progress
        self.reference: list[TokenBatch] | None = None
        self.calibration: Calibration | None = None  # of method calibrated, made by fit
        self.reference_files: list[str | Path] = []  # protected from being written over, as the models
        self._check_needs("density head", "classifier")

    @classmethod
    def from_pretrained(cls, backbone: str | Path = DEFAULT_MODEL, tokenizer: str | Path | None = None,
                        methods: Sequence[str] | None = None, classifier: str | Path | None = None,
                        device: str = "auto", **options) -> "AnomalyScorer":
        """A scorer of the model folders `backbone`, `tokenizer` (and `classifier`), or of a bundled
        model by name (default `event-small`, whose tokenizer comes with it), on `device` (auto: CUDA
        where there is one); `options` as for the constructor."""
        device = resolve_device(checked(device_name, str(device), "device"))
        tokenizer = paired_tokenizer(backbone, tokenizer)
        return cls(GPT.from_pretrained(backbone, device), Tokenizer.from_pretrained(tokenizer, device=str(device)),
                   methods, Classifier.from_pretrained(classifier, device) if classifier else None, device=device,
                   **options)

    @property
    def model_folders(self) -> list[Path | None]:
        """The folders the models were loaded from (None: built in memory)."""
        return [m.source for m in (self.backbone, self.tokenizer, self.classifier) if m is not None]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for m in self.methods for c in METHODS[m].columns)

    @property
    def object_columns(self) -> tuple[str, ...]:
        return tuple(c for m in self.methods for c in METHODS[m].object_columns)

    def _check_needs(self, *needs: str) -> None:
        for name, need in ((n, need) for n in self.methods for need in METHODS[n].needs):
            if need not in needs:
                continue
            if need == "density head" and not self.backbone.config.density_components:
                raise UserError(f"method {name} needs a backbone with a density head; {self.backbone.source} has "
                                "none (pretrain with model.density_components > 0 on a store tokenized with "
                                "--features)")
            if need == "classifier" and self.classifier is None:
                raise UserError(f"method {name} needs --classifier RUN (python -m finetune.classify; in Python, "
                                "AnomalyScorer(classifier=...))")
            if need == "reference" and not self.reference:
                raise UserError(f"method {name} needs --reference FILES: a Standard Model sample (in Python, "
                                "AnomalyScorer.fit(reference))")

    def fit(self, reference: Events | str | Path | Iterable[Events | str | Path], format: str = "auto",
            options: ReadOptions | None = None) -> "AnomalyScorer":
        """Set the Standard Model `reference` (events, or files read with `format` and `options`; default
        selection auto) of the methods that use one, and add `head` where none is named. The heads are
        trained on each input scored, against this reference; the `calibrated` method's calibration
        is made from it here."""
        if isinstance(reference, (Events, str, Path)):
            reference = [reference]
        batches, files = [], []
        for item in reference:
            if isinstance(item, Events):
                chunks, source = _chunks(item), "reference events"
            else:
                chunks, source = _read(item, format, options), str(item)
                files.append(item)
            batches += [tokens for _, _, tokens, _ in self._encoded(chunks, source)]
        self.reference, self.reference_files = batches, files
        if not any("reference" in METHODS[m].needs for m in self.methods):
            self.methods.append("head")
        self._check_needs("reference")
        if "calibrated" in self.methods:
            parts = composition_kinematics(self.backbone, self._sequences(batches, "reference"), self.device,
                                           self.code_types, self.batch_size)
            self.calibration = Calibration.fit(parts, self.class_events)
        return self

    @property
    def code_types(self) -> np.ndarray:
        """The object type of each of the tokenizer's codes (method calibrated)."""
        if not hasattr(self, "_code_types"):
            self._code_types = self.tokenizer.code_types()
        return self._code_types

    def score(self, events: Events) -> dict[str, np.ndarray]:
        """One row per event, in order: run, lumi, event, process (names; "" where unknown), flag (see
        tokenizer.tokenizer.FLAGS), worst_object (where a method has per-object contributions) and every
        score column of the methods: what a score file holds. With `head`, the heads are trained on
        these events' first `head_events` (see the module). A file is scored by `score_file`, or read
        first with `events.read_events`."""
        if not isinstance(events, Events):
            raise UserError(f"score takes Events, got {type(events).__name__} {str(events)[:80]!r}: score a file "
                            "with score_file(path, out), or read it with events.read_events(path) first")
        rows = [self._rows(ev, flags, scores) for ev, flags, scores in self._scored(_chunks(events), "events")]
        if not rows:
            raise EventDataError("events: no events to score")
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

    def score_file(self, path: str | Path, out: str | Path, format: str = "auto", options: ReadOptions | None = None,
                   step_size: int = STEP_SIZE, meta: dict | None = None, empty_ok: bool = False) -> ScoredFile:
        """Score every event of `path` (read with `format` and `options`; default selection auto) in one
        streaming pass into the score file `out` (.h5 or .csv; see finetune.score_store), with `meta`
        entries added to its metadata (default: this run's provenance). A file without events is an
        error, unless `empty_ok` (one file of many): then `out` holds no rows."""
        from tqdm import tqdm

        from common.provenance import run_info
        from finetune.score_store import ScoreWriter

        checked(positive_int, step_size, "step_size")
        check_output(out, [path, *self.model_folders, *self.reference_files], "score file")
        start, flagged = time.perf_counter(), 0
        info = {"backbone": str(self.backbone.source), "tokenizer": str(self.tokenizer.source), "input": str(path),
                "methods": self.methods, "flags": {str(k): v for k, v in FLAGS.items()},
                **(meta or {"run": run_info(self._settings(), self.seed, str(self.device))})}
        with _open(path, format, options) as reader:
            if len(reader) == 0 and not empty_ok:
                raise EventDataError(f"{path}: holds no events")
            with ScoreWriter(out, self.columns, info, self.object_columns) as writer, \
                    tqdm(total=len(reader), unit="ev", desc="scoring", disable=not self.progress) as bar:
                for events, flags, scores in self._scored(reader.iterate(step_size), str(path)):
                    writer.write(events.info, flags, scores, events.process_names, scores.pop("objects", None))
                    flagged += int((flags != 0).sum())
                    bar.update(len(events))
        return ScoredFile(writer.n_events, self.columns, flagged, time.perf_counter() - start)

    def _settings(self) -> dict:
        return {"methods": self.methods, "batch_size": self.batch_size, "mask_rate": self.mask_rate,
                "n_masks": self.n_masks, "folds": self.folds, "head_mode": self.head_mode,
                "head_epochs": self.head_epochs, "head_events": self.head_events, "class_events": self.class_events}

    def _encoded(self, chunks: Iterable[Events], source: str) -> Iterator[tuple]:
        """(events, flags, tokens, per-object residuals) of each chunk; objects the tokenizer cannot
        represent are left out of the tokens and flagged (`Tokenizer.representable`)."""
        for chunk in chunks:
            kept, flags = self.tokenizer.representable(chunk)
            if ak.sum(ak.num(kept.objects)) == 0 < ak.sum(ak.num(chunk.objects)):
                self.tokenizer.check(chunk, source)  # no object it knows: another mode's input, said as tokenize says it
            yield chunk, flags, *self.tokenizer.encode_with_residuals(kept, source=source, features=True)

    def _sequences(self, batches: list[TokenBatch], source: str) -> TokenSequences:
        from finetune.data import unlabelled_sequences

        return unlabelled_sequences(batches, self.backbone.vocab, self.backbone.conditional,
                                    self.backbone.config.block_size, source)

    def _scored(self, chunks: Iterable[Events], source: str) -> Iterator[tuple[Events, np.ndarray, dict]]:
        """(events, flags, scores) of each chunk, in order. With the `head` method, the first chunks
        are held until `head_events` events have been read, the heads trained on those, and then all
        scored."""
        self._check_needs("reference")
        encoded = self._encoded(chunks, source)
        heads, fold_of = [], np.zeros(0, np.int64)
        if "head" in self.methods:
            held = list(_until(encoded, self.head_events))
            if held:
                sample = [tokens for _, _, tokens, _ in held]
                sample[-1] = sample[-1].head(self.head_events - sum(len(t) for t in sample[:-1]))
                heads, fold_of = self._train_heads(sample)
            encoded = itertools.chain(held, encoded)
        first = 0
        for events, flags, tokens, residuals in encoded:
            rows = np.arange(first, first + len(events))
            fold = np.full(len(events), -1)
            fold[rows < len(fold_of)] = fold_of[rows[rows < len(fold_of)]]
            chunk = Chunk(self._sequences([tokens], source), residuals, first, heads, fold)
            scores, objects = {}, {}
            for name in self.methods:
                computed = METHODS[name].compute(self, chunk)
                objects.update(computed.pop("objects", {}))  # several methods' per-object columns side by side
                scores.update(computed)
            if objects:
                scores["objects"] = objects
            yield events, flags, scores
            first += len(events)

    def _train_heads(self, sample: list[TokenBatch]) -> tuple[list[Classifier], np.ndarray]:
        """One head per fold, trained by head swap to tell the data `sample` (minus that fold) from the
        reference; (heads, fold of each sample event)."""
        from finetune.config import HeadSection, TrainSection
        from finetune.train import fit

        both = self._sequences(self.reference + sample, "reference + data")
        n_ref = sum(len(b) for b in self.reference)
        y = (np.arange(len(both)) >= n_ref).astype(np.int64)
        rng = np.random.default_rng([self.seed, 13])
        fold = rng.integers(0, self.folds, len(both))
        cfg = TrainSection(mode=self.head_mode, epochs=self.head_epochs, seed=self.seed, device=str(self.device))
        heads = []
        for k in range(self.folds):
            head = Classifier.from_backbone(self.backbone, 2, HeadSection(), cfg.mode, self.device, self.seed + k)
            pool = np.flatnonzero(fold != k)
            is_val = rng.random(len(pool)) < 0.2
            fit(head, both, y, pool[~is_val], both, y, pool[is_val], cfg, self.device, progress=self.progress)
            heads.append(head)
        return heads, fold[n_ref:]

    def _rows(self, events: Events, flags: np.ndarray, scores: dict) -> dict[str, np.ndarray]:
        """A chunk's rows as a score file holds them (see `score`)."""
        from finetune.score_store import ID_FIELDS, worst_object

        rows = {k: np.asarray(events.info[k]) for k in ID_FIELDS}
        rows["process"] = events.process.astype(str)
        rows["flag"] = flags
        if self.object_columns:
            rows["worst_object"] = worst_object(scores["objects"][self.object_columns[0]])
        return {**rows, **{c: scores[c] for c in self.columns}}


def _chunks(events: Events) -> Iterator[Events]:
    return (events[a:a + STEP_SIZE] for a in range(0, len(events), STEP_SIZE))


def _open(path, format: str, options: ReadOptions | None):
    from events.io import open_events

    return open_events(path, format, options=options or ReadOptions(selection="auto"))


def _read(path, format: str, options: ReadOptions | None) -> Iterator[Events]:
    with _open(path, format, options) as reader:
        yield from reader.iterate(STEP_SIZE)


def _until(items: Iterator[tuple], n_events: int) -> Iterator[tuple]:
    """Encoded chunks from `items` until they hold at least `n_events` events (or `items` ends)."""
    total = 0
    for item in items:
        yield item
        total += len(item[0])
        if total >= n_events:
            return
