"""The token scores never hold a batch's full (B, T, vocab) logits (issue 16): the language-model head is
applied a slice of positions at a time, and only where a score needs it, with the same scores as the
full logits give."""
from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from backbone.config import GPTConfig
from backbone.model import GPT
from benchmarks.streaming_memory import random_sequences
from finetune import scores

N_CODES = 8192  # the event mode's codebook: a vocabulary of 8,196 tokens


def tiny(hybrid: bool = False, seed: int = 0) -> GPT:
    """A small random backbone over the full-size vocabulary, with a density head; token embeddings (the
    tied head) of unit scale, so that the probabilities are far from uniform."""
    from tokenizer.features import FEATURES, TYPES

    torch.manual_seed(seed)
    n = len(FEATURES["event"])
    model = GPT(GPTConfig(vocab_size=N_CODES + 4, block_size=24, n_layer=1, n_head=2, n_embd=16,
                          n_features=n if hybrid else 0, n_codes=N_CODES, density_components=2,
                          density_mode="event")).eval()
    with torch.no_grad():
        model.wte.weight.normal_(0.0, 1.0)
    types = np.random.default_rng(seed).choice([int(t) for t in TYPES["event"]], N_CODES).tolist()
    model.density.set_tokenizer(types, np.zeros(n), np.ones(n))
    if hybrid:
        model.set_code_features(torch.randn(N_CODES, n))
    return model


def unsliced(head, states, targets, where, tail=False, rows=None):
    """`target_log_probs` as the scores computed it before: the whole (B, T, vocab) logits at once,
    cross-entropy for the log-probabilities, the tail from their full log-softmax."""
    logits = head(states).float()
    t = targets.clamp(min=0)
    log_p = -F.cross_entropy(logits.transpose(1, 2), t, reduction="none")
    logp = torch.log_softmax(logits, -1)
    observed = logp.gather(-1, t[..., None])
    log_below = torch.logsumexp(logp.masked_fill(logp >= observed, float("-inf")), -1)
    log_tail = torch.logaddexp(log_below, observed[..., 0] - math.log(2))
    zero = torch.zeros_like(log_p)
    return torch.where(where, log_p, zero), torch.where(where, log_tail, zero) if tail else None


def all_scores(model, seqs) -> dict[str, np.ndarray]:
    out = {}
    out.update(scores.nll_scores(model, seqs, "cpu", batch_size=16))
    out.update(scores.masked_scores(model, seqs, "cpu", n_masks=2, batch_size=16))
    density = scores.density_scores(model, seqs, "cpu", batch_size=16)
    out["per_object_surprise"] = ak.to_numpy(ak.flatten(density.pop("objects")["surprise"]))
    out.update(density)
    return out


@pytest.fixture(scope="module")
def seqs():
    return random_sequences(40, N_CODES, 24, seed=3)


def test_target_log_probs_equal_the_full_logits():
    torch.manual_seed(1)
    head = torch.nn.Linear(16, N_CODES + 4, bias=False)
    torch.nn.init.normal_(head.weight, 0.0, 1.0)
    states = torch.randn(5, 9, 16)
    targets = torch.randint(0, N_CODES + 4, (5, 9))
    where = torch.rand(5, 9) < 0.6
    with torch.no_grad():
        want = unsliced(head, states, targets, where, tail=True)
        for rows in (1, 7, 45, 10**6):
            log_p, log_tail = scores.target_log_probs(head, states, targets, where, tail=True, rows=rows)
            torch.testing.assert_close(log_p, want[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(log_tail, want[1], rtol=1e-5, atol=1e-5)
            assert (log_p[~where] == 0).all() and (log_tail[~where] == 0).all()
            assert (log_p[where] < 0).all() and (log_tail[where] <= 0).all()
        assert scores.target_log_probs(head, states, targets, where, rows=3)[1] is None


@pytest.mark.parametrize("hybrid", [False, True])
def test_scores_equal_those_of_the_full_logits(seqs, monkeypatch, hybrid):
    """nll, masked and density scores with slices of 5 positions equal those computed from the whole
    batch's logits, as before."""
    model = tiny(hybrid)
    monkeypatch.setattr(scores, "SLICE_ROWS", 5)
    sliced = all_scores(model, seqs)
    monkeypatch.setattr(scores, "target_log_probs", unsliced)
    full = all_scores(model, seqs)
    assert sliced.keys() == full.keys()
    for k in full:
        assert np.isfinite(full[k]).all(), k
        # a tail probability steps where another token's logit crosses the target's: the last bits in which
        # a product of a few rows and one of the whole batch differ can move a near tie across (the
        # tolerance of the batch-size invariance of tests/test_anomaly_density.py)
        tol = 1e-4 if k.endswith("surprise") else 1e-5
        np.testing.assert_allclose(sliced[k], full[k], rtol=tol, atol=tol, err_msg=k)


def test_nll_equals_the_cross_entropy_of_the_models_logits(seqs):
    """The head applied to the final hidden states is the model's forward pass: the NLL is the summed
    cross-entropy of its logits at the object and end tokens."""
    model = tiny()
    got = scores.nll_scores(model, seqs, "cpu", batch_size=16)
    vocab = seqs.vocab
    want = np.empty(len(seqs))
    with torch.no_grad():
        for rows, idx, _ in seqs.sorted_batches(16):
            logits, _ = model(idx[:, :-1], causal=True)
            targets = idx[:, 1:]
            scored = (targets < vocab.n_codes) | (targets == vocab.eos)
            want[rows] = (F.cross_entropy(logits.transpose(1, 2), targets, reduction="none") * scored).sum(1).numpy()
    np.testing.assert_allclose(got["nll"], want, rtol=1e-5, atol=1e-5)


class Spy(torch.nn.Module):
    """The language-model head, recording how many positions each call sees."""

    def __init__(self, head):
        super().__init__()
        self.head, self.calls = head, []

    def forward(self, x):
        self.calls.append(x.shape[:-1].numel())
        return self.head(x)


@pytest.mark.parametrize("method", ["nll", "masked", "density"])
def test_the_head_sees_a_few_positions_at_a_time_and_only_those_scored(seqs, monkeypatch, method):
    model = tiny()
    spy = model.lm_head = Spy(model.lm_head)
    monkeypatch.setattr(scores, "SLICE_ROWS", 64)
    score = {"nll": scores.nll_scores, "density": scores.density_scores,
             "masked": lambda *a, **k: scores.masked_scores(*a, n_masks=1, **k)}[method]
    score(model, seqs, "cpu", batch_size=512)  # one batch of all 40 events
    assert max(spy.calls) <= 64
    objects = int(np.diff(seqs.offsets).sum())
    if method == "masked":  # the masked objects only: at least one per event, about 35% of them
        assert len(seqs) <= sum(spy.calls) < 0.6 * objects
    else:  # the objects and the end tokens, never the padding or the process position
        assert sum(spy.calls) == objects + len(seqs)


def test_token_log_tail_of_given_logits():
    """The tail of logits already held (what the calibration tests use) is the same computation."""
    logits = torch.randn(3, 4, 50)
    targets = torch.randint(0, 50, (3, 4))
    targets[0, 0] = -100  # read as token 0
    everywhere = torch.ones(3, 4, dtype=torch.bool)
    torch.testing.assert_close(scores.token_log_tail(logits, targets),
                               unsliced(lambda x: x, logits, targets, everywhere, tail=True)[1])
