"""Anomaly scores of events, one per event and method, higher = more anomalous.

    nll       negative log-likelihood of the event under the backbone (causal): total and per token
    masked    cross-entropy of masked object tokens (bidirectional), averaged over several maskings
    entropy   entropy of a fine-tuned process classifier's probabilities (Abasov et al.)
    quantization  the worst tokenizer residual among the event's objects: how badly its tokens represent
              it. Objects unlike any seen in training get ordinary tokens, so the token scores above
              cannot see them; this one can
    head      a head trained by head swap to tell the data from a Standard Model reference (weak
              supervision, classification without labels); each event scored by a model of the
              folds it was not trained on
Scores come with flags for what the model could not represent (objects beyond the caps, object
types the tokenizer has no codes for, events without objects).
"""
from __future__ import annotations

import awkward as ak
import numpy as np
import torch
from torch.nn import functional as F

from backbone.data import TokenSequences, to_device
from backbone.masking import counter_uniform, mask_tokens
from events.model import Events

METHODS = ("nll", "masked", "entropy", "quantization", "head")
COLUMNS = {"nll": ("nll", "nll_per_token"), "masked": ("masked",), "entropy": ("entropy",),
           "quantization": ("quantization",), "head": ("head",)}

FLAG_TRUNCATED = 1  # objects lost to the multiplicity caps
FLAG_UNKNOWN_TYPES = 2  # objects of types the tokenizer has no codes for, left out
FLAG_NO_OBJECTS = 4  # nothing to mask: the masked score is undefined (NaN)
FLAGS = {FLAG_TRUNCATED: "objects beyond the caps", FLAG_UNKNOWN_TYPES: "object types unknown to the tokenizer",
         FLAG_NO_OBJECTS: "no objects"}


def representable(events: Events, tokenizer) -> tuple[Events, np.ndarray]:
    """(events with only the object types the tokenizer knows, a flag word per event)."""
    known = np.isin(ak.to_numpy(ak.flatten(events.objects["type"])), list(tokenizer.model.types))
    keep = ak.unflatten(known, ak.to_numpy(ak.num(events.objects)))
    flags = np.where(events.info["n_truncated"] > 0, FLAG_TRUNCATED, 0)
    flags |= np.where(ak.to_numpy(ak.all(keep, axis=1)), 0, FLAG_UNKNOWN_TYPES)
    kept = Events(events.objects[keep], events.info, events.process_names)
    flags |= np.where(ak.to_numpy(ak.num(kept.objects)) == 0, FLAG_NO_OBJECTS, 0)
    return kept, flags.astype(np.int32)


@torch.no_grad()
def nll_scores(model, seqs: TokenSequences, device, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Total and per-token negative log-likelihood of each event's object tokens and end token."""
    vocab = seqs.vocab
    total, per_token = np.empty(len(seqs)), np.empty(len(seqs))
    for rows, idx, features in seqs.sorted_batches(batch_size):
        idx, features = to_device(idx, features, device)
        logits, _ = model(idx[:, :-1], causal=True, features=None if features is None else features[:, :-1])
        targets = idx[:, 1:]
        scored = (targets < vocab.n_codes) | (targets == vocab.eos)  # not PAD, not the process position
        nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none") * scored
        total[rows] = nll.sum(1).cpu().numpy()
        per_token[rows] = (nll.sum(1) / scored.sum(1)).cpu().numpy()
    return {"nll": total, "nll_per_token": per_token}


@torch.no_grad()
def masked_scores(model, seqs: TokenSequences, device, rate: float = 0.35, n_masks: int = 8, seed: int = 0,
                  batch_size: int = 512, first: int = 0) -> dict[str, np.ndarray]:
    """Mean cross-entropy of the masked object tokens, averaged over `n_masks` random maskings;
    NaN for events without objects. The masks of event i (counted from `first`, its place in the
    file) depend only on (seed, i): scores do not change with batch or chunk sizes."""
    vocab = seqs.vocab
    out = np.zeros(len(seqs))
    for rows, idx, features in seqs.sorted_batches(batch_size):
        idx, features = to_device(idx, features, device)
        pad = idx == vocab.pad
        event = (first + rows)[:, None]
        position = np.arange(idx.shape[1])[None, :]
        for k in range(n_masks):
            u = torch.from_numpy(counter_uniform(seed, k, event, position)).float()
            inputs, targets = mask_tokens(idx, vocab, rate, uniform=u)
            logits, _ = model(inputs, causal=False, pad_mask=pad, features=features)  # hidden at MASK
            ce = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none", ignore_index=-100)
            n = (targets != -100).sum(1)
            out[rows] += (ce.sum(1) / n.clamp(min=1)).cpu().numpy() / n_masks
    out[np.diff(seqs.offsets) == 0] = np.nan
    return {"masked": out}


def entropy_scores(classifier, seqs: TokenSequences, device, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Entropy of the classifier's class probabilities: high where no known process fits."""
    from finetune.metrics import entropy
    from finetune.train import predict

    return {"entropy": entropy(predict(classifier, seqs, batch_size=batch_size, device=device))}


def quantization_scores(residuals: ak.Array) -> dict[str, np.ndarray]:
    """The largest per-object tokenizer residual of each event (NaN without objects)."""
    worst = ak.to_numpy(ak.fill_none(ak.max(residuals, axis=1), np.nan)).astype(np.float64)
    return {"quantization": worst}


def head_scores(models: list, fold_of: np.ndarray, seqs: TokenSequences, device,
                batch_size: int = 512) -> dict[str, np.ndarray]:
    """P(data) from the weakly supervised heads; event i is scored by the model of fold `fold_of[i]`,
    which never saw it in training."""
    from finetune.train import predict

    out = np.empty(len(seqs))
    for k, model in enumerate(models):
        rows = np.flatnonzero(fold_of == k)
        if len(rows):
            out[rows] = predict(model, seqs, rows, batch_size, device)[:, 1]
    return {"head": out}
