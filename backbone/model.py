"""A lean GPT over token sequences, in the spirit of nanoGPT.

One set of weights serves both pretraining objectives: `causal=True` (next-token prediction, fused
flash attention via `is_causal`) and `causal=False` (masked-token prediction, bidirectional attention
with a key-padding mask). The attention mode is a forward argument, never module state.
Generation uses a preallocated `KVCache` written in place.

The hybrid variant (`n_features > 0`) adds a linear embedding of each object's continuous features to
its token embedding. Objects read from data bring their own features; objects the model generates
bring those drawn from its density head (backbone.generate feeds them back), and tokens without
features (generated without a density head, or given alone) get what their code decodes to, from the
`code_features` table.

With `density_components > 0` the model also carries the continuous density head (backbone.density):
each object's features given its token and the event before it.

A pretrained backbone is a folder (config.json + model.safetensors): `GPT.from_pretrained(folder)`
returns the model with what it was trained on as attributes (`vocab`, `conditional`,
`tokenizer_fingerprint`, `process_dropout`); `save_pretrained(folder)` writes one.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from backbone.config import GPTConfig
from backbone.vocab import Vocab
from common.errors import ModelMismatchError

FORMAT = "colliderfm.backbone"
#: four-momentum components and their products (upper triangle with the diagonal): 4 + 10
MOMENTUM_TERMS = 14


def momentum_terms(pt: torch.Tensor, eta: torch.Tensor, phi: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """(N, MOMENTUM_TERMS) (E, px, py, pz) in units of 100 GeV, then p_i p_j for i <= j."""
    pz = pt * torch.sinh(eta)
    p = torch.stack([torch.sqrt(pt ** 2 + pz ** 2 + mass ** 2), pt * torch.cos(phi), pt * torch.sin(phi), pz], 1) / 100
    i, j = torch.triu_indices(4, 4, device=pt.device)
    return torch.cat([p, p[:, i] * p[:, j]], 1)


@dataclass
class KVCache:
    """Preallocated keys and values of every layer, (n_layer, B, n_head, max_len, head_dim); `length`
    positions are filled."""

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    @classmethod
    def empty(cls, config: GPTConfig, batch: int, max_len: int, device, dtype) -> "KVCache":
        shape = (config.n_layer, batch, config.n_head, max_len, config.n_embd // config.n_head)
        return cls(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))


class SelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, causal: bool, pad_mask: torch.Tensor | None,
                cache: KVCache | None, layer: int, pos: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        mask, is_causal = None, causal
        if pos is not None:
            # one token at a position held in a tensor: shapes and addresses never change, so the step
            # can be captured once as a CUDA graph and replayed for every position
            cache.k[layer].index_copy_(2, pos, k)
            cache.v[layer].index_copy_(2, pos, v)
            k, v = cache.k[layer], cache.v[layer]
            mask = (torch.arange(k.shape[2], device=x.device) <= pos).view(1, 1, 1, -1)
            is_causal = False
        elif cache is not None:
            start = cache.length
            cache.k[layer, :, :, start:start + T] = k
            cache.v[layer, :, :, start:start + T] = v
            k, v = cache.k[layer, :, :, :start + T], cache.v[layer, :, :, :start + T]
            if start > 0:
                # queries at positions start..start+T-1 see keys up to their own position; SDPA's
                # is_causal is top-left aligned when query and key lengths differ, so spell it out
                is_causal = False
                if T > 1:
                    mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
        if pad_mask is not None:
            keep = ~pad_mask[:, None, None, :]  # (B, 1, 1, T): True where a key may be attended
            mask = keep if mask is None else mask & keep
            if is_causal:
                mask = mask & torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
                is_causal = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = SelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = nn.Sequential(nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias), nn.GELU(),
                                 nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias),
                                 nn.Dropout(config.dropout))

    def forward(self, x, causal, pad_mask, cache, layer, pos=None):
        x = x + self.attn(self.ln1(x), causal, pad_mask, cache, layer, pos)
        return x + self.mlp(self.ln2(x))


def group_logsumexp(x: torch.Tensor, group_of_token: torch.Tensor, n_groups: int) -> torch.Tensor:
    """(..., n_groups) the logsumexp of `x` (..., vocab) over each group's tokens, `group_of_token` (vocab,)
    in [0, n_groups). Scatters over the index: a handful of full-vocabulary tensors whatever the number
    of groups, where a slice or a mask per group costs a full-size tensor (and gradient) per group."""
    of_token = group_of_token.expand_as(x)
    shape = (*x.shape[:-1], n_groups)
    top = x.detach().new_full(shape, float("-inf")).scatter_reduce(-1, of_token, x.detach(), "amax")
    sums = x.new_zeros(shape).scatter_add(-1, of_token, (x - top.gather(-1, of_token)).exp())
    return sums.log() + top


class GPT(nn.Module):
    """Token and position embeddings, pre-LayerNorm transformer blocks, a tied language-model head.

    What the weights were trained on travels with them (set by `from_pretrained`, or by the trainer
    before `save_pretrained`): `vocab`, `conditional` (process token after BOS),
    `tokenizer_fingerprint`, `process_dropout` (whether the process may be left unknown), and
    `source` (the folder it was loaded from), `pretrained_config` (its config.json, for provenance).
    """

    #: what a model carries beside its config and weights (set by `describe` or by pretraining): a copy
    #: with other weights keeps them
    DESCRIPTION = ("vocab", "conditional", "tokenizer_fingerprint", "process_dropout", "source", "pretrained_config")

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.vocab: Vocab | None = None
        self.conditional = False
        self.tokenizer_fingerprint: str | None = None
        self.process_dropout = 0.0
        self.source: Path | None = None
        self.pretrained_config: dict = {}
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one tensor, saved once by safetensors' save_model
        if config.output_groups:
            self.group_head = nn.Linear(config.n_embd, len(config.output_groups))
            # each token's group; derived from the config, so not saved with the weights
            of_token = torch.zeros(config.vocab_size, dtype=torch.long)
            of_token[list(config.output_groups[1:])] = 1
            self.register_buffer("group_of_token", of_token.cumsum(0), persistent=False)
        if config.n_features:
            self.wfe = nn.Linear(config.n_features, config.n_embd, bias=False)
            self.register_buffer("code_features", torch.zeros(config.vocab_size, config.n_features))
        if config.feature_logits:
            width = config.feature_logits_width
            momenta = MOMENTUM_TERMS if config.momentum_logits else 0
            self.feature_tilt = nn.Linear(config.n_embd, 2 * config.n_features + width + momenta, bias=False)
            if config.momentum_logits:  # data, as the code table; saved with the weights
                self.register_buffer("momentum_basis", torch.zeros(config.vocab_size, MOMENTUM_TERMS))
            if width:
                self.feature_basis = nn.Sequential(nn.Linear(config.n_features, width), nn.GELU(),
                                                   nn.Linear(width, width), nn.GELU())
        if config.density_components:
            from backbone.density import DensityHead
            from tokenizer.features import FEATURES

            self.density = DensityHead(config.n_embd, config.density_mode, config.n_codes,
                                       len(FEATURES[config.density_mode]), config.density_components,
                                       config.density_pt_order)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def set_code_features(self, table: torch.Tensor) -> None:
        """The hybrid input of each code (n_codes, n_features); special tokens keep zero."""
        self.code_features.zero_()
        self.code_features[:len(table)] = table.to(self.code_features)

    def set_code_momenta(self, pt, eta, phi, mass) -> None:
        """The momentum part of the tilt basis from what each code decodes to (n_codes each; GeV): the
        four-momentum and its ten products, each standardized over the codes; special tokens keep zero."""
        cols = [torch.as_tensor(c, dtype=torch.float64) for c in (pt, eta, phi, mass)]
        basis = momentum_terms(*cols)
        std = basis.std(0)
        basis = (basis - basis.mean(0)) / torch.where(std > 0, std, 1.0)
        self.momentum_basis.zero_()
        self.momentum_basis[:len(basis)] = basis.to(self.momentum_basis)

    def embed(self, idx: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings, plus, in the hybrid, the embedded features: `features` (B, T, n_features)
        where given (used at object tokens only, so a MASK hides its object's features too), else each
        code's table entry."""
        x = self.wte(idx)
        if self.config.n_features:
            table = self.code_features[idx]
            if features is not None:
                table = torch.where((idx < self.config.n_codes)[..., None], features.to(table), table)
            x = x + self.wfe(table.to(x.dtype))
        return x

    def hidden_states(self, idx: torch.Tensor, *, causal: bool = True, pad_mask: torch.Tensor | None = None,
                      kv_cache: KVCache | None = None, features: torch.Tensor | None = None) -> torch.Tensor:
        """Final-layer states (B, T, n_embd) of token ids `idx` (B, T), with the objects' `features`
        (B, T, n_features) in the hybrid.

        `pad_mask` (B, T) is True at padding; a causal pass with right padding needs none (padded
        positions only ever see earlier tokens, and their targets are ignored).
        """
        B, T = idx.shape
        start = kv_cache.length if kv_cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.embed(idx, features) + self.wpe(pos))
        for i, block in enumerate(self.blocks):
            x = block(x, causal, pad_mask, kv_cache, i)
        if kv_cache is not None:
            kv_cache.length = start + T
        return self.ln_f(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, causal: bool = True,
                pad_mask: torch.Tensor | None = None, kv_cache: KVCache | None = None,
                features: torch.Tensor | None = None, target_features: torch.Tensor | None = None,
                type_loss: bool = False):
        """(logits (B, T, vocab), loss or None); targets of -100 are ignored.

        With `target_features` (B, T, n_features), the normalized features of the objects the targets
        are, a model with a density head also returns the density loss: the mean negative log-density
        of the target objects' features (head coordinates). With `type_loss`, a model with output groups
        also returns, last, the mean negative log-probability of the targets' groups (`group_loss`)."""
        hidden = self.hidden_states(idx, causal=causal, pad_mask=pad_mask, kv_cache=kv_cache, features=features)
        logits = self.logits(hidden)
        loss = None
        if targets is not None:
            # with output groups the logits are already log-probabilities: no second log-softmax
            loss = (F.nll_loss if self.config.output_groups else F.cross_entropy)(
                logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        out = (logits, loss)
        if target_features is not None:
            out += (self.density_loss(hidden, targets, target_features),)
        if type_loss:
            out += (self.group_loss(hidden, targets),)
        return out

    def group_loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The mean negative log p(group) of the targets (-100 ignored), read off the type head: a part
        of the token loss (log p(token) = log p(group) + log p(token | group)) that pretraining can weight
        beyond it (`train.weight_type`) without moving its optimum."""
        if not self.config.output_groups:
            raise ValueError("this backbone has no type head (model.type_head = false): no group loss")
        group = self.group_head(hidden).float().log_softmax(-1)
        return F.nll_loss(group.flatten(0, 1), torch.where(targets >= 0, self.group_of_token[targets.clamp(min=0)],
                                                           -100).flatten(), ignore_index=-100)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits (..., vocab) of final hidden states (..., n_embd). With output groups they are
        normalized log-probabilities (float32): log p(group) + log p(token | group)."""
        logits = self.lm_head(hidden)
        if self.config.feature_logits:
            logits = logits + self.feature_tilt(hidden) @ self.tilt_basis().to(hidden.dtype).T
        starts = self.config.output_groups
        if not starts:
            return logits
        group = self.group_head(hidden).float().log_softmax(-1)
        logits = logits.float()
        # one offset per group (log p(group) minus its logsumexp), gathered back to its tokens
        offset = group - group_logsumexp(logits, self.group_of_token, len(starts))
        return logits + offset.gather(-1, self.group_of_token.expand_as(logits))

    def tilt_basis(self) -> torch.Tensor:
        """(vocab, 2 n_features + feature_logits_width [+ MOMENTUM_TERMS]) what each code's logit tilt is a
        linear map of: its features, their squares, the learnt MLP of them and its four-momentum terms; zero
        for special tokens, which are not tilted."""
        parts = [self.code_features, self.code_features.square()]
        if self.config.feature_logits_width:
            is_code = torch.arange(self.config.vocab_size, device=self.code_features.device) < self.config.n_codes
            parts.append(self.feature_basis(self.code_features) * is_code[:, None])
        if self.config.momentum_logits:
            parts.append(self.momentum_basis)
        return torch.cat(parts, -1)

    def density_loss(self, hidden: torch.Tensor, targets: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
        """The mean negative log-density (head coordinates) of the target objects' features, the head
        evaluated at every position and the others masked out: the shapes do not depend on how many
        objects a batch holds, so a compiled step compiles once."""
        is_object = ((targets >= 0) & (targets < self.config.n_codes)).flatten()
        tokens = torch.where(is_object, targets.flatten(), 0)
        mixture = self.density(hidden.flatten(0, 1), self.wte(tokens), tokens)
        z = self.density.to_density(target_features.flatten(0, 1).float())
        if self.config.density_pt_order:
            mixture.upper = self.density.upper_log_pt(targets, z[:, 0].view(targets.shape)).flatten()
        log_p = mixture.log_prob(z, self.density.code_mask[tokens])
        return -torch.where(is_object, log_p, 0.0).sum() / is_object.sum().clamp(min=1)

    def object_densities(self, hidden: torch.Tensor, targets: torch.Tensor, target_features: torch.Tensor):
        """(mixture, density coordinates z, feature mask) of the N positions whose target is an object
        token, in row-major order: `hidden` (B, T, n_embd) predicts `targets` (B, T), objects with
        normalized features `target_features` (B, T, n_features)."""
        if not self.config.density_components:
            raise ValueError("this backbone has no density head (model.density_components = 0)")
        is_object = (targets >= 0) & (targets < self.config.n_codes)
        tokens = targets[is_object]
        mixture = self.density(hidden[is_object], self.wte(tokens), tokens)
        z = self.density.to_density(target_features.flatten(0, 1).float()).view(*targets.shape, -1)
        if self.config.density_pt_order:
            mixture.upper = self.density.upper_log_pt(targets, z[..., 0])[is_object]
        return mixture, z[is_object], self.density.code_mask[tokens]

    def decode_step(self, idx: torch.Tensor, pos: torch.Tensor, kv_cache: KVCache,
                    features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, vocab), final hidden state (B, n_embd)) of one token per sequence, `idx` (B, 1),
        with the hybrid's `features` (B, 1, n_features) where given (else its code's), at position
        `pos` (a one-element long tensor), attending to the cache up to `pos`. Leaves
        `kv_cache.length` alone: the caller owns the position."""
        x = self.embed(idx, features) + self.wpe(pos)
        for i, block in enumerate(self.blocks):
            x = block(x, False, None, kv_cache, i, pos)
        hidden = self.ln_f(x)[:, 0]
        return self.logits(hidden), hidden

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()

    def reinitialized(self) -> "GPT":
        """The same architecture and description with fresh weights (from torch's global generator);
        the hybrid's code table is kept: it is data (what codes decode to), not learnt."""
        fresh = GPT(self.config).to(self.wte.weight.device)
        if self.config.n_features:
            fresh.code_features.copy_(self.code_features)
        if self.config.momentum_logits:
            fresh.momentum_basis.copy_(self.momentum_basis)
        for name in self.DESCRIPTION:
            setattr(fresh, name, getattr(self, name))
        return fresh

    def save_pretrained(self, folder: str | Path, train_config: dict | None = None, **extra) -> None:
        """Write config.json + model.safetensors into `folder`: the architecture, the attributes above,
        `train_config` (default: the loaded one; sampling reads the process dropout from it) and `extra`
        entries (e.g. metrics)."""
        from common.pretrained import check_save_folder, write_config, write_weights

        if self.vocab is None:
            raise ValueError("set the model's vocab (and conditional, tokenizer_fingerprint) before saving it")
        check_save_folder(folder, FORMAT)
        if train_config is None:
            train_config = self.pretrained_config.get("train_config") or {
                "train": {"process_dropout": self.process_dropout}}
        write_config(folder, {
            "format": FORMAT, "gpt": asdict(self.config), "weights_sha256": write_weights(folder, self),
            "vocab": self.vocab.to_dict(), "conditional": self.conditional,
            "tokenizer_fingerprint": self.tokenizer_fingerprint, "train_config": train_config, **extra})
        self.source = Path(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu") -> "GPT":
        """The model of a folder written by `save_pretrained` (or `python -m backbone.pretrain`), or of a
        bundled model by name (`event-small`), in eval mode."""
        from common.pretrained import load_weights, model_folder, read_config

        folder = model_folder(folder, "backbone")
        config = read_config(folder, FORMAT, "backbone")
        model = load_weights(cls(GPTConfig(**config["gpt"])), folder, device, config).eval()
        model.describe(config)
        model.source, model.pretrained_config = Path(folder), config
        return model

    def describe(self, config: dict) -> None:
        """Set `vocab`, `conditional`, `tokenizer_fingerprint` and `process_dropout` from a model
        folder's config (a backbone's, or a classifier's, which records them too)."""
        self.vocab = Vocab.from_dict(config["vocab"])
        self.conditional = bool(config["conditional"])
        self.tokenizer_fingerprint = config.get("tokenizer_fingerprint")
        self.process_dropout = float(config.get("train_config", {}).get("train", {}).get("process_dropout", 0.0))


def check_pair(model, tokenizer) -> None:
    """Refuse a model (a backbone or a classifier) and a tokenizer that do not share a codebook: another
    number of codes, or, where both record it, another tokenizer fingerprint (weights and features)."""
    where, tok = model.source or "(in memory)", tokenizer.source or "(in memory)"
    n_codes = model.vocab.n_codes
    if n_codes != tokenizer.vocab_size:
        raise ModelMismatchError(f"backbone {where} was trained on tokens of {n_codes} codes, tokenizer "
                                 f"{tok} has {tokenizer.vocab_size}: use the tokenizer it was trained with")
    expected = model.tokenizer_fingerprint
    if expected and tokenizer.fingerprint and expected != tokenizer.fingerprint:
        raise ModelMismatchError(f"backbone {where} was trained on tokens of tokenizer {expected[:12]}, but "
                                 f"tokenizer {tok} is {tokenizer.fingerprint[:12]} (the same number of codes, "
                                 "other weights or features): use the tokenizer it was trained with")
