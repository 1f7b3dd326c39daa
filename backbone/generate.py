"""Batched autoregressive sampling with a preallocated KV cache (no recomputation of the prefix)."""
from __future__ import annotations

import torch

from backbone.model import GPT, KVCache


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, eos_id: int | None = None, pad_id: int = 0,
             generator: torch.Generator | None = None, use_cache: bool = True,
             grammar=None) -> torch.Tensor:
    """Continue `prompt` (B, T0) by up to `max_new_tokens` tokens; returns (B, T0 + n).

    Sampling stops for a sequence at `eos_id` (later positions get `pad_id`) and for all once every
    sequence has ended. `temperature=0` is greedy. `use_cache=False` recomputes the whole sequence at
    every step (the reference the cache is tested against). `grammar` (see backbone.grammar) restricts
    what may be sampled next, given what each sequence has so far.
    """
    model.eval()
    B, T0 = prompt.shape
    max_new_tokens = min(max_new_tokens, model.config.block_size - T0)
    out = torch.full((B, T0 + max_new_tokens), pad_id, dtype=torch.long, device=prompt.device)
    out[:, :T0] = prompt
    fed = out.clone()  # what the model sees: finished sequences keep getting EOS, a valid id whatever pad_id is
    done = torch.zeros(B, dtype=torch.bool, device=prompt.device)
    dtype = next(model.parameters()).dtype
    cache = KVCache.empty(model.config, B, T0 + max_new_tokens, prompt.device, dtype) if use_cache else None
    step_input = prompt
    n = T0
    for _ in range(max_new_tokens):
        if use_cache:
            logits, _ = model(step_input, kv_cache=cache)
        else:
            logits, _ = model(fed[:, :n])
        logits = logits[:, -1, :].float()
        if grammar is not None:
            logits = grammar.mask(logits)
        if temperature == 0:
            token = logits.argmax(dim=-1)
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)
        out[:, n] = torch.where(done, torch.full_like(token, pad_id), token)
        if eos_id is not None:
            token = torch.where(done, torch.full_like(token, eos_id), token)
            done |= token == eos_id
        fed[:, n] = token
        if grammar is not None:
            grammar.update(token)
        n += 1
        if bool(done.all()):
            break
        step_input = token[:, None]
    return out[:, :n]
