"""Anomaly scores of events, one per event and method, higher = more anomalous.

    density   (the default for backbones with a density head) two scores of the full density
              p(tokens) x prod_i p(x_i | token_i, context):
              `density_nll`, -log p(event) with the objects' features in the stated space (log pt,
              eta, phi, log(1 + m), b-tag: the tokenizer's normalization undone, so comparable across
              tokenizers); the strongest score on the real run's signals, but, like any likelihood
              of a variable number of objects, it grows with the number of objects;
              `surprise`, the same density made comparable across object counts: every token and
              every object's features gives a tail probability u (uniform on [0, 1] for events the
              model describes), and the m of them are combined into one calibrated surprise (the
              larger of Fisher's and Tippett's, see `combined`), about Exp(1) for every m under the
              model; it finds single extraordinary objects, not collective ones.
              Also per-object contributions to the surprise (which object made the event anomalous)
    calibrated  the same density split exactly in two, density_nll = composition + kinematics:
              `composition`, -log P(which objects), from the next-token softmax summed over each type's
              codes (the end token its own type), and `kinematics`, the objects' codes and features
              given those types; each made a tail probability against a Standard Model reference
              within the event's multiplicity class, per-object terms through each type's empirical
              quantiles (finetune.calibration); `calibrated`, the two combined, is Exp(1) for the
              reference's events whatever their object count, so that it cannot count objects (nor
              find a signal by its multiplicity alone). Per-object blame: each object's -log u
    nll       negative log-likelihood of the event under the backbone (causal): total and per token
    masked    cross-entropy of masked object tokens (bidirectional), averaged over several maskings;
              `masked_surprise`, the same maskings' tail probabilities combined as the surprise's
    entropy   entropy of a fine-tuned process classifier's probabilities (Abasov et al.)
    quantization  the worst tokenizer residual among the event's objects: how badly its tokens represent
              it. Objects unlike any seen in training get ordinary tokens, so the token scores above
              cannot see them; this one can
    head      a head trained by head swap to tell the data from a Standard Model reference (weak
              supervision, classification without labels), on a bounded sample of the data; each
              event of the sample scored by a model of the folds it was not trained on, every
              later event by the mean of the folds' models (none of which saw it)
Scores come with flags for what the model could not represent (objects beyond the caps, object
types the tokenizer has no codes for, events without objects, impossible values repaired on
reading: tokenizer.tokenizer.FLAGS). finetune.scorer registers the methods and runs them.
"""
from __future__ import annotations

import math

import awkward as ak
import numpy as np
import torch

from backbone.data import TokenSequences, to_device
from backbone.masking import counter_uniform, mask_tokens
from backbone.model import group_logsumexp


@torch.no_grad()
def nll_scores(model, seqs: TokenSequences, device, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Total and per-token negative log-likelihood of each event's object tokens and end token."""
    vocab = seqs.vocab
    total, per_token = np.empty(len(seqs)), np.empty(len(seqs))
    for rows, idx, features in seqs.sorted_batches(batch_size):
        idx, features = to_device(idx, features, device)
        hidden = model.hidden_states(idx[:, :-1], causal=True,
                                     features=None if features is None else features[:, :-1])
        targets = idx[:, 1:]
        scored = event_targets(targets, vocab)
        nll = -target_log_probs(model.logits, hidden, targets, scored)[0]
        total[rows] = nll.sum(1).cpu().numpy()
        per_token[rows] = (nll.sum(1) / scored.sum(1)).cpu().numpy()
    return {"nll": total, "nll_per_token": per_token}


def event_targets(targets: torch.Tensor, vocab) -> torch.Tensor:
    """Where `targets` are what an event's likelihood is made of: its objects, its end and its multiplicity
    token (not PAD, not the process)."""
    return (targets < vocab.n_codes) | (targets == vocab.eos) | (targets >= vocab.first_count)


#: positions whose language-model logits are held at once while scoring: a few (SLICE_ROWS, vocab) float32
#: arrays (logits, log-probabilities, the tail's masked copy), 34 MB each at 8,200 tokens, whatever the batch
SLICE_ROWS = 1024


def target_log_probs(head, states: torch.Tensor, targets: torch.Tensor, where: torch.Tensor, tail: bool = False,
                     rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log p(target), with `tail` also the log of its mid-p tail probability P[p(T) < p(t)] + p(t)/2, else
    None), each (B, T) float32, at the positions `where` (B, T) and 0 elsewhere, under softmax(head(states)):
    `states` (B, T, n_embd) final hidden states and `head` the language-model head. The tail is near 1 for
    the likeliest token, tiny for an improbable one, and about uniform on [0, 1] for tokens drawn from the
    model.

    The head is applied only at `where`, `rows` positions at a time (default SLICE_ROWS): the (B, T, vocab)
    logits of a batch and their log-softmax, 390 MB each for 512 events of 23 tokens over 8,200, are never
    held whole, and memory stays that of the transformer's own pass."""
    rows = rows or SLICE_ROWS
    picked, wanted = states[where], targets[where]
    log_p = torch.empty(len(wanted), dtype=torch.float32, device=states.device)
    log_tail = torch.empty_like(log_p) if tail else None
    for a in range(0, len(wanted), rows):
        logp = torch.log_softmax(head(picked[a:a + rows]).float(), -1)
        observed = logp.gather(-1, wanted[a:a + rows, None])
        log_p[a:a + rows] = observed[:, 0]
        if tail:
            # in log space: a token far below float32's smallest probability keeps a finite surprise
            log_below = torch.logsumexp(logp.masked_fill(logp >= observed, float("-inf")), -1)
            log_tail[a:a + rows] = torch.logaddexp(log_below, observed[:, 0] - math.log(2))

    def spread(values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(targets.shape, dtype=torch.float32, device=states.device)
        out[where] = values
        return out

    return spread(log_p), None if log_tail is None else spread(log_tail)


def token_log_tail(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, T) log mid-p tail probability (see `target_log_probs`) of each target token under
    softmax(`logits`) (B, T, V), logits already computed; targets below 0 read as token 0."""
    everywhere = torch.ones(targets.shape, dtype=torch.bool, device=targets.device)
    return target_log_probs(lambda x: x, logits, targets.clamp(min=0), everywhere, tail=True)[1]


def fisher(surprise_sum: torch.Tensor, n_terms: torch.Tensor) -> torch.Tensor:
    """-log P[Gamma(m, 1) > S]: the m tail probabilities whose -log sum to S combined (Fisher's
    method), an Exp(1) surprise whatever m when they are uniform; 0 where m = 0."""
    from backbone.density import log_gamma_sf

    out = -log_gamma_sf(n_terms.clamp(min=1).double(), surprise_sum.double())
    return torch.where(n_terms > 0, out, torch.zeros_like(out))


def combined(terms: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """The event surprise from its terms' -log u (B, T), where `counted` (B, T): the larger of two
    calibrated surprises, -log of Fisher's combined p-value (sensitive to many mildly improbable
    terms: an improbable number of objects, several hard ones) and of Tippett's, 1 - (1 - u_min)^m
    (the least probable term alone: one extraordinary object, which Fisher's sum dilutes among the
    ordinary ones). Each is Exp(1) whatever the number of terms m for events the model describes;
    taking the larger shifts that by at most log 2."""
    terms = torch.where(counted, terms, torch.zeros_like(terms)).double()
    m = counted.sum(1).double()
    log_p_fisher = -fisher(terms.sum(1), m)
    log_u_min = -terms.max(1).values
    # log(1 - (1 - u)^m); for tiny u, where exp(log u) underflows, its limit log(m u)
    exact = torch.log(-torch.expm1(m * torch.log1p(-torch.exp(log_u_min).clamp(max=1 - 1e-16))))
    log_p_tippett = torch.where(log_u_min < -30, torch.log(m.clamp(min=1)) + log_u_min, exact)
    surprise = -torch.minimum(log_p_fisher, log_p_tippett)
    return torch.where(m > 0, surprise, torch.zeros_like(surprise))


def check_density(model, seqs: TokenSequences, method: str) -> None:
    """Refuse a backbone without a density head, or sequences without the objects' features."""
    if not model.config.density_components:
        raise ValueError(f"method {method} needs a backbone with a density head (model.density_components > 0)")
    if seqs.features is None:
        raise ValueError(f"method {method} needs the objects' features (encode with features=True)")


def object_feature_nll(model, hidden: torch.Tensor, targets: torch.Tensor, target_features: torch.Tensor):
    """((B, T) -log p(features | token, context) of each target object in the stated space, 0 elsewhere;
    the (mixture, z, mask) of those objects, model.object_densities)."""
    mixture, z, mask = model.object_densities(hidden, targets, target_features)
    is_object = (targets >= 0) & (targets < model.config.n_codes)
    out = torch.zeros(targets.shape, device=hidden.device)
    out[is_object] = -(mixture.log_prob(z, mask) + model.density.log_jacobian(z, mask, physical=False))
    return out, (mixture, z, mask)


@torch.no_grad()
def density_scores(model, seqs: TokenSequences, device, batch_size: int = 512) -> dict:
    """The `density_nll` and `surprise` of each event (see the module) and per-object surprises
    (`objects`: {"surprise": jagged (events, objects)}, each the token's and the features' -log u).
    Needs a backbone with a density head and sequences with the objects' features."""
    check_density(model, seqs, "density")
    vocab = seqs.vocab
    counts = np.diff(seqs.offsets)
    surprise, density_nll = np.empty(len(seqs)), np.empty(len(seqs))
    per_object = np.empty(int(counts.sum()))
    hybrid = bool(model.config.n_features)
    for rows, idx, features in seqs.sorted_batches(batch_size):
        idx, features = to_device(idx, features, device)
        hidden = model.hidden_states(idx[:, :-1], causal=True, features=features[:, :-1] if hybrid else None)
        targets = idx[:, 1:]
        scored = event_targets(targets, vocab)
        log_p, log_tail = target_log_probs(model.logits, hidden, targets, scored, tail=True)
        nll, token_tail = -log_p, -log_tail
        feature_nll, (mixture, z, mask) = object_feature_nll(model, hidden, targets, features[:, 1:])
        is_object = (targets >= 0) & (targets < vocab.n_codes)
        feature_tail = torch.zeros(targets.shape, device=device)
        feature_tail[is_object] = -mixture.log_tail(z, mask).float()
        terms = torch.cat([token_tail, feature_tail], 1)
        surprise[rows] = combined(terms, torch.cat([scored, is_object], 1)).cpu().numpy()
        density_nll[rows] = (nll.sum(1) + feature_nll.sum(1)).double().cpu().numpy()
        # each object's token (at its own position) and features: the event's objects in order
        per_object[seqs.object_indices(rows)] = (token_tail + feature_tail)[is_object].cpu().numpy()
    return {"surprise": surprise, "density_nll": density_nll,
            "objects": {"surprise": ak.unflatten(per_object, counts)}}


def type_groups(code_types: np.ndarray, vocab, size: int, device) -> torch.Tensor:
    """(size,) the group of each of a model's `size` output tokens: the index of its code's object type
    among `code_types`' types, the end token one more, each multiplicity token one of its own (it says
    which objects come), -1 for the rest (PAD, BOS, MASK, processes)."""
    types = np.unique(code_types)
    group = torch.full((size,), -1, dtype=torch.long, device=device)
    group[:vocab.n_codes] = torch.as_tensor(np.searchsorted(types, code_types), device=device)
    group[vocab.eos] = len(types)
    group[vocab.first_count:vocab.size] = torch.arange(len(types) + 1, len(types) + 1 + vocab.size - vocab.first_count,
                                                       device=device)
    return group


def output_log_probs(head, states: torch.Tensor, targets: torch.Tensor, group: torch.Tensor,
                     rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(target), log P(the target's group)) (B, T), both from softmax(head(states)), whatever head
    makes the output (`GPT.logits`), a group's probability the sum over its tokens. The head runs on
    about `rows` positions at a time (default SLICE_ROWS): a batch's (B, T, vocab) output is never held
    whole."""
    n_groups = int(group.max()) + 1
    pooled = torch.where(group < 0, n_groups, group)  # tokens of no group: one more, never read
    step = max(1, (rows or SLICE_ROWS) // states.shape[1])
    log_p = torch.zeros(targets.shape, dtype=torch.float32, device=states.device)
    log_group = torch.zeros_like(log_p)
    wanted = targets.clamp(min=0)
    for a in range(0, len(states), step):
        logp = torch.log_softmax(head(states[a:a + step]).float(), -1)
        by_group = group_logsumexp(logp, pooled, n_groups + 1)
        log_p[a:a + step] = logp.gather(-1, wanted[a:a + step, :, None])[..., 0]
        log_group[a:a + step] = by_group.gather(-1, group[wanted[a:a + step]].clamp(min=0)[..., None])[..., 0]
    return log_p, log_group


@torch.no_grad()
def composition_kinematics(model, seqs: TokenSequences, device, code_types: np.ndarray,
                           batch_size: int = 512) -> dict:
    """Each event's density split in two, density_nll = composition + the sum of its objects' kinematics:
    `composition` (per event), -log P(which objects, in order, and the end), the sum over next-token
    targets of -log P(the target's object type, or the end | context); `kinematics` (per object, flat in
    the events' order), -log p(code | its type, context) - log p(features | code, context) in the stated
    space; `type` (per object) and `offsets` (events + 1). `code_types`: each code's object type
    (Tokenizer.code_types)."""
    check_density(model, seqs, "calibrated")
    vocab = seqs.vocab
    group = type_groups(np.asarray(code_types)[:vocab.n_codes], vocab, model.config.vocab_size, device)
    composition = np.empty(len(seqs))
    kinematics = np.empty(len(seqs.codes))
    hybrid = bool(model.config.n_features)
    for rows, idx, features in seqs.sorted_batches(batch_size):
        idx, features = to_device(idx, features, device)
        inputs, targets = idx[:, :-1], idx[:, 1:]
        given = features[:, :-1] if hybrid else None
        scored = event_targets(targets, vocab)
        is_object = (targets >= 0) & (targets < vocab.n_codes)
        hidden = model.hidden_states(inputs, causal=True, features=given)  # one pass for both parts
        log_p, log_type = output_log_probs(model.logits, hidden, targets, group)
        feature_nll = object_feature_nll(model, hidden, targets, features[:, 1:])[0]
        composition[rows] = -torch.where(scored, log_type, 0.0).sum(1).double().cpu().numpy()
        kinematics[seqs.object_indices(rows)] = (log_type - log_p + feature_nll)[is_object].cpu().numpy()
    return {"composition": composition, "kinematics": kinematics,
            "type": np.asarray(code_types)[seqs.codes], "offsets": seqs.offsets}


def calibrated_scores(model, seqs: TokenSequences, device, calibration, code_types: np.ndarray,
                      batch_size: int = 512) -> dict:
    """`calibrated`, `composition` and `kinematics` of each event against the reference's `calibration`
    (finetune.calibration), and per-object `kinematics` (each object's -log u): see the module."""
    parts = composition_kinematics(model, seqs, device, code_types, batch_size)
    out = calibration.score(parts)
    objects = out.pop("objects")
    return {**out, "objects": {"kinematics": ak.unflatten(objects, np.diff(seqs.offsets))}}


@torch.no_grad()
def masked_scores(model, seqs: TokenSequences, device, rate: float = 0.35, n_masks: int = 8, seed: int = 0,
                  batch_size: int = 512, first: int = 0) -> dict[str, np.ndarray]:
    """Mean cross-entropy of the masked object tokens (`masked`), and their combined tail probabilities
    (`masked_surprise`, comparable across object counts, see `combined`), each averaged over `n_masks`
    random maskings; NaN for events without objects. The masks of event i (counted from `first`, its
    place in the file) depend only on (seed, i): scores do not change with batch or chunk sizes."""
    vocab = seqs.vocab
    out, calibrated = np.zeros(len(seqs)), np.zeros(len(seqs))
    for rows, idx, features in seqs.sorted_batches(batch_size):
        idx, features = to_device(idx, features, device)
        pad = idx == vocab.pad
        event = (first + rows)[:, None]
        position = np.arange(idx.shape[1])[None, :]
        for k in range(n_masks):
            u = torch.from_numpy(counter_uniform(seed, k, event, position)).float()
            inputs, targets = mask_tokens(idx, vocab, rate, uniform=u)
            hidden = model.hidden_states(inputs, causal=False, pad_mask=pad, features=features)  # at MASK
            is_masked = targets != -100
            log_p, log_tail = target_log_probs(model.logits, hidden, targets, is_masked, tail=True)
            n = is_masked.sum(1)
            out[rows] += (-log_p.sum(1) / n.clamp(min=1)).cpu().numpy() / n_masks
            calibrated[rows] += combined(-log_tail, is_masked).cpu().numpy() / n_masks
    empty = np.diff(seqs.offsets) == 0
    out[empty] = calibrated[empty] = np.nan
    return {"masked": out, "masked_surprise": calibrated}


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
    """P(data) from the weakly supervised heads: event i by the model of fold `fold_of[i]`, which never
    saw it in training, or, where `fold_of[i]` is -1 (an event none of them saw), by their mean."""
    from finetune.train import predict

    out = np.zeros(len(seqs))
    unseen = np.flatnonzero(fold_of < 0)
    for k, model in enumerate(models):
        rows = np.flatnonzero(fold_of == k)
        if len(rows):
            out[rows] = predict(model, seqs, rows, batch_size, device)[:, 1]
        if len(unseen):
            out[unseen] += predict(model, seqs, unseen, batch_size, device)[:, 1] / len(models)
    return {"head": out}
