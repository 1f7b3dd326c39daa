"""Synthetic events from a pretrained backbone: `sample_events` yields `Events` batches.

    from backbone.model import GPT
    from backbone.sampling import sample_events
    from tokenizer.tokenizer import Tokenizer
    backbone, tokenizer = GPT.from_pretrained("runs/demo/backbone"), Tokenizer.from_pretrained("runs/demo/tokenizer")
    for events in sample_events(backbone, tokenizer, 1000, process="ttbar"):
        ...

Batched autoregressive sampling with a preallocated KV cache, constrained by the data model's grammar
(object groups in canonical order; in event mode one MET, last), so every sequence decodes to a valid
event. Truncation (`top_k`, `top_p`) acts within each object type: which type comes next (another jet,
a lepton, MET, the end) is drawn as the model predicts it, and only the type's unlikeliest codes are cut
(an 8192-code softmax leaks mass into thousands of codes a process never has: docs/results.md).

With a density head (`decode="continuous"`, the default where the backbone has one), each object's
features are drawn from the head right after its token, so that kinematics are not limited to the code
centroids (a hybrid backbone reads them back as its next input: backbone.generate); `decode="mean"`
takes the head's mean instead of a draw (each object where its code and the event before it place it
best: no noise within a code, which widens pair masses); `decode="centroid"` decodes each token to its
code's centroid. Decoded objects are put in canonical order with the multiplicity caps (cuts add to
`n_truncated`), and the head's features are clamped to physical ranges (|eta| <= 5, b-tag in [0, 1]). A tokenizer that encodes each event turned to its leading
jet (`azimuth: leading_jet`) gets each generated event turned by a uniform angle. The same seed gives the
same events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import awkward as ak
import numpy as np
import torch

from backbone.model import GPT, check_pair
from common.cli import checked, kept_fraction, nonnegative_float, nonnegative_int, positive_int
from common.errors import UserError
from events.model import Caps, Events

#: each object type's nucleus by default: at the CPU size, for the six SM processes, the best of 1, 0.98 and
#: 0.95 for a backbone with feature logits (the event configs'), as 0.95 was of 1, 0.98, 0.95 and 0.9 before
#: (docs/results.md, "Jets that point the right way", "Where ttbar's deficit comes from")
TOP_P = 0.98
#: how drawn codes become kinematics: the density head's draws, its means, or each code's centroid
DECODES = ("continuous", "mean", "centroid")


@dataclass
class SamplingStats:
    """What a sampling run did, counted as batches are drawn."""

    decode: str = ""  # one of DECODES
    unfinished: int = 0  # sequences that reached the length limit without an end token
    clamped: int = 0  # objects from the head clamped to physical ranges (continuous and mean decoding)
    truncated: int = 0  # decoded objects beyond the multiplicity caps, cut


def sample_events(backbone: GPT, tokenizer, n_events: int, *, process: str | None = None,
                  temperature: float = 1.0, top_k: int = 0, top_p: float = TOP_P, seed: int = 1, batch_size: int = 4096,
                  decode: str | None = None, caps: Caps | None = None, guidance: float = 1.0,
                  stats: SamplingStats | None = None) -> Iterator[Events]:
    """`n_events` events in batches of `batch_size`, on the backbone's device: of `process` (a
    conditional backbone's; without one, the pretraining mixture where it was trained with process
    dropout), drawn at `temperature` (0: greedy), each token from the `top_k` likeliest codes (0: all) and
    the `top_p` nucleus of its object type (1: all; see the module), decoded
    `continuous`, `mean` or `centroid` (see the module), with classifier-free `guidance` w (1: none; > 1, each
    token from p(.|process)^w p(.|unknown)^(1 - w): backbone.generate). Events are numbered 0.. with
    run `seed`; `stats` is filled as batches are drawn. Bad arguments are refused here, before any batch."""
    from backbone.generate import generate
    from backbone.grammar import Grammar
    from tokenizer.tokenizer import TokenBatch

    for name, rule, value in (("n_events", positive_int, n_events), ("batch_size", positive_int, batch_size),
                              ("temperature", nonnegative_float, temperature), ("top_k", nonnegative_int, top_k),
                              ("top_p", kept_fraction, top_p),
                              ("seed", nonnegative_int, seed), ("guidance", nonnegative_float, guidance)):
        checked(rule, value, name)  # as sample.py's --events, --batch-size, ...
    check_pair(backbone, tokenizer)
    vocab, device = backbone.vocab, backbone.wte.weight.device
    decode = decode or ("continuous" if backbone.config.density_components else "centroid")
    if decode not in DECODES:
        raise UserError(f"decode must be one of {', '.join(DECODES)}, got {decode!r}")
    from_head = decode != "centroid"  # the density head gives the features
    if from_head and not backbone.config.density_components:
        raise UserError(f"{backbone.source or 'the backbone'} has no density head: use --decode centroid")
    prompt = sampling_prompt(backbone, process)
    unconditional = []
    if guidance != 1.0:
        if not process:
            raise UserError("guidance needs a process to guide towards: give --process")
        if not backbone.process_dropout:
            raise UserError(f"{backbone.source or 'the backbone'} was trained without process dropout: it has no "
                            "model of events of unknown process to guide against (guidance 1)")
        unconditional = sampling_prompt(backbone, None)
    stats = stats if stats is not None else SamplingStats()
    stats.decode = decode
    caps = caps or Caps()
    centroids = torch.from_numpy(tokenizer.code_features()).to(device) if from_head else None
    generator = torch.Generator(device=device).manual_seed(seed)
    types = truncation_groups(vocab, tokenizer)
    # a tokenizer that encodes events turned to their leading jet decodes them at these angles: uniform,
    # as the physics is, and drawn apart from the tokens so that they do not change which events are made
    turn = np.random.default_rng([seed, 1]) if tokenizer.model.config.azimuth != "absolute" else None

    skip = len(prompt) + int(vocab.multiplicities is not None)  # the events' objects start after these

    def batches() -> Iterator[Events]:
        done = 0
        while done < n_events:
            n = min(batch_size, n_events - done)
            budget = backbone.config.block_size - len(prompt)
            out = generate(backbone, torch.tensor([prompt] * n, device=device), budget, temperature=temperature,
                           top_k=top_k or None, eos_id=vocab.eos, pad_id=vocab.pad, generator=generator,
                           grammar=Grammar(vocab, tokenizer, n, device, max_new=budget, caps=caps), density=from_head,
                           unconditional=torch.tensor([unconditional] * n, device=device) if unconditional else None,
                           guidance=guidance, top_p=top_p, groups=types, mean=decode == "mean")
            seqs, drawn = out if from_head else (out, None)
            seqs = seqs[:, skip:].cpu().numpy()
            is_code = seqs < vocab.n_codes
            # codes up to the first non-code (EOS or padding) form the event
            lengths = np.where(is_code.all(axis=1), seqs.shape[1], (~is_code).argmax(axis=1))
            stats.unfinished += int(is_code.all(axis=1).sum())
            kept = np.arange(seqs.shape[1])[None, :] < lengths[:, None]
            features = None
            if from_head:
                codes = torch.from_numpy(seqs[kept]).to(device)
                x = backbone.density.from_density(drawn[:, skip:][torch.from_numpy(kept).to(device)].float(),
                                                  centroids[codes], backbone.density.code_mask[codes])
                x, n_clamped = backbone.density.clamp(x, backbone.density.code_mask[codes])
                stats.clamped += n_clamped
                features = ak.unflatten(x.cpu().numpy(), lengths)
            info = {"run": np.full(n, seed), "event": np.arange(done, done + n),
                    "process": np.zeros(n) if process else np.full(n, -1)}
            if turn is not None:
                info["azimuth"] = turn.uniform(-np.pi, np.pi, n)
            events = tokenizer.decode(TokenBatch(ak.unflatten(seqs[kept], lengths), info,
                                                 (process,) if process else (), features))
            capped = events.recap(caps)
            stats.truncated += int((capped.info["n_truncated"] - events.info["n_truncated"]).sum())
            done += n
            yield capped

    return batches()


def truncation_groups(vocab, tokenizer) -> tuple[int, ...]:
    """The first token of each group that top-k and top-p truncate within (backbone.generate.truncate):
    each object type's codes, and each special, process and multiplicity token alone (never cut: a
    nucleus over multiplicities would cut the counts' tails, which it exists to keep)."""
    return tuple(sorted(set(vocab.output_groups(tokenizer.code_types())) | {0, *range(vocab.n_codes, vocab.size)}))


def sampling_prompt(backbone: GPT, process: str | None) -> list[int]:
    """BOS, and for a conditional backbone the process token (MASK: the process left unknown)."""
    vocab, where = backbone.vocab, backbone.source or "the backbone"
    if process and process not in vocab.processes:
        known = f"one of {list(vocab.processes)}" if backbone.conditional else "none (it is unconditional)"
        raise UserError(f"{where} was not trained on process {process!r}: give {known}")
    if not backbone.conditional:
        if process:
            raise UserError("this backbone was trained without process tokens: drop --process")
        return [vocab.bos]
    if process:
        return [vocab.bos, vocab.process_token(process)]
    if backbone.process_dropout > 0:
        return [vocab.bos, vocab.mask]  # the process left unknown: events of the pretraining mixture
    raise UserError(f"this backbone is conditional: give --process, one of {list(vocab.processes)}")
