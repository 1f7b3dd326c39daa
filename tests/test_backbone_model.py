"""The GPT core: causality, bidirectional mode and padding, KV cache vs full recomputation, sampling."""
import math

import pytest
import torch

from backbone.config import GPTConfig
from backbone.generate import generate
from backbone.model import GPT, KVCache
from backbone.vocab import SPECIALS, Vocab


def tiny(vocab=50, block=24, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=2, n_embd=32)).eval()


def tiny_hybrid(vocab=50, n_codes=40, n_features=3, seed=0):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=24, n_layer=2, n_head=2, n_embd=32, n_features=n_features,
                          n_codes=n_codes)).eval()
    model.set_code_features(torch.randn(n_codes, n_features))
    return model

def test_causal_output_ignores_the_future_bidirectional_does_not():
    model = tiny()
    a = torch.randint(0, 50, (2, 12))
    b = a.clone()
    b[:, 8:] = (b[:, 8:] + 1) % 50
    with torch.no_grad():
        ca, cb = model.hidden_states(a), model.hidden_states(b)
        torch.testing.assert_close(ca[:, :8], cb[:, :8], rtol=0, atol=1e-6)
        assert not torch.allclose(ca[:, 8:], cb[:, 8:])
        ba, bb = model.hidden_states(a, causal=False), model.hidden_states(b, causal=False)
        assert not torch.allclose(ba[:, :8], bb[:, :8])


@pytest.mark.parametrize("causal", [True, False])
def test_padded_keys_have_no_influence(causal):
    model = tiny()
    a = torch.randint(0, 50, (2, 10))
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[:, 7:] = True
    b = a.clone()
    b[:, 7:] = (b[:, 7:] + 3) % 50
    with torch.no_grad():
        ha = model.hidden_states(a, causal=causal, pad_mask=pad)
        hb = model.hidden_states(b, causal=causal, pad_mask=pad)
    torch.testing.assert_close(ha[:, :7], hb[:, :7], rtol=0, atol=1e-6)


def test_kv_cache_matches_full_recomputation():
    model = tiny()
    idx = torch.randint(0, 50, (3, 15))
    with torch.no_grad():
        full, _ = model(idx)
        cache = KVCache.empty(model.config, 3, 15, idx.device, torch.float32)
        parts = [model(idx[:, :5], kv_cache=cache)[0],       # prefill from 0
                 model(idx[:, 5:9], kv_cache=cache)[0]]      # several tokens after a prefix
        parts += [model(idx[:, t:t + 1], kv_cache=cache)[0] for t in range(9, 15)]  # one at a time
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 15


@pytest.mark.parametrize("hybrid", [False, True])
def test_cached_and_uncached_sampling_give_the_same_tokens(hybrid):
    model = tiny_hybrid(vocab=40, n_codes=30) if hybrid else tiny(vocab=40, block=30)
    prompt = torch.randint(0, 30, (4, 3))
    kwargs = dict(max_new_tokens=20, temperature=1.0, top_k=10)
    cached = generate(model, prompt, generator=torch.Generator().manual_seed(5), **kwargs)
    uncached = generate(model, prompt, generator=torch.Generator().manual_seed(5), use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)
    assert cached.shape == (4, 23) and torch.equal(cached[:, :3], prompt)


def test_generation_stops_at_eos_and_pads():
    model = tiny(vocab=10, block=20)
    prompt = torch.tensor([[1, 2], [3, 4], [5, 6]])
    free = generate(model, prompt, 10, temperature=0)
    eos = int(free[0, 2])  # call the first token sequence 0 produces the end token
    out = generate(model, prompt, 10, temperature=0, eos_id=eos, pad_id=-1)
    for row, ref in zip(out, free):
        hits = (ref[2:] == eos).nonzero()
        end = 2 + int(hits[0]) if len(hits) else None
        if end is None:
            assert torch.equal(row, ref[:len(row)])
        else:
            assert torch.equal(row[:end + 1], ref[:end + 1]) and (row[end + 1:] == -1).all()
    assert out.shape[1] <= free.shape[1]
    uncached = generate(model, prompt, 10, temperature=0, eos_id=eos, pad_id=-1, use_cache=False)
    assert torch.equal(uncached, out)
    # every sequence ended: generation stops early
    same = generate(model, prompt[:1], 10, temperature=0, eos_id=eos)
    assert same.shape == (1, 3)
    # checking for the end only every 4 steps trims the extra padding: the same tensor
    assert torch.equal(generate(model, prompt, 10, temperature=0, eos_id=eos, pad_id=-1, sync_every=4), out)


def test_decode_step_matches_full_recomputation():
    model = tiny(vocab=40, block=16)
    idx = torch.randint(0, 40, (3, 12))
    with torch.no_grad():
        full = model(idx)[0]
        cache = KVCache.empty(model.config, 3, 16, idx.device, torch.float32)
        model(idx[:, :4], kv_cache=cache)
        steps = [model.decode_step(idx[:, t:t + 1], torch.tensor([t]), cache)[0] for t in range(4, 12)]
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 4:], rtol=1e-5, atol=1e-5)


def test_sampling_follows_the_softmax():
    from backbone.generate import sample_next

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]])).expand(40000, 4)
    draws = sample_next(logits, 1.0, None, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4) / len(draws)
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.2, 0.0]), atol=0.01, rtol=0)
    assert set(sample_next(logits, 1.0, 1, None).tolist()) == {0}  # top-1 is greedy


@pytest.mark.gpu
def test_cuda_graph_sampling_matches_eager_steps():
    model = tiny(vocab=40, block=30).cuda()
    prompt = torch.randint(0, 40, (8, 3), device="cuda")
    runs = [generate(model, prompt, 20, top_k=10, eos_id=7, generator=torch.Generator("cuda").manual_seed(3),
                     cuda_graph=graph) for graph in (True, False)]
    assert torch.equal(runs[0], runs[1])


def test_tiny_model_overfits_tiny_token_set():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=12, n_layer=2, n_head=2, n_embd=48))
    data = torch.randint(0, 20, (4, 12))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        _, loss = model(data[:, :-1], data[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_ignore_index_and_block_size():
    model = tiny()
    idx = torch.randint(0, 50, (2, 6))
    targets = torch.full((2, 6), -100)
    targets[0, 2] = 4
    logits, loss = model(idx, targets)
    expected = torch.nn.functional.cross_entropy(logits[0, 2][None], torch.tensor([4]))
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(torch.zeros(1, 25, dtype=torch.long))


def test_tied_weights_save_and_load_bit_exact(tmp_path):
    from safetensors.torch import load_model, save_model

    model = tiny()
    assert model.lm_head.weight.data_ptr() == model.wte.weight.data_ptr()
    save_model(model, str(tmp_path / "m.safetensors"))
    again = tiny(seed=1)
    load_model(again, str(tmp_path / "m.safetensors"))
    for (k, v), (_, w) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(v, w), k
    assert again.lm_head.weight.data_ptr() == again.wte.weight.data_ptr()


def test_vocab_ids_never_collide():
    vocab = Vocab(8192, ("ttbar", "wjets"))
    ids = [vocab.pad, vocab.bos, vocab.eos, vocab.mask, vocab.process_token("ttbar"), vocab.process_token("wjets")]
    assert len(set(ids)) == len(ids) and min(ids) == 8192 and vocab.size == 8192 + len(SPECIALS) + 2
    assert not any(vocab.is_code(i) for i in ids) and vocab.is_code(8191)
    with pytest.raises(ValueError, match="unknown process"):
        vocab.process_token("zz")



def test_hybrid_features_enter_at_objects_and_stay_hidden_under_mask():
    model = tiny_hybrid()
    mask = 43
    idx = torch.tensor([[41, 5, 6, mask, 7, 42]])  # BOS-like, codes, a masked object, code, EOS-like
    feats = torch.randn(1, 6, 3)
    with torch.no_grad():
        base = model.hidden_states(idx, causal=False, features=feats)
        moved = feats.clone()
        moved[0, 3] += 5.0  # the masked object's true features: must not leak
        moved[0, 0] += 5.0  # a special token has none
        torch.testing.assert_close(model.hidden_states(idx, causal=False, features=moved), base, rtol=0, atol=0)
        moved[0, 2] += 1.0  # an object's features do enter
        assert not torch.allclose(model.hidden_states(idx, causal=False, features=moved), base)
        # without features, each code gets its table entry
        table = model.code_features[idx]
        torch.testing.assert_close(model.hidden_states(idx, causal=False),
                                   model.hidden_states(idx, causal=False, features=table))



def test_sampling_with_the_density_head_cached_equals_recomputed():
    """Tokens and drawn features, with the KV cache and by full recomputation at every step."""
    from events.model import ObjectType as T

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=24, n_layer=2, n_head=2, n_embd=32, n_codes=40,
                          density_components=3, density_mode="event")).eval()
    model.density.set_tokenizer([int(T.JET)] * 20 + [int(T.MUON)] * 19 + [int(T.MET)], [3.0, 0, 0, 0, 1, 0.2],
                                [1.0] * 6)
    prompt = torch.full((6, 2), 41)
    runs = [generate(model, prompt, 12, eos_id=42, pad_id=40, generator=torch.Generator().manual_seed(7),
                     use_cache=cache, density=True) for cache in (True, False)]
    (tok_a, feat_a), (tok_b, feat_b) = runs
    assert torch.equal(tok_a, tok_b)
    torch.testing.assert_close(feat_a, feat_b, rtol=1e-4, atol=1e-4)
    is_object = tok_a < 40
    assert is_object.any() and (feat_a[is_object] != 0).any(dim=-1).all()  # every object got features
    assert (feat_a[~is_object] == 0).all()
    # phi lies on the circle
    assert feat_a[..., 2].abs().max() <= torch.pi


def hybrid_with_density(seed=0):
    """A hybrid event-mode model with a density head over 40 codes (jets, muons, a MET), whose features
    weigh heavily in the embedding: drawn features that are fed back visibly change what follows."""
    from events.model import ObjectType as T

    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=50, block_size=24, n_layer=2, n_head=2, n_embd=32, n_codes=40, n_features=6,
                          density_components=3, density_mode="event")).eval()
    table = torch.randn(40, 6)
    model.set_code_features(table)
    model.density.set_tokenizer([int(T.JET)] * 20 + [int(T.MUON)] * 19 + [int(T.MET)], [3.0, 0, 0, 0, 1, 0.2],
                                [1.0] * 6, table)
    with torch.no_grad():
        model.wfe.weight.mul_(20.0)
    return model


class LogitSpy:
    """A grammar that restricts nothing and keeps the logits of every step."""

    def __init__(self):
        self.logits = []

    def mask(self, logits):
        self.logits.append(logits.clone())
        return logits

    def upper_log_pt(self, token):
        return torch.full(token.shape, float("inf"))

    def update(self, token, log_pt=None):
        pass


@pytest.mark.parametrize("use_cache", [True, False])
def test_hybrid_sampling_feeds_each_drawn_objects_features_back(use_cache):
    """Each step's logits are those of a full pass over the tokens drawn so far with the features drawn
    for them (clamped to physical ranges, as the written events are), not with their codes' centroids."""
    model = hybrid_with_density()
    prompt = torch.full((5, 2), 41)
    spy = LogitSpy()
    tokens, z = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3), use_cache=use_cache,
                         grammar=spy, density=True)
    codes = tokens.clamp(max=39).flatten()
    mask = model.density.code_mask[codes]
    drawn, n_clamped = model.density.clamp(model.density.from_density(z.flatten(0, 1), model.code_features[codes],
                                                                      mask), mask)
    drawn = drawn.view(*tokens.shape, 6)
    assert n_clamped > 0  # some draws left the physical ranges: what is fed back is the clamped features
    with torch.no_grad():
        fed_back = model(tokens, features=drawn)[0][:, 2:-1]  # the positions that predict steps 1..9
        centroids = model(tokens)[0][:, 2:-1]
    stepped = torch.stack(spy.logits[1:], 1)
    torch.testing.assert_close(stepped, fed_back, rtol=1e-4, atol=1e-4)
    assert (tokens[:, 2:-1] < 40).any()  # objects were drawn, so their features could matter
    assert (stepped - centroids).abs().amax() > 0.1


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_logits_processor_sees_the_event_so_far_and_decides_the_draw(use_cache):
    """`adjust` gets, at each step, the tokens drawn so far, the features fed back for them and the hidden
    state; what it returns is what is drawn from (here: no muon or MET is ever drawn)."""
    model = hybrid_with_density()
    seen = []

    def adjust(logits, hidden, tokens, features):
        seen.append((tokens.clone(), features.clone(), hidden.clone()))
        return logits.index_fill(1, torch.arange(20, 40), float("-inf"))

    tokens, z = generate(model, torch.full((5, 2), 41), 10, generator=torch.Generator().manual_seed(3),
                         use_cache=use_cache, density=True, adjust=adjust)
    assert not ((tokens >= 20) & (tokens < 40)).any() and (tokens < 20).any()
    assert [t.shape[1] for t, _, _ in seen] == list(range(2, 12))
    codes = tokens.clamp(max=39).flatten()
    mask = model.density.code_mask[codes]
    fed = model.density.clamp(model.density.from_density(z.flatten(0, 1), model.code_features[codes], mask), mask)[0]
    fed = fed.view(*tokens.shape, 6)
    last_tokens, last_features, last_hidden = seen[-1]
    torch.testing.assert_close(last_tokens, tokens[:, :-1])
    is_object = tokens[:, 2:-1] < 40  # the model reads no features at the other tokens
    torch.testing.assert_close(last_features[:, 2:][is_object], fed[:, 2:-1][is_object])
    with torch.no_grad():
        full = model.hidden_states(tokens[:, :-1], features=last_features)[:, -1]
    torch.testing.assert_close(last_hidden, full, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("use_cache", [True, False])
def test_mean_decoding_feeds_each_objects_mixture_mean_back(use_cache):
    """With `mean`, each object's features are the mean of the head's mixture, teacher forced on the final
    sequence with the means before it as the hybrid input (clamped)."""
    model = hybrid_with_density()
    prompt = torch.full((5, 2), 41)
    tokens, z = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3), use_cache=use_cache,
                         density=True, mean=True)
    codes = tokens.clamp(max=39).flatten()
    mask = model.density.code_mask[codes]
    fed = model.density.clamp(model.density.from_density(z.flatten(0, 1), model.code_features[codes], mask), mask)[0]
    fed = fed.view(*tokens.shape, 6)
    with torch.no_grad():
        mixture = model.object_densities(model.hidden_states(tokens[:, :-1], features=fed[:, :-1]), tokens[:, 1:],
                                         fed[:, 1:])[0]
    is_object = tokens[:, 1:] < 40
    assert is_object.sum() > 10
    torch.testing.assert_close(z[:, 1:][is_object], mixture.mean(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_prompts_objects_are_read_with_the_features_given(use_cache):
    """Events continued from their first objects: the first step's logits are a full pass over the prompt
    with the features given for its objects, not with their codes' centroids; without features given,
    with the centroids, whether the prefix is cached or recomputed."""
    model = hybrid_with_density()
    prompt = torch.tensor([[41, 3, 25]] * 4)  # BOS, a jet, a muon
    given = torch.zeros(4, 3, 6)
    given[:, 1:] = torch.randn(4, 2, 6, generator=torch.Generator().manual_seed(1))
    spy = LogitSpy()
    generate(model, prompt, 5, generator=torch.Generator().manual_seed(3), use_cache=use_cache, grammar=spy,
             density=True, prompt_features=given)
    with torch.no_grad():
        with_features, centroids = model(prompt, features=given)[0][:, -1], model(prompt)[0][:, -1]
    torch.testing.assert_close(spy.logits[0], with_features, rtol=1e-4, atol=1e-4)
    assert (with_features - centroids).abs().amax() > 0.1
    spy = LogitSpy()  # without features the prompt's objects are their codes' centroids, cached or not
    generate(model, prompt, 5, generator=torch.Generator().manual_seed(3), use_cache=use_cache, grammar=spy,
             density=True)
    torch.testing.assert_close(spy.logits[0], centroids, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("use_cache", [True, False])
def test_guided_sampling_draws_from_the_guided_logits(use_cache):
    """Classifier-free guidance: each step's logits are l_u + w (l_c - l_u), l_c of a full pass over the
    drawn tokens and features after the conditional prompt and l_u after the unconditional one."""
    model = hybrid_with_density()
    prompt, unconditional = torch.tensor([[41, 42]] * 5), torch.tensor([[41, 43]] * 5)
    spy = LogitSpy()
    tokens, z = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3), use_cache=use_cache,
                         grammar=spy, density=True, unconditional=unconditional, guidance=2.5)
    codes = tokens.clamp(max=39).flatten()
    mask = model.density.code_mask[codes]
    drawn = model.density.clamp_features(model.density.from_density(z.flatten(0, 1), model.code_features[codes],
                                                                    mask), mask).view(*tokens.shape, 6)
    other = torch.cat([unconditional, tokens[:, 2:]], 1)
    with torch.no_grad():
        conditional = model(tokens, features=drawn)[0][:, 1:-1].float()
        free = model(other, features=drawn)[0][:, 1:-1].float()
    assert (conditional - free).abs().amax() > 0.1  # the prompts matter
    torch.testing.assert_close(torch.stack(spy.logits, 1), free + 2.5 * (conditional - free), rtol=1e-4, atol=1e-4)
    # guidance 1 is the conditional model alone, whatever the unconditional prompts
    plain = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3), density=True)
    same = generate(model, prompt, 10, generator=torch.Generator().manual_seed(3), density=True,
                    unconditional=unconditional, guidance=1.0)
    assert all(torch.equal(a, b) for a, b in zip(plain, same))


def test_decode_step_runs_eagerly_on_the_buffers_a_graph_captures(monkeypatch):
    """Without CUDA graphs each step calls the model on the same static buffers (token, position,
    features) that a captured graph reads: the two paths differ by the capture alone."""
    from backbone.generate import DecodeStep

    model = hybrid_with_density()
    calls = []
    step_fn = model.decode_step
    monkeypatch.setattr(model, "decode_step", lambda *args: calls.append(args) or step_fn(*args))
    cache = KVCache.empty(model.config, 3, 24, torch.device("cpu"), torch.float32)
    step = DecodeStep(model, cache, 3, 2, graph=False, features=True)
    token, feats = torch.tensor([4, 25, 39]), torch.randn(3, 6)
    with torch.no_grad():
        logits, _ = step(token, 2, feats)
    (idx, pos, used_cache, used_features), = calls
    assert idx is step.token and pos is step.pos and used_cache is cache and used_features is step.features
    assert torch.equal(step.features[:, 0], feats) and torch.equal(step.token[:, 0], token) and int(step.pos) == 2
    fresh = KVCache.empty(model.config, 3, 24, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        expected = step_fn(token[:, None], torch.tensor([2]), fresh, feats[:, None])[0]
        centroid = step_fn(token[:, None], torch.tensor([2]), fresh, None)[0]
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    assert not torch.allclose(logits, centroid)


@pytest.mark.gpu
def test_cuda_graph_hybrid_sampling_matches_eager_steps():
    model = hybrid_with_density().cuda()
    prompt = torch.full((8, 2), 41, device="cuda")
    runs = [generate(model, prompt, 12, eos_id=42, pad_id=40, generator=torch.Generator("cuda").manual_seed(3),
                     cuda_graph=graph, density=True) for graph in (True, False)]
    assert torch.equal(runs[0][0], runs[1][0])
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_top_k_draws_exactly_the_k_most_likely_tokens(k):
    from backbone.generate import sample_next

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 50, generator=gen)
    logits[:, 0] = -5.0  # token 0 is never among the most likely: a broken cut cannot hide behind it
    top = torch.topk(logits, k).indices
    rows = logits.repeat(500, 1)  # 500 draws per row; each of the top k has p >= 1/50 of them at least
    drawn = sample_next(rows, 1.0, k, gen).view(500, 4)
    for r in range(4):
        assert set(drawn[:, r].tolist()) == set(top[r].tolist())


# two groups and a lone token: within-group probabilities (0.5, 0.3, 0.2) and (0.9, 0.1), group masses
# 0.6, 0.3, 0.1; as one group the probabilities are (0.30, 0.18, 0.12, 0.27, 0.03, 0.10)
TRUNCATED = torch.tensor([0.6 * 0.5, 0.6 * 0.3, 0.6 * 0.2, 0.3 * 0.9, 0.3 * 0.1, 0.1]).log()[None]
STARTS = (0, 3, 5)


@pytest.mark.parametrize("top_k, top_p, starts, expected", [
    # nucleus 0.7: group 1 keeps 0.5 + 0.3 (0.5 < 0.7 before the third), group 2 its first (0.9 >= 0.7)
    (None, 0.7, STARTS, [0.6 * 0.5 / 0.8, 0.6 * 0.3 / 0.8, 0, 0.3, 0, 0.1]),
    (1, 1.0, STARTS, [0.6, 0, 0, 0.3, 0, 0.1]),  # top 1 of each group, each with its group's mass
    (2, 0.95, STARTS, [0.6 * 0.5 / 0.8, 0.6 * 0.3 / 0.8, 0, 0.3 * 0.9, 0.3 * 0.1, 0.1]),
    # one group: the plain nucleus, 0.30 + 0.27 + 0.18 reach 0.7, the lone token is cut
    (None, 0.7, (), [0.30 / 0.75, 0.18 / 0.75, 0, 0.27 / 0.75, 0, 0]),
    (None, 1.0, STARTS, [0.3, 0.18, 0.12, 0.27, 0.03, 0.1]),  # nothing to cut
])
def test_truncation_cuts_within_each_group_and_keeps_its_probability(top_k, top_p, starts, expected):
    from backbone.generate import truncate

    probs = truncate(TRUNCATED, top_k, top_p, starts).softmax(-1)[0]
    torch.testing.assert_close(probs, torch.tensor(expected), atol=1e-6, rtol=0)


def test_truncation_leaves_a_forbidden_group_forbidden():
    """A group the grammar masked (all -inf) stays at -inf, without NaN, and the others keep theirs."""
    from backbone.generate import truncate

    logits = TRUNCATED.clone()
    logits[0, 3:5] = float("-inf")
    out = truncate(logits, 1, 0.7, STARTS)
    assert not out.isnan().any() and out[0, 3:5].eq(float("-inf")).all()
    torch.testing.assert_close(out.softmax(-1)[0], torch.tensor([6 / 7, 0, 0, 0, 0, 1 / 7]), atol=1e-6, rtol=0)


def test_nucleus_draws_follow_the_truncated_probabilities():
    """20,000 draws from sample_next with each group's 0.7 nucleus: the cut tokens never, the others at
    their truncated probabilities (within 6 standard deviations), the lone token at its own 0.1."""
    from backbone.generate import sample_next

    gen = torch.Generator().manual_seed(0)
    drawn = sample_next(TRUNCATED.repeat(20000, 1), 1.0, None, gen, 0.7, STARTS)
    freq = torch.bincount(drawn, minlength=6).double() / 20000
    assert freq[2] == 0 and freq[4] == 0
    torch.testing.assert_close(freq, torch.tensor([0.375, 0.225, 0, 0.3, 0, 0.1], dtype=torch.float64),
                               atol=0.02, rtol=0)


def test_the_nucleus_is_cut_in_bins_of_log_probability():
    """200 tokens of one group, each 0.0107 nats less likely than the one before: the 0.5 nucleus is the
    smallest run of whole 0.05-nat bins below the likeliest token that holds 0.5 of the mass, by hand in
    float64 (no token lies near a bin edge, where rounding could decide)."""
    from backbone.generate import NUCLEUS_BIN, truncate

    depth = 0.0107 * torch.arange(200, dtype=torch.float64) / NUCLEUS_BIN
    assert (depth - depth.round()).abs()[1:].min() > 1e-3
    p = (-0.0107 * torch.arange(200, dtype=torch.float64)).softmax(-1)
    bins = depth.floor()
    needed = next(b for b in range(200) if p[bins < b].sum() >= 0.5)
    kept = torch.isfinite(truncate(-0.0107 * torch.arange(200.0)[None], None, 0.5))[0]
    assert kept.tolist() == (bins < needed).tolist() and 0 < int(kept.sum()) < 200


def test_the_type_head_gives_each_group_its_own_probability(tmp_path):
    """With output groups the logits are log p(group) + log p(token | group): a group head that always says
    (0.4, 0.3, 0.1, 0.1, 0.1) gives those group totals whatever the token head, and within a group the
    token head's own softmax; the loss is -log of that product; saving and loading keep the groups."""
    vocab = Vocab(6)  # codes 0-5, then PAD, BOS, EOS, MASK: groups start at 0, 6, 7, 8, 9
    assert vocab.output_groups([0, 0, 0, 0, 0, 0]) == () and vocab.output_groups() == ()  # no type to predict
    assert vocab.output_groups([0, 0, 5, 5, 5, 5]) == (0, 2, 6, 7, 8, 9)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab.size, block_size=8, n_layer=1, n_head=2, n_embd=16,
                          output_groups=(0, 6, 7, 8, 9))).eval()
    assert not hasattr(tiny(), "group_head")
    group_p = torch.tensor([0.4, 0.3, 0.1, 0.1, 0.1])
    with torch.no_grad():
        model.group_head.weight.zero_()
        model.group_head.bias.copy_(group_p.log() + 7.0)  # a softmax ignores the shift
        idx = torch.tensor([[7, 0, 5, 3, 8], [7, 2, 2, 8, 6]])
        logits, loss = model(idx, idx)
        raw = model.lm_head(model.hidden_states(idx))
    p = logits.exp()
    totals = torch.stack([p[..., :6].sum(-1), p[..., 6], p[..., 7], p[..., 8], p[..., 9]], -1)
    torch.testing.assert_close(totals, group_p.expand(2, 5, 5))
    torch.testing.assert_close(p[..., :6] / 0.4, raw[..., :6].softmax(-1))
    expected = [-(group_p[0].log() + raw[b, t, :6].log_softmax(-1)[i]) if i < 6 else -group_p[i - 5].log()
                for b, row in enumerate(idx.tolist()) for t, i in enumerate(row)]
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    model.vocab = vocab
    model.save_pretrained(tmp_path / "m")
    again = GPT.from_pretrained(tmp_path / "m")
    assert again.config.output_groups == (0, 6, 7, 8, 9)
    with torch.no_grad():
        torch.testing.assert_close(again(idx)[0], logits)
        # nothing ties one group's token logits to another's: a token head 1,000 above the rest (where exp
        # overflows) still gives each group its own softmax
        hidden = model.hidden_states(idx)
        shifted = model.lm_head(hidden) + torch.tensor([1000.0] * 6 + [0.0] * 4)
        model.lm_head.forward = lambda h: shifted
        torch.testing.assert_close(model.logits(hidden), logits, rtol=0, atol=2e-4)  # float32 steps at 1,000: 6e-5


def test_feature_logits_tilt_each_code_by_its_features_and_their_squares(tmp_path):
    """With feature_logits a code's logit gains w(h) . [x, x^2] of its table row x, on top of the token
    head; special tokens (zero rows) gain nothing; saving and loading keep the tilt."""
    with pytest.raises(ValueError, match="hybrid"):
        GPTConfig(vocab_size=8, block_size=8, n_layer=1, n_head=2, n_embd=16, feature_logits=True)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=2, n_embd=16, n_features=2, n_codes=5,
                          feature_logits=True)).eval()
    model.set_code_features(torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 2.0], [0.5, 0.5], [2.0, -1.0]]))
    idx = torch.tensor([[6, 0, 3, 1], [6, 4, 2, 7]])
    with torch.no_grad():
        hidden = model.hidden_states(idx)
        w = model.feature_tilt(hidden)  # per position: (w_x1, w_x2, w_x1^2, w_x2^2)
        logits = model.logits(hidden)
        tilt = logits - model.lm_head(hidden)
    by_hand = {0: w[..., 1] + w[..., 3], 1: w[..., 0] + w[..., 2], 2: -w[..., 0] + 2 * w[..., 1] + w[..., 2] + 4 * w[..., 3],
               3: 0.5 * (w[..., 0] + w[..., 1]) + 0.25 * (w[..., 2] + w[..., 3]),
               4: 2 * w[..., 0] - w[..., 1] + 4 * w[..., 2] + w[..., 3]}
    for code, expected in by_hand.items():
        torch.testing.assert_close(tilt[..., code], expected)
    assert not tilt[..., 5:].any() and tilt[..., :5].abs().min() > 0
    model.vocab = Vocab(5)
    model.save_pretrained(tmp_path / "m")
    again = GPT.from_pretrained(tmp_path / "m")
    assert again.config.feature_logits
    with torch.no_grad():
        torch.testing.assert_close(again.logits(again.hidden_states(idx)), logits)
    assert not hasattr(tiny_hybrid(), "feature_tilt")


def test_feature_logits_width_adds_a_learnt_mlp_of_each_codes_features_to_the_tilt_basis(tmp_path):
    """With feature_logits_width W the tilt is w(h) . [x, x^2, g(x)], g(x) = gelu(B gelu(A x + a) + b) of
    width W (by hand below); special tokens still gain nothing; saving and loading keep it."""
    for bad, match in (({"feature_logits_width": 4}, "needs feature_logits=true"),
                       ({"feature_logits": True, "feature_logits_width": -1}, "must be >= 0")):
        with pytest.raises(ValueError, match=match):
            GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=2, n_embd=16, n_features=2, n_codes=5, **bad)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=2, n_embd=16, n_features=2, n_codes=5,
                          feature_logits=True, feature_logits_width=3)).eval()
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 2.0], [0.5, 0.5], [2.0, -1.0]])
    model.set_code_features(x)
    idx = torch.tensor([[6, 0, 3, 1], [6, 4, 2, 7]])
    (A, a), (B, b) = ((layer.weight, layer.bias) for layer in model.feature_basis if isinstance(layer, torch.nn.Linear))
    with torch.no_grad():  # biases start at zero, where g(0) = 0 would hide a tilt of the special tokens
        a.normal_(), b.normal_()
    gelu = torch.nn.functional.gelu
    with torch.no_grad():
        hidden = model.hidden_states(idx)
        w = model.feature_tilt(hidden)  # (..., 2 + 2 + 3)
        logits = model.logits(hidden)
        tilt = logits - model.lm_head(hidden)
        g = gelu(gelu(x @ A.T + a) @ B.T + b)
    assert w.shape[-1] == 7 and g.shape == (5, 3)
    for code in range(5):
        basis = torch.cat([x[code], x[code].square(), g[code]])
        torch.testing.assert_close(tilt[..., code], w @ basis)
    assert not tilt[..., 5:].any() and g.abs().min() > 0
    model.vocab = Vocab(5)
    model.save_pretrained(tmp_path / "m")
    again = GPT.from_pretrained(tmp_path / "m")
    assert again.config.feature_logits_width == 3
    with torch.no_grad():
        torch.testing.assert_close(again.logits(again.hidden_states(idx)), logits)


def test_momentum_terms_make_a_pair_mass_linear_in_the_second_object():
    """Two massless 40 GeV jets back to back at eta = 0: m^2 = 2 (E1 E2 - p1.p2) = 6400 GeV^2, the W mass,
    is a linear map (given by the first jet) of the second jet's four-momentum terms."""
    from backbone.model import momentum_terms

    terms = momentum_terms(torch.tensor([40.0, 40.0]), torch.tensor([0.0, 0.0]), torch.tensor([0.0, math.pi]),
                           torch.tensor([0.0, 0.0]))
    p1, p2 = terms[0, :4], terms[1, :4]  # units of 100 GeV
    torch.testing.assert_close(p1, torch.tensor([0.4, 0.4, 0.0, 0.0]))
    minkowski = torch.tensor([1.0, -1.0, -1.0, -1.0])
    assert float(100 * torch.sqrt(2 * (minkowski * p1 * p2).sum())) == pytest.approx(80.0)
    # the products, upper triangle row by row: E^2, E px, E py, E pz, px^2, px py, ...
    torch.testing.assert_close(terms[1, 4:], torch.tensor([0.16, -0.16, 0, 0, 0.16, 0, 0, 0, 0, 0]), atol=1e-6, rtol=0)
    eta = momentum_terms(torch.tensor([30.0]), torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([4.0]))
    torch.testing.assert_close(eta[0, 3], torch.tensor(0.3 * math.sinh(1.0)))
    torch.testing.assert_close(eta[0, 0], torch.tensor(math.sqrt((0.3 * math.cosh(1.0)) ** 2 + 0.04 ** 2)))


def test_momentum_logits_tilt_each_code_by_its_standardized_momentum_terms(tmp_path):
    """With momentum_logits the tilt basis gains each code's 14 momentum terms, each standardized over the
    codes (special tokens: zero); saving, loading and reinitializing keep them."""
    from backbone.model import MOMENTUM_TERMS, momentum_terms

    with pytest.raises(ValueError, match="needs feature_logits=true"):
        GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=2, n_embd=16, n_features=2, n_codes=5,
                  momentum_logits=True)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=2, n_embd=16, n_features=2, n_codes=5,
                          feature_logits=True, momentum_logits=True)).eval()
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 2.0], [0.5, 0.5], [2.0, -1.0]])
    model.set_code_features(x)
    pt, eta = torch.tensor([20.0, 40.0, 60.0, 80.0, 100.0]), torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0])
    phi, mass = torch.tensor([0.0, 1.0, 2.0, 3.0, -1.0]), torch.zeros(5)
    model.set_code_momenta(pt.numpy(), eta.numpy(), phi.numpy(), mass.numpy())
    # at eta = 0 and no mass, E = pt: pt 20..100 GeV standardized is (-2, -1, 0, 1, 2) / sqrt(2.5)
    torch.testing.assert_close(model.momentum_basis[:5, 0], torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]) / math.sqrt(2.5))
    terms = momentum_terms(pt.double(), eta.double(), phi.double(), mass.double())
    expected = ((terms - terms.mean(0)) / terms.std(0).clamp(min=1e-12)).float()
    expected[:, terms.std(0) == 0] = 0  # pz and its products vanish at eta = 0: a column of zeros, not NaN
    torch.testing.assert_close(model.momentum_basis[:5], expected)
    assert not model.momentum_basis[5:].any()
    idx = torch.tensor([[6, 0, 3, 1], [6, 4, 2, 7]])
    with torch.no_grad():
        hidden = model.hidden_states(idx)
        w = model.feature_tilt(hidden)
        logits = model.logits(hidden)
        tilt = logits - model.lm_head(hidden)
    assert w.shape[-1] == 4 + MOMENTUM_TERMS
    for code in range(5):
        torch.testing.assert_close(tilt[..., code], w @ torch.cat([x[code], x[code].square(), expected[code]]))
    assert not tilt[..., 5:].any()
    model.vocab = Vocab(5)
    model.save_pretrained(tmp_path / "m")
    again = GPT.from_pretrained(tmp_path / "m")
    assert again.config.momentum_logits
    torch.testing.assert_close(again.momentum_basis, model.momentum_basis)
    with torch.no_grad():
        torch.testing.assert_close(again.logits(again.hidden_states(idx)), logits)
    torch.testing.assert_close(model.reinitialized().momentum_basis, model.momentum_basis)
