"""Scoring many files: `ScoreJob`, the `common.filejobs` job of `python -m finetune.anomaly score`.

Each worker process builds its `AnomalyScorer` once (models loaded, the `head` reference encoded)
and scores every file it is given with it; each file is scored exactly as by a call of its own.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from events.options import ReadOptions

SINGLE_SUFFIXES = (".h5", ".hdf5", ".csv")


@dataclass(frozen=True)
class ScoreJob:
    """Score input files, each into its own score file (settings as for `AnomalyScorer`)."""

    backbone: str
    tokenizer: str
    methods: tuple[str, ...] | None = None
    classifier: str | None = None
    reference: tuple[str, ...] = ()
    reference_format: str = "auto"
    format: str = "auto"
    options: ReadOptions = field(default_factory=lambda: ReadOptions(selection="auto"))
    scorer: dict = field(default_factory=dict)  # AnomalyScorer keyword options (batch_size, mask_rate, ...)
    device: str = "auto"
    step_size: int = 100_000
    provenance: dict = field(default_factory=dict)  # recorded in each file's metadata as `run`
    progress: bool = False  # an events bar inside the task (one input, in this process)
    suffix = ".scores.h5"
    what = "score file"

    def settings(self) -> dict:
        """What decides the scores (batch and step sizes and the device do not: tests/test_anomaly_density.py)."""
        from common.filejobs import input_identity
        from common.pretrained import identity

        fixed = {k: v for k, v in self.scorer.items() if k not in ("batch_size", "progress")}
        return {"backbone": identity(self.backbone), "tokenizer": identity(self.tokenizer),
                "classifier": identity(self.classifier) if self.classifier else None, "methods": self.methods,
                "reference": [input_identity(r) for r in self.reference], "reference_format": self.reference_format,
                "format": self.format, "options": asdict(self.options), "scorer": fixed}

    def check(self, inputs: list[str], out: Path, combined: bool) -> None:
        """Settings no input could be scored with, and input names a combined CSV file cannot hold."""
        from events.options import check_read_settings
        from finetune.score_store import check_csv_inputs

        check_read_settings([self.format, *([self.reference_format] if self.reference else [])], self.options)
        if combined:
            check_csv_inputs(out, inputs)

    def signature_of(self, output: Path) -> dict | None:
        from finetune.score_store import read_meta

        return (read_meta(output) or {}).get("job")

    def load(self):
        """This process's scorer (made on first use)."""
        from common.executors import worker_cache

        def build():
            from finetune.scorer import AnomalyScorer

            scorer = AnomalyScorer.from_pretrained(self.backbone, self.tokenizer, self.methods, self.classifier,
                                                   self.device, **self.scorer, progress=self.progress)
            if {"head", "calibrated"} & set(scorer.methods):  # without --reference, fit names what is missing
                scorer.fit(self.reference, self.reference_format, self.options)
            return scorer

        import json

        return worker_cache(("scorer", json.dumps(asdict(self), sort_keys=True, default=str)), build)

    def run(self, input: str, output: Path, signature: dict, empty_ok: bool) -> tuple[int, str]:
        done = self.load().score_file(input, output, self.format, self.options, self.step_size,
                                      {"run": self.provenance, "job": signature}, empty_ok=empty_ok)
        return done.n_events, (f"scored {done.n_events} events ({', '.join(done.columns)}) into {output}; "
                               f"{done.flagged} flagged")

    def combine(self, parts: list[Path], inputs: list[str], out: Path, signature: dict) -> tuple[int, str]:
        from finetune.score_store import combine_score_files

        scorer = self.load()
        n = combine_score_files(parts, inputs, out, scorer.columns, scorer.object_columns, signature)
        return n, f"combined {n} events of {len(parts)} files into {out}"
