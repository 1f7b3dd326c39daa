"""Backbone configuration: the GPT's own config, and the pretraining config of configs/backbone/*.yaml."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from common.config import check_ranges


@dataclass(frozen=True)
class GPTShape:
    """The GPT's size, chosen by the pretraining config (`model:`) and kept in the model's GPTConfig."""

    n_layer: int = 8
    n_head: int = 8
    n_embd: int = 512
    dropout: float = 0.0
    bias: bool = False
    #: the continuous density head (backbone.density): mixture components, 0 for none; pretraining it needs
    #: a token store written with `tokenizer.tokenize --features`
    density_components: int = 0
    #: the density head's log pt of each object is normalized below that of the object before it in its
    #: group (the data's descending pt, which the sampler keeps), so it is trained as it is sampled; off,
    #: the head leaks mass above the bound and truncated sampling moves it below, each jet about 2%
    #: softer than the one before it should be (docs/results.md)
    density_pt_order: bool = False
    #: the hybrid's next-code logits also get a learnt tilt over each code's features and their squares
    #: (what the code decodes to): log p(code) gains w(h) . [x, x^2], so a smooth preference in pt, eta or
    #: phi (a jet back to back with the leading one) is one small linear map, not thousands of code logits
    #: each learnt on its own
    feature_logits: bool = False
    #: with feature_logits, the tilt's basis also holds a small MLP (this width) of each code's features,
    #: learnt with the rest: a preference that is not a bump in each feature on its own (a second jet at
    #: the W mass with the first) becomes learnable; 0: the features and their squares only
    feature_logits_width: int = 0
    #: with feature_logits (event mode), the tilt's basis also holds each code's four-momentum (E, px, py,
    #: pz) and their ten products, each standardized over the codes: the invariant mass of a code with an
    #: earlier object, m^2 = m1^2 + m2^2 + 2 p1.p2, is linear in them, so a bump at the W mass with an
    #: earlier jet is one quadratic form whose coefficients the context gives
    momentum_logits: bool = False

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        check_ranges(self, nonnegative=("feature_logits_width",), devices=())
        if self.feature_logits_width and not self.feature_logits:
            raise ValueError("feature_logits_width widens the feature logits' basis: it needs feature_logits=true")
        if self.momentum_logits and not self.feature_logits:
            raise ValueError("momentum_logits widens the feature logits' basis: it needs feature_logits=true")


@dataclass(frozen=True, kw_only=True)
class GPTConfig(GPTShape):
    """A GPT over token sequences. Reference size for speed comparisons: 8 layers, width 512, 8 heads,
    sequences of 130 tokens (constituent mode: BOS + up to 128 constituents + EOS)."""

    vocab_size: int
    block_size: int = 130
    #: hybrid input: each object's continuous features (n_features of them) embedded and added to its
    #: token embedding; the targets stay token ids. 0: plain token input. Token ids below `n_codes`
    #: are objects; other tokens have no features.
    n_features: int = 0
    n_codes: int = 0
    #: event or constituent: which features the density head models
    density_mode: str = ""
    #: a factorized output p(group) x p(token | group): the start of each group of consecutive token ids
    #: (object types, then each special token, then the process tokens), () for one softmax over the
    #: vocabulary. A group's total probability is one logit of a small head, so it is learnt at the rate
    #: of a 10-way choice, not as the sum of thousands of separately learnt code probabilities.
    output_groups: tuple[int, ...] = ()

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "output_groups", tuple(int(g) for g in self.output_groups))  # JSON gives a list
        groups = self.output_groups
        if groups and (groups[0] != 0 or any(b <= a for a, b in zip(groups, groups[1:]))
                       or groups[-1] >= self.vocab_size):
            raise ValueError(f"output_groups must rise from 0 and start below vocab_size {self.vocab_size}, "
                             f"got {groups}")
        if self.feature_logits and not self.n_features:
            raise ValueError("feature_logits tilts the logits by each code's features: it needs the hybrid input "
                             "(model.hybrid=true, a token store written with --features)")
        if self.density_components and self.density_mode not in ("event", "constituent"):
            raise ValueError(f"density_mode must be event or constituent, got {self.density_mode!r}")


@dataclass(frozen=True)
class ModelSection(GPTShape):
    #: embed each object's continuous features alongside its token (needs a token store written with
    #: `tokenizer.tokenize --features`); targets stay token ids
    hybrid: bool = False
    #: predict each token's group (object type, end of event) with its own small softmax, then the code
    #: within the group (GPTConfig.output_groups); false: one softmax over the whole vocabulary. On in the
    #: event configs: conditional samples then follow their process; off by default as on the tests'
    #: small backbone it lowered the `surprise` score's AUC for a 5x leading-jet pt from 0.85 to 0.70
    type_head: bool = False

    def gpt(self, vocab_size: int, block_size: int, n_features: int, n_codes: int, density_mode: str,
            output_groups: tuple[int, ...] = ()) -> GPTConfig:
        """The model's config: this size, and what the data fixes."""
        shape = {f.name: getattr(self, f.name) for f in fields(GPTShape)}
        return GPTConfig(**shape, vocab_size=vocab_size, block_size=block_size, n_features=n_features,
                         n_codes=n_codes, density_mode=density_mode if self.density_components else "",
                         output_groups=output_groups if self.type_head else ())


@dataclass(frozen=True)
class DataSection:
    train: str = ""
    val: str = ""  # empty: hold out val_fraction of train
    val_fraction: float = 0.05
    conditional: bool = False  # a process token after BOS, for conditional generation
    #: each training batch is drawn from a chunk of this many batches' events sorted by length (less
    #: padding, but each batch then holds events of one length, so one multiplicity); 1: a uniform draw
    length_bucket: int = 50
    #: each training batch is sorted by length and run as this many slices, each padded to its own
    #: longest event, their losses combined as the whole batch's: the same step with less padding (for
    #: uniform batches on a CPU; compiled steps pad to fixed lengths anyway)
    length_split: int = 1
    #: a multiplicity token after the prompt: the event's numbers of jets, b-jets and leptons (or a jet's
    #: constituents) drawn first as one choice, then exactly those objects (backbone.multiplicity)
    multiplicity_token: bool = False

    def __post_init__(self):
        check_ranges(self, positive=("length_bucket", "length_split"), fractions=("val_fraction",))


@dataclass(frozen=True)
class TrainSection:
    batch_size: int = 256
    grad_accum: int = 1
    lr: float = 6e-4
    min_lr_fraction: float = 0.1
    weight_decay: float = 0.1  # on the weight matrices only (common.training.param_groups)
    warmup_steps: int = 200
    max_steps: int = 5000
    eval_every: int = 500
    clip: float = 1.0
    mask_rate: float = 0.35
    #: conditional data: the fraction of events whose process token is replaced by MASK ("unknown"),
    #: so that one backbone also models events of unknown process (data to score, unconditional sampling)
    process_dropout: float = 0.1
    weight_next: float = 1.0
    weight_masked: float = 1.0  # 0 skips the bidirectional pass: a next-token-only run at about half the cost
    weight_density: float = 1.0  # the density head's negative log-likelihood, per object
    #: with a type head, extra weight on each next token's group (object type or end of event), the part
    #: of the token loss that sets multiplicities: a proper score, so the optimum is the same distribution,
    #: but the fit spends more of a small model's steps on it (0: the token loss alone)
    weight_type: float = 0.0
    #: > 0: evaluate and save an exponential moving average of the weights with this decay per step
    #: (common.averaging; 0.998 averages about the last 500 steps), not the last step's weights
    ema_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    #: also keep each evaluation's checkpoint as checkpoint_step<N>/ (to study how scores evolve in training)
    keep_checkpoints: bool = False
    #: a checkpoint is also written when the last is this old (a kill loses at most this much work)
    checkpoint_minutes: float = 10.0
    #: after SIGTERM/SIGINT, stop at the next step's end, or exit after this many seconds wherever the run
    #: is (a compilation, a long first step) with the last checkpoint: batch systems kill 30 s after SIGTERM
    stop_grace_s: float = 20.0
    #: torch.compile the training step (static shapes: sequences padded to multiples of 32 tokens, the
    #: epoch's one short batch left out; on the CPU it needs a C++ compiler)
    compile: bool = False
    bf16: bool = True  # bf16 autocast on CUDA

    def __post_init__(self):
        check_ranges(self, positive=("batch_size", "grad_accum", "max_steps", "eval_every"),
                     nonnegative=("lr", "weight_decay", "warmup_steps", "clip", "weight_next", "weight_masked",
                                  "weight_density", "weight_type", "seed", "checkpoint_minutes", "stop_grace_s"),
                     fractions=("min_lr_fraction", "mask_rate", "process_dropout", "ema_decay"))


@dataclass(frozen=True)
class PretrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    out: str = "runs/backbone"
