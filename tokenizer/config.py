"""Tokenizer configuration: model, data and training sections, loaded from configs/tokenizer/*.yaml."""
from __future__ import annotations

from dataclasses import dataclass, field

from common.config import check_ranges
from events.model import Caps
from events.options import ReadOptions


AZIMUTHS = ("absolute", "leading_jet")


@dataclass(frozen=True)
class ModelConfig:
    """The VQ-VAE. `quantizer: none` gives the quantization-free autoencoder of the same size."""

    mode: str = "event"  # event: jets, b-jets, leptons, photons, MET; constituent: jet constituents
    #: mlp: each object encoded alone; transformer: a set transformer over the event's (or jet's) objects
    #: (no positional encoding: permutation-equivariant). The decoder is per object either way.
    encoder: str = "mlp"
    heads: int = 4
    codebook_size: int = 8192  # split over object types in proportion to sqrt(frequency)
    codebook_dim: int = 16  # low-dimensional codes keep a large codebook alive
    latent_dim: int = 64
    hidden: int = 256
    depth: int = 3
    quantizer: str = "vq"  # vq | none
    use_cosine_sim: bool = True
    decay: float = 0.99
    kmeans_iters: int = 10
    commitment_weight: float = 0.25
    rotation_trick: bool = True
    #: a code is replaced when its EMA hit count falls below this fraction of the average per code.
    #: Measured: runs of thousands of steps keep 98 % of 8192 codes alive with decay 0.99 and 0.03;
    #: runs of a few hundred steps need decay 0.9 and 0.3 (16 % -> 83 % usage), as configs/tokenizer/demo.yaml
    dead_code_fraction: float = 0.03
    min_codes_per_type: int = 16
    #: absolute: objects are encoded where they point; leading_jet (event mode): each event is first turned
    #: about the beam so its leading jet is at phi = 0, its angle kept in the tokens' info (`azimuth`) and
    #: added back on decoding. The physics is the same at every angle, so the codes and the backbone then
    #: spend nothing on where an event points, and the angles between objects (a jet back to back with
    #: the leading one) become where codes sit, which a backbone learns from counts (docs/results.md)
    azimuth: str = "absolute"

    def __post_init__(self):
        if self.mode not in ("event", "constituent"):
            raise ValueError(f"mode must be event or constituent, got {self.mode!r}")
        if self.encoder not in ("mlp", "transformer"):
            raise ValueError(f"encoder must be mlp or transformer, got {self.encoder!r}")
        if self.quantizer not in ("vq", "none"):
            raise ValueError(f"quantizer must be vq or none, got {self.quantizer!r}")
        if self.azimuth not in AZIMUTHS:
            raise ValueError(f"azimuth must be {' or '.join(AZIMUTHS)}, got {self.azimuth!r}")
        if self.azimuth != "absolute" and self.mode != "event":
            raise ValueError("azimuth: leading_jet turns whole events; constituents are already relative to their jet")


@dataclass(frozen=True)
class DataConfig:
    files: tuple[str, ...] = ()
    format: str = "auto"
    #: how ROOT files are read (object selection, era, b-tag point): events.options.ReadOptions
    read: ReadOptions = field(default_factory=lambda: ReadOptions(selection="auto"))
    max_events_per_file: int = 0  # 0: all
    val_fraction: float = 0.1
    caps: Caps = field(default_factory=Caps)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8192  # objects; large batches keep the dead-code statistics meaningful
    lr: float = 2e-3
    weight_decay: float = 0.0  # on the weight matrices only (common.training.param_groups)
    epochs: int = 30
    warmup_steps: int = 100
    patience: int = 5  # epochs without validation improvement before stopping
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda

    def __post_init__(self):
        check_ranges(self, positive=("batch_size", "epochs", "patience"),
                     nonnegative=("lr", "weight_decay", "warmup_steps", "seed"))


@dataclass(frozen=True)
class TokenizerTrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/tokenizer"
    compare_autoencoder: bool = True  # also train the quantization-free autoencoder and report both
    information_loss: bool = True  # classifier AUC on original vs round-tripped events
