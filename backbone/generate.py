"""Batched autoregressive sampling with a preallocated KV cache (no recomputation of the prefix).

On a GPU each decoding step (one token per sequence at a position held in a tensor) is captured once
as a CUDA graph and replayed, and the host checks for finished sequences only every few steps: a step
then costs a graph launch, not one kernel launch per operation plus a synchronisation.

A hybrid backbone with a density head generates autoregressively in the features too: each object's
features are drawn right after its token and are the next step's input beside it, as the true
features are in training and scoring (not its code's centroid), so every later object is conditioned
on the kinematics of those before it.
"""
from __future__ import annotations

import torch

from backbone.model import GPT, KVCache

SYNC_EVERY = 16  # steps between checks (a host sync on CUDA) whether every sequence has ended
NUCLEUS_BIN = 0.05  # nats: the resolution of a nucleus (truncate)
NUCLEUS_BINS = 512  # 25.6 nats: tokens further below their group's likeliest share the last bin


class DecodeStep:
    """`GPT.decode_step` at a fixed batch size and cache; replayed from a CUDA graph when `graph`.
    With `features`, each step also reads the hybrid input features of its token (else its code's).
    The eager and the captured step run on the same static buffers."""

    def __init__(self, model: GPT, cache: KVCache, batch: int, first_pos: int, graph: bool, features: bool = False):
        device = cache.k.device
        self.model, self.cache, self.graph = model, cache, None
        self.token = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.pos = torch.full((1,), first_pos, dtype=torch.long, device=device)
        self.features = torch.zeros(batch, 1, model.config.n_features, device=device) if features else None
        if graph:
            # warm-up on a side stream, as capture requires; it writes the cache at first_pos, which
            # the real steps overwrite
            stream = torch.cuda.Stream(device)
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self.run()
            torch.cuda.current_stream(device).wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = self.run()

    def run(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The step on the static buffers: what a graph captures, and what runs without one."""
        return self.model.decode_step(self.token, self.pos, self.cache, self.features)

    def __call__(self, token: torch.Tensor, pos: int, features: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, hidden state) after `token` (B,) at position `pos`, with its `features` (B,
        n_features) where the step reads them."""
        self.token.copy_(token[:, None])
        self.pos.fill_(pos)
        if self.features is not None:
            self.features.copy_(features[:, None])
        if self.graph is None:
            return self.run()
        self.graph.replay()
        return self.out


def truncate(logits: torch.Tensor, top_k: int | None = None, top_p: float = 1.0,
             starts: tuple[int, ...] = ()) -> torch.Tensor:
    """`logits` (B, V) with each group's unlikely tail at -inf, the group's total probability kept:
    truncation picks among a group's tokens, never between groups (sampling.py's groups are object
    types, so that which object comes next is drawn as the model says). A group keeps its `top_k`
    likeliest tokens and its nucleus, the likeliest tokens that hold `top_p` of its probability, taken in
    whole bins of `NUCLEUS_BIN` nats below its likeliest: a scatter, not a sort (measured: a per-type sort
    made a CPU sampling step 1.7x slower). Groups are runs of tokens beginning at `starts`
    (`Vocab.output_groups`; (): one group); a group of one token is never cut."""
    if (top_k is None or top_k >= logits.shape[-1]) and top_p >= 1.0:
        return logits
    V = logits.shape[-1]
    bounds = [s for s in starts if 0 < s < V]
    out = logits.clone()
    for lo, hi in zip([0, *bounds], [*bounds, V]):
        if hi - lo > 1:
            out[:, lo:hi] = _truncate_group(logits[:, lo:hi], top_k, top_p)
    return out


def _truncate_group(part: torch.Tensor, top_k: int | None, top_p: float) -> torch.Tensor:
    """`truncate` on one group's logits (B, n)."""
    top = part.max(-1, keepdim=True).values
    allowed = torch.isfinite(top)  # a group the grammar forbids stays as it is
    top = torch.where(allowed, top, 0.0)
    weight = (part - top).exp()  # probability up to the group's normalization
    total = weight.sum(-1, keepdim=True)
    keep = torch.ones_like(part, dtype=torch.bool)
    if top_k is not None and top_k < part.shape[-1]:
        keep &= part >= torch.topk(part, top_k).values[:, -1:]
    if top_p < 1.0:
        # bin 0: the likeliest (in place: this is the costliest pass on a CPU)
        depth = torch.sub(top, part).mul_(1 / NUCLEUS_BIN).clamp_(max=NUCLEUS_BINS - 1).long()
        mass = torch.zeros(len(part), NUCLEUS_BINS, device=part.device, dtype=weight.dtype)
        mass = mass.scatter_add(-1, depth, weight)
        # the nucleus is a run of bins from the likeliest: those with less than top_p above them
        n_bins = ((mass.cumsum(-1) - mass) < top_p * total).sum(-1, keepdim=True)
        keep &= (n_bins == NUCLEUS_BINS) | (part > top - n_bins * NUCLEUS_BIN)
    shift = torch.where(allowed, torch.log(total / torch.where(keep, weight, 0.0).sum(-1, keepdim=True)), 0.0)
    return torch.where(keep, part + shift, float("-inf"))


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None,
                generator: torch.Generator | None, top_p: float = 1.0, starts: tuple[int, ...] = ()) -> torch.Tensor:
    """One token per row of `logits` (B, vocab): greedy at temperature 0, else a draw from
    softmax(logits / temperature) truncated to each group's top k and nucleus (`truncate`)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = truncate(logits / temperature, top_k, top_p, starts)
    # argmax(p / E) with E ~ Exp(1) is a draw from p (the exponential race): no softmax, no host sync
    noise = torch.empty_like(logits).exponential_(generator=generator)
    return (logits - noise.log()).argmax(dim=-1)


def draw_features(model: GPT, hidden: torch.Tensor, code: torch.Tensor, generator: torch.Generator | None,
                  upper: torch.Tensor | None, mean: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the density coordinates (B, D) drawn by the head for objects of codes `code` (B,) after `hidden`
    (B, n_embd), log pt at most `upper` (B,) where given, or with `mean` the mixture's mean there; the
    hybrid input they make (B, n_features), clamped as the written events are, or None without a hybrid
    input)."""
    mixture = model.density(hidden, model.wte(code), code)
    z = mixture.mean(upper) if mean else mixture.sample(generator, upper)
    if not model.config.n_features:
        return z, None
    # a b-tag drawn past 1 is not a feature the model ever read
    mask = model.density.code_mask[code]
    return z, model.density.clamp_features(model.density.from_density(z, model.code_features[code], mask), mask)


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, eos_id: int | None = None, pad_id: int = 0,
             generator: torch.Generator | None = None, use_cache: bool = True,
             grammar=None, cuda_graph: bool | None = None, sync_every: int | None = None,
             density: bool = False, unconditional: torch.Tensor | None = None, guidance: float = 1.0,
             top_p: float = 1.0, groups: tuple[int, ...] = (), prompt_features: torch.Tensor | None = None,
             mean: bool = False, adjust=None):
    """Continue `prompt` (B, T0) by up to `max_new_tokens` tokens; returns (B, T0 + n).

    Each token is drawn at `temperature` from the `top_k` likeliest and the `top_p` nucleus of its group,
    each group keeping its probability (`truncate`); groups are runs of tokens beginning at `groups`
    (default: the whole vocabulary is one).

    With `density` (a model with a density head), each object's features are drawn from the head
    right after its token (with `mean`, they are the head's mean instead: its best estimate given the
    token and the event so far), and the result is (tokens (B, T0 + n), features (B, T0 + n, D)) in the
    head's coordinates (backbone.density), zero where no object was drawn. A hybrid model reads them
    back (as the tokenizer's normalized features) as the next step's input, and reads a prompt's
    objects (events continued from their first objects) with `prompt_features` (B, T0, n_features)
    where given, else with their codes' centroids; a `grammar` is then advanced over them by the caller.

    Sampling stops for a sequence at `eos_id` (later positions get `pad_id`) and for all once every
    sequence has ended. `temperature=0` is greedy. `use_cache=False` recomputes the whole sequence at
    every step (the reference the cache is tested against). `grammar` (see backbone.grammar) restricts
    what may be sampled next, given what each sequence has so far, and with `density` keeps each group's
    objects in descending pt. `cuda_graph` (default: on CUDA with
    the cache) replays each decoding step from a CUDA graph; `sync_every` (default: 16 on CUDA, 1
    elsewhere) is the number of steps between checks whether all sequences have ended.

    Classifier-free guidance: with `unconditional` (B, T0), the same prompts with the condition left
    out (a process dropped to MASK), and `guidance` w != 1, the same tokens and features also run after
    the unconditional prompts (a batch of 2B), and each step samples from l_u + w (l_c - l_u), i.e.
    p_c^w p_u^(1 - w): w > 1 pushes sequences further from the unconditional mix than the conditional
    model alone does. Features are drawn from the conditional density head.

    `adjust` (a logits processor), where given, maps each step's logits (B, V), after guidance and before the
    grammar and truncation, to new ones: adjust(logits, hidden (B, n_embd), the tokens so far (B, n), their
    hybrid input features (B, n, n_features) or None).
    """
    model.eval()
    B, T0 = prompt.shape
    device = prompt.device
    max_new_tokens = min(max_new_tokens, model.config.block_size - T0)
    guided = unconditional is not None and guidance != 1.0
    if guided and unconditional.shape != prompt.shape:
        raise ValueError(f"unconditional prompts {tuple(unconditional.shape)} differ from the prompts "
                         f"{tuple(prompt.shape)}")
    # the model's rows: the prompts, then (guided) the unconditional ones, which follow the same draws
    both = (lambda t: torch.cat([t, t])) if guided else (lambda t: t)
    out = torch.full((B, T0 + max_new_tokens), pad_id, dtype=torch.long, device=device)
    out[:, :T0] = prompt
    fed = both(out).clone()  # what the model sees: finished sequences keep getting EOS, a valid id whatever pad_id is
    if guided:
        fed[B:, :T0] = unconditional
    done = torch.zeros(B, dtype=torch.bool, device=device)
    end = torch.full((B,), T0 + max_new_tokens, dtype=torch.long, device=device)  # one past each EOS
    if density and not model.config.density_components:
        raise ValueError("this backbone has no density head: sample with centroid decoding")
    features = torch.zeros(B, T0 + max_new_tokens, model.density.n_dims, device=device) if density else None
    feedback = density and bool(model.config.n_features)
    # the hybrid input of every position: the prompt's objects as given, else their codes' centroids
    fed_features = torch.zeros(len(fed), T0 + max_new_tokens, model.config.n_features, device=device) \
        if feedback else None
    if feedback:
        fed_features[:, :T0] = model.code_features[fed[:, :T0]] if prompt_features is None \
            else both(prompt_features.to(fed_features))
    if use_cache:
        dtype = next(model.parameters()).dtype
        cache = KVCache.empty(model.config, len(fed), T0 + max_new_tokens, device, dtype)
        graph = device.type == "cuda" if cuda_graph is None else cuda_graph
        step = DecodeStep(model, cache, len(fed), T0, graph, feedback)  # captured before the prefill fills the cache
        hidden = model.hidden_states(fed[:, :T0], kv_cache=cache,
                                     features=fed_features[:, :T0] if feedback else None)[:, -1]
        prefill = model.logits(hidden), hidden
    sync_every = sync_every or (SYNC_EVERY if device.type == "cuda" else 1)
    n = T0
    for i in range(max_new_tokens):
        if use_cache:
            logits, hidden = step(fed[:, n - 1], n - 1, fed_features[:, n - 1] if feedback else None) \
                if i > 0 else prefill
        else:
            hidden = model.hidden_states(fed[:, :n], features=fed_features[:, :n] if feedback else None)[:, -1]
            logits = model.logits(hidden)
        logits = logits.float()
        if guided:
            conditional, free = logits.chunk(2)
            logits, hidden = free + guidance * (conditional - free), hidden[:B]
        if adjust is not None:
            logits = adjust(logits, hidden, fed[:B, :n], fed_features[:B, :n] if feedback else None)
        if grammar is not None:
            logits = grammar.mask(logits)
        token = sample_next(logits, temperature, top_k, generator, top_p, groups)
        if density:
            # every row draws (fixed shapes, the same random stream whatever ends when); rows whose
            # token is not an object keep zeros
            code = token.clamp(max=model.config.n_codes - 1)
            z, drawn = draw_features(model, hidden, code, generator,
                                     None if grammar is None else grammar.upper_log_pt(token), mean)
            is_object = (token < model.config.n_codes) & ~done
            features[:, n] = torch.where(is_object[:, None], z.to(features.dtype), features[:, n])
            if feedback:  # rows without an object too: the model reads no features at non-object tokens
                fed_features[:, n] = both(drawn)
        out[:, n] = torch.where(done, torch.full_like(token, pad_id), token)
        if eos_id is not None:
            token = torch.where(done, torch.full_like(token, eos_id), token)
            end = torch.where(~done & (token == eos_id), n + 1, end)
            done |= token == eos_id
        fed[:, n] = both(token)
        if grammar is not None:
            grammar.update(token, z[:, 0] if density else None)
        n += 1
        if (i + 1) % sync_every == 0 and bool(done.all()):
            break
    if eos_id is not None and bool(done.all()):
        n = int(end.max())  # steps run past the last EOS between two checks only added padding
    return (out[:, :n], features[:, :n]) if density else out[:, :n]
