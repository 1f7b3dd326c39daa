"""Fine-tuning configuration: which files and labels, the head, and how to train it
(configs/finetune/*.yaml; every field can be overridden on the command line)."""
from __future__ import annotations

from dataclasses import dataclass, field

from common.config import check_ranges
from events.options import ReadOptions

MODES = ("frozen", "full", "scratch")
TOP_CLASSES = ("0t", "1t", "2t", "3t", "4t")


@dataclass(frozen=True)
class DataSection:
    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()  # empty: hold out val_fraction of train
    test: tuple[str, ...] = ()
    format: str = "auto"
    #: how ROOT files are read (object selection, era, b-tag point): events.options.ReadOptions
    read: ReadOptions = field(default_factory=lambda: ReadOptions(selection="auto"))
    #: ntop: classes by the number of top quarks (0t..4t, Abasov et al.); process: one class per process
    label: str = "ntop"
    classes: tuple[str, ...] = ()  # default: 0t..4t for ntop, the training files' processes for process
    val_fraction: float = 0.15
    val_events: int = 5000  # validation events for early stopping, a random subset (0: all)
    max_events_per_file: int = 0  # read at most this many events of each file (0: all)

    def __post_init__(self):
        if self.label not in ("ntop", "process"):
            raise ValueError(f"data.label must be ntop or process, not {self.label!r}")


@dataclass(frozen=True)
class HeadSection:
    pooling: str = "attention"  # attention (a learned query over the sequence) | mean | eos (the end token's state)
    hidden: int = 128
    dropout: float = 0.1
    causal: bool = False  # read the event with causal instead of bidirectional attention

    def __post_init__(self):
        if self.pooling not in ("attention", "mean", "eos"):
            raise ValueError(f"head.pooling must be attention, mean or eos, not {self.pooling!r}")


@dataclass(frozen=True)
class TrainSection:
    mode: str = "full"  # frozen: train the head only; full: everything, the backbone slower; scratch: random init
    batch_size: int = 256
    lr: float = 1e-3
    backbone_lr_scale: float = 0.1  # full mode: the backbone learns at lr * this
    weight_decay: float = 0.01  # on the weight matrices only (common.training.param_groups)
    epochs: int = 20
    min_steps: int = 0  # at least this many optimizer steps (more epochs for small training sets)
    patience: int = 4  # validations without a better loss before stopping (best weights are kept)
    warmup_steps: int = 50
    max_train: int = 0  # labelled training events to use (0: all), a random subset (data-efficiency studies)
    class_weights: bool = True  # weight classes by inverse frequency against imbalance
    #: batches whose events are sorted by length together (backbone.data.TokenSequences.index_batches); 1:
    #: every batch a uniform draw
    length_bucket: int = 50
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"train.mode must be one of {MODES}, not {self.mode!r}")
        check_ranges(self, positive=("batch_size", "epochs", "patience", "length_bucket"),
                     nonnegative=("lr", "backbone_lr_scale", "weight_decay", "min_steps", "warmup_steps", "max_train",
                                  "seed"))


@dataclass(frozen=True)
class ClassifyConfig:
    backbone: str = ""
    tokenizer: str = ""
    data: DataSection = field(default_factory=DataSection)
    head: HeadSection = field(default_factory=HeadSection)
    train: TrainSection = field(default_factory=TrainSection)
    out: str = "runs/finetune/classify"
