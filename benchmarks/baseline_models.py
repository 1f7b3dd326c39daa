"""The baseline networks and how they are trained: a transformer on continuous object features (Abasov et
al.'s "Large 1h") with its masked-variable pretraining, and weaver-core's Particle Transformer.

Both read the same padded batch `(features, types, charges, padding, four-vectors)` made by `padded`.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

BATCH_FIELDS = ("features", "types", "charges", "padding", "vectors")


def padded(events, transform) -> tuple[torch.Tensor, ...]:
    """(features (N, T, F) standardized by `transform`, types (N, T), charges (N, T), padding (N, T),
    four-vectors (N, T, 4) as px, py, pz, E in GeV) of every event; constituents are about the jet axis."""
    from events.kinematics import ptetaphim_to_cartesian
    from tokenizer.features import flat_objects

    obj = flat_objects(events.objects)
    x = transform.transform(obj)
    counts = obj["counts"]
    n, t = len(counts), max(int(counts.max()), 1)
    row = np.repeat(np.arange(n), counts)
    col = np.arange(len(x)) - np.repeat(np.cumsum(counts) - counts, counts)
    feats, vectors = np.zeros((n, t, x.shape[1]), np.float32), np.zeros((n, t, 4), np.float32)
    types, charge = np.zeros((n, t), np.int64), np.zeros((n, t), np.int64)
    pad = np.ones((n, t), bool)
    p4 = np.stack(ptetaphim_to_cartesian(*(obj[k].astype(np.float64) for k in ("pt", "eta", "phi", "mass"))), 1)
    feats[row, col], types[row, col], charge[row, col], pad[row, col], vectors[row, col] = (
        x, obj["type"], obj["charge"], False, p4)
    return tuple(torch.from_numpy(a) for a in (feats, types, charge, pad, vectors))


def batch(data, rows) -> tuple[torch.Tensor, ...]:
    """The events `rows` of `data`, cut to the longest of them (padding only costs time)."""
    pad = data[3][rows]
    length = max(int((~pad).sum(1).max()), 1)
    return tuple(a[rows][:, :length] for a in data)


class ObjectTransformer(nn.Module):
    """Abasov et al.'s "Large 1h": object features plus type and charge embeddings, a transformer encoder,
    mean pooling and a linear head; `hide` replaces the features of chosen objects by a learned vector
    (masked-variable pretraining)."""

    def __init__(self, n_features: int, n_classes: int, width: int = 125, layers: int = 5, heads: int = 5,
                 ff: int = 512, dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Linear(n_features, width)
        self.kind = nn.Embedding(16, width)
        self.charge = nn.Embedding(3, width)
        self.hidden = nn.Parameter(torch.zeros(width))
        layer = nn.TransformerEncoderLayer(width, heads, ff, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_classes))

    def states(self, x, types, charge, pad, hide=None):
        e = self.embed(x)
        if hide is not None:
            e = torch.where(hide.unsqueeze(-1), self.hidden.to(e.dtype), e)
        return self.encoder(e + self.kind(types) + self.charge(charge + 1), src_key_padding_mask=pad)

    def forward(self, x, types, charge, pad, vectors=None):
        h = self.states(x, types, charge, pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1))


class ParticleTransformer(nn.Module):
    """weaver-core's ParticleTransformer with its published configuration (embedding 128, 8 heads, 8 layers,
    2 class-attention layers, pairwise features from the four-vectors); the per-object input is the
    standardized features, a one-hot type and the charge."""

    def __init__(self, n_features: int, n_classes: int, n_types: int = 7):
        super().__init__()
        try:
            from weaver.nn.model.ParticleTransformer import ParticleTransformer as ParT
        except ImportError as e:
            raise SystemExit("the Particle Transformer baseline needs weaver-core: pip install --no-deps "
                             "weaver-core (only its model file is used, which needs torch alone)") from e
        import logging

        logging.getLogger("weaver").setLevel(logging.WARNING)
        self.n_types = n_types
        self.part = ParT(input_dim=n_features + n_types + 1, num_classes=n_classes, pair_input_dim=4,
                         use_pre_activation_pair=False, embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64],
                         num_heads=8, num_layers=8, num_cls_layers=2, fc_params=[],
                         cls_block_params={"dropout": 0, "attn_dropout": 0, "activation_dropout": 0})

    def forward(self, x, types, charge, pad, vectors):
        onehot = F.one_hot(types.clamp(max=self.n_types - 1), self.n_types).to(x.dtype)
        inputs = torch.cat([x, onehot, charge.unsqueeze(-1).to(x.dtype)], -1).transpose(1, 2)
        return self.part(inputs, v=vectors.transpose(1, 2), mask=(~pad).unsqueeze(1).to(x.dtype))


MODELS = {"transformer": ObjectTransformer, "part": ParticleTransformer}


def predict(model, data, indices, batch_size: int = 512) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.cat([torch.softmax(model(*batch(data, indices[s:s + batch_size])), -1)
                          for s in range(0, len(indices), batch_size)]).numpy()


def fit(model, data, y, train, val, weight, max_steps: int, batch_size: int, seed: int, lr: float = 1e-4,
        eval_every: int = 100, patience: int = 5) -> int:
    """AdamW at `lr` with early stopping on the validation loss (every `eval_every` steps, `patience`
    evaluations), keeping the best weights; returns the steps made."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    w = torch.tensor(weight, dtype=torch.float32)
    rng = np.random.default_rng([seed, 3])
    best, best_state, bad, step = float("inf"), None, 0, 0
    while step < max_steps and bad < patience:
        order = rng.permutation(len(train))
        for s in range(0, len(order), batch_size):
            model.train()
            rows = order[s:s + batch_size]
            logits = model(*batch(data, train[rows]))
            loss = (F.cross_entropy(logits, torch.from_numpy(y[train[rows]]), reduction="none") * w[rows]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % eval_every == 0:
                p = predict(model, data, val, batch_size)
                val_loss = float(-np.log(np.clip(p[np.arange(len(val)), y[val]], 1e-12, None)).mean())
                if val_loss < best - 1e-4:
                    best, best_state, bad = val_loss, copy.deepcopy(model.state_dict()), 0
                else:
                    bad += 1
            if step >= max_steps or bad >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return step


def masked_pretrain(model: ObjectTransformer, data, steps: int, batch_size: int, seed: int, rate: float = 0.3,
                    lr: float = 3e-4, warmup: int = 200, progress: bool = True) -> list[float]:
    """Masked-variable pretraining without labels: the features of a fraction `rate` of the objects are
    hidden and regressed (mean squared error on the hidden objects only) from the rest of the event, AdamW
    at `lr` with linear warm-up and cosine decay. The regression head is thrown away; returns the loss
    every 100 steps."""
    from tqdm import tqdm

    regress = nn.Linear(model.hidden.numel(), data[0].shape[-1])
    params = list(model.parameters()) + list(regress.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + np.cos(np.pi * min(s / max(steps, 1), 1.0))))
    rng, gen = np.random.default_rng([seed, 7]), torch.Generator().manual_seed(seed)
    n, losses, running = len(data[0]), [], []
    model.train()
    for step in tqdm(range(steps), desc="masked pretraining", unit="step", disable=not progress):
        x, types, charge, pad, _ = batch(data, rng.integers(0, n, batch_size))
        hide = (torch.rand(pad.shape, generator=gen) < rate) & ~pad
        h = model.states(x, types, charge, pad, hide)
        loss = F.mse_loss(regress(h[hide]), x[hide])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        running.append(float(loss.detach()))
        if (step + 1) % 100 == 0:
            losses.append(float(np.mean(running)))
            running = []
    return losses
