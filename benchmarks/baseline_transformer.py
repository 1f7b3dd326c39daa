"""Baseline: a transformer on continuous object features trained from scratch, as Abasov et al.'s
"Large 1h" (embedding 125, 5 layers, feed-forward 512, dropout 0.1, AdamW at 1e-4), for the 0t..4t
classification of the real event-mode run, with the same files, label counts, stratified subsamples
and test metric as `finetune.data_efficiency`.

    python benchmarks/baseline_transformer.py --train data/real/{ttbar,...}_s1.h5 --test data/real/{ttbar,...}_s2.h5

Each object enters as its standardized features (log pt, eta, cos phi, sin phi, log mass, b-tag; the
standardization fitted on the training events) plus learned embeddings of its type and charge; the
event is the mean of the final states. Early stopping on a validation subsample keeps the best weights.
Writes benchmarks/results/baseline_transformer_<tag>.json and prints a markdown table.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baseline_data import baseline_parser, capped_events, run_baseline


class ObjectTransformer(nn.Module):
    def __init__(self, n_features: int, n_classes: int, width: int = 125, layers: int = 5, heads: int = 5,
                 ff: int = 512, dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Linear(n_features, width)
        self.kind = nn.Embedding(16, width)
        self.charge = nn.Embedding(3, width)
        layer = nn.TransformerEncoderLayer(width, heads, ff, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_classes))

    def forward(self, x, types, charge, pad):
        h = self.encoder(self.embed(x) + self.kind(types) + self.charge(charge + 1), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1))


def padded(events, transform):
    """(features (N, T, F), types (N, T), charges (N, T), padding (N, T)) of every event."""
    from tokenizer.features import flat_objects

    obj = flat_objects(events.objects)
    x = transform.transform(obj)
    counts = obj["counts"]
    n, t = len(counts), max(int(counts.max()), 1)
    row = np.repeat(np.arange(n), counts)
    col = np.arange(len(x)) - np.repeat(np.cumsum(counts) - counts, counts)
    feats = np.zeros((n, t, x.shape[1]), np.float32)
    types, charge = np.zeros((n, t), np.int64), np.zeros((n, t), np.int64)
    pad = np.ones((n, t), bool)
    feats[row, col], types[row, col], charge[row, col], pad[row, col] = x, obj["type"], obj["charge"], False
    return tuple(torch.from_numpy(a) for a in (feats, types, charge, pad))


def predict(model, data, indices, batch_size=1024) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.cat([torch.softmax(model(*(a[indices[s:s + batch_size]] for a in data)), -1)
                          for s in range(0, len(indices), batch_size)]).numpy()


def fit(model, data, y, train, val, weight, max_steps: int, batch_size: int, seed: int) -> int:
    """AdamW at 1e-4 with early stopping on the validation loss (every 100 steps, patience 5); steps made."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    w = torch.tensor(weight, dtype=torch.float32)
    rng = np.random.default_rng([seed, 3])
    best, best_state, bad, step = float("inf"), None, 0, 0
    while step < max_steps and bad < 5:
        order = rng.permutation(len(train))
        for s in range(0, len(order), batch_size):
            model.train()
            rows = order[s:s + batch_size]
            logits = model(*(a[train[rows]] for a in data))
            loss = (F.cross_entropy(logits, torch.from_numpy(y[train[rows]]), reduction="none") * w[rows]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 100 == 0:
                p = predict(model, data, val)
                val_loss = float(-np.log(np.clip(p[np.arange(len(val)), y[val]], 1e-12, None)).mean())
                if val_loss < best - 1e-4:
                    best, best_state, bad = val_loss, copy.deepcopy(model.state_dict()), 0
                else:
                    bad += 1
            if step >= max_steps or bad >= 5:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return step


def main() -> None:
    from tokenizer.features import FeatureTransform, flat_objects

    parser = baseline_parser(__doc__)
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(2)
    train_events = capped_events(args.train, args.max_events_per_file)
    test_events = capped_events(args.test, args.max_events_per_file)
    transform = FeatureTransform.fit("event", flat_objects(train_events.objects))
    data, test = padded(train_events, transform), padded(test_events, transform)
    y, y_test = train_events.info["ntop"].astype(np.int64), test_events.info["ntop"].astype(np.int64)

    def train_and_predict(train, val, weight, seed, n_classes):
        torch.manual_seed(seed)
        model = ObjectTransformer(data[0].shape[-1], n_classes)
        steps = fit(model, data, y, train, val, weight, args.max_steps, args.batch_size, seed)
        return predict(model, test, np.arange(len(y_test))), {"steps": steps, "parameters": sum(
            p.numel() for p in model.parameters())}

    run_baseline(args, "baseline_transformer", "continuous-feature transformer from scratch", y, y_test,
                 train_and_predict,
                 {"model": "transformer on object features (embedding 125, 5 layers, ff 512, dropout 0.1), AdamW 1e-4"})


if __name__ == "__main__":
    main()
