"""sample.py end to end: tokenizer -> token store -> tiny backbone -> synthetic events in event files."""
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import torch

from backbone.grammar import Grammar
from backbone.vocab import Vocab
from events.io import read_events
from events.model import ObjectType as T
from tests.conftest import REPO


def sample(backbone, tok, out, *extra):
    return subprocess.run([sys.executable, "sample.py", "--backbone", str(backbone), "--tokenizer", str(tok),
                           "--out", str(out), "--device", "cpu", *extra], cwd=REPO, capture_output=True, text=True)


@pytest.mark.parametrize("suffix", ["h5", "root"])
def test_sample_writes_valid_events(backbone, tmp_path, suffix):
    bb, tok = backbone
    out = tmp_path / f"syn.{suffix}"
    proc = sample(bb, tok, out, "--events", "120", "--process", "ttbar", "--batch-size", "50", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    events = read_events(out)
    assert len(events) == 120 and events.info["event"].tolist() == list(range(120))
    assert (events.count(T.MET) == 1).all()  # the grammar: one MET per event
    assert events.process.tolist() == ["ttbar"] * 120
    events.validate()
    again = tmp_path / f"again.{suffix}"
    sample(bb, tok, again, "--events", "120", "--process", "ttbar", "--batch-size", "50", "--seed", "3")
    assert ak.to_list(read_events(again).objects) == ak.to_list(events.objects)  # same seed, same events


def test_sample_from_a_hybrid_backbone(hybrid_backbone, tmp_path):
    bb, tok = hybrid_backbone
    proc = sample(bb, tok, tmp_path / "syn.h5", "--events", "60", "--process", "ttbar", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    events = read_events(tmp_path / "syn.h5")
    assert len(events) == 60 and (events.count(T.MET) == 1).all()


def test_sample_guidance_changes_the_events_of_the_same_seed(backbone, tmp_path):
    """--guidance reaches the sampler: the same seed at guidance 1 and at 3 draws different events, and
    guidance 1 is the default."""
    bb, tok = backbone
    runs = {}
    for name, extra in (("default", ()), ("one", ("--guidance", "1")), ("three", ("--guidance", "3"))):
        proc = sample(bb, tok, tmp_path / f"{name}.h5", "--events", "60", "--process", "ttbar", "--seed", "2", *extra)
        assert proc.returncode == 0, proc.stderr
        runs[name] = ak.to_list(read_events(tmp_path / f"{name}.h5").objects)
    assert runs["default"] == runs["one"] and runs["three"] != runs["one"]


def test_sample_top_p_changes_the_events_of_the_same_seed(backbone, tmp_path):
    """--top-p reaches the sampler: the same seed at 1, 0.98 and 0.3 draws different events, and 0.98 is the
    default."""
    bb, tok = backbone
    runs = {}
    for name, extra in (("default", ()), ("0.98", ("--top-p", "0.98")), ("one", ("--top-p", "1")),
                        ("third", ("--top-p", "0.3"))):
        proc = sample(bb, tok, tmp_path / f"{name}.h5", "--events", "60", "--process", "ttbar", "--seed", "2", *extra)
        assert proc.returncode == 0, proc.stderr
        runs[name] = ak.to_list(read_events(tmp_path / f"{name}.h5").objects)
    assert runs["default"] == runs["0.98"] and len({str(runs[k]) for k in ("0.98", "one", "third")}) == 3


def test_sample_events_truncates_within_each_object_type(backbone, monkeypatch):
    """sample_events hands the sampler its top_p and the tokenizer's object types as the truncation groups
    (each special and process token alone), so that no type is cut as a whole."""
    import importlib

    from backbone.model import GPT
    from backbone.sampling import sample_events
    from tokenizer.tokenizer import Tokenizer

    sampler = importlib.import_module("backbone.generate")  # `backbone` is the fixture here
    bb, tok = backbone
    model, tokenizer = GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok)
    seen, real = [], sampler.generate
    monkeypatch.setattr(sampler, "generate", lambda *a, **k: seen.append(k) or real(*a, **k))
    next(sample_events(model, tokenizer, 5, process="ttbar", top_p=0.4, top_k=3))
    types = tokenizer.code_types()
    runs = [0] + [i for i in range(1, len(types)) if types[i] != types[i - 1]]
    assert seen[0]["top_p"] == 0.4 and seen[0]["top_k"] == 3
    assert seen[0]["groups"] == (*runs, *range(model.vocab.n_codes, model.vocab.size))


def variant(bb, folder, edit):
    """A copy of backbone folder `bb` with its config.json changed by `edit(config)`."""
    import json
    config = json.loads((bb / "config.json").read_text())
    edit(config)
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((bb / "model.safetensors").read_bytes())
    return folder


def test_sample_refuses_bad_pairs_and_arguments(backbone, tmp_path):
    bb, tok = backbone
    # trained with process dropout: without --process, events of the pretraining mixture
    proc = sample(bb, tok, tmp_path / "mix.h5", "--events", "20")
    assert proc.returncode == 0, proc.stderr
    assert (read_events(tmp_path / "mix.h5").info["process"] == -1).all()
    strict = variant(bb, tmp_path / "strict", lambda c: c["train_config"]["train"].update(process_dropout=0.0))
    proc = sample(strict, tok, tmp_path / "x.h5", "--events", "5")
    assert proc.returncode == 2 and "conditional: give --process" in proc.stderr
    proc = sample(strict, tok, tmp_path / "x.h5", "--events", "5", "--process", "ttbar", "--guidance", "2")
    assert proc.returncode == 2 and "without process dropout" in proc.stderr
    proc = sample(bb, tok, tmp_path / "x.h5", "--events", "5", "--guidance", "2")
    assert proc.returncode == 2 and "guidance needs a process" in proc.stderr
    proc = sample(bb, bb, tmp_path / "x.h5", "--events", "5", "--process", "ttbar")
    assert proc.returncode == 2 and "not a colliderfm tokenizer config" in proc.stderr

    def other_codebook(config):
        config["vocab"]["n_codes"] = 512
        config["gpt"]["vocab_size"] += 256
    other = variant(bb, tmp_path / "other", other_codebook)
    proc = sample(other, tok, tmp_path / "x.h5", "--events", "5", "--process", "ttbar")
    assert proc.returncode == 2 and ("weights do not match" in proc.stderr or "use the tokenizer" in proc.stderr)
    assert not (tmp_path / "x.h5").exists()


def test_grammar_orders_groups_and_ends_after_met(trained):
    tok = trained[0]
    vocab = Vocab(tok.vocab_size)
    g = Grammar(vocab, tok, 1, "cpu")
    code = {T(t): tok.model.offsets[t] for t in tok.model.types}
    logits = torch.zeros(1, vocab.size)
    assert torch.isinf(g.mask(logits)[0, vocab.eos])  # no EOS before MET
    g.update(torch.tensor([code[T.MUON]]))
    allowed = torch.isfinite(g.mask(logits)[0])
    assert not allowed[code[T.JET]] and allowed[code[T.ELECTRON]] and allowed[code[T.MET]]
    g.update(torch.tensor([code[T.MET]]))
    allowed = torch.isfinite(g.mask(logits)[0])
    assert allowed.nonzero().flatten().tolist() == [vocab.eos]


def test_grammar_bounds_each_objects_log_pt_by_the_last_of_its_group(trained):
    tok = trained[0]
    vocab = Vocab(tok.vocab_size)
    code = {T(t): tok.model.offsets[t] for t in tok.model.types}
    g = Grammar(vocab, tok, 2, "cpu")
    inf = float("inf")
    assert g.upper_log_pt(torch.tensor([code[T.JET], code[T.MUON]])).tolist() == [inf, inf]
    g.update(torch.tensor([code[T.JET], code[T.MUON]]), torch.tensor([0.5, 0.25]))
    assert g.upper_log_pt(torch.tensor([code[T.BJET], code[T.ELECTRON]])).tolist() == [0.5, 0.25]
    assert g.upper_log_pt(torch.tensor([code[T.MUON], code[T.MET]])).tolist() == [inf, inf]  # a new group
    g.update(torch.tensor([vocab.eos, code[T.ELECTRON]]), torch.tensor([9.0, -1.0]))  # EOS is no object
    assert g.upper_log_pt(torch.tensor([code[T.JET], code[T.MUON]])).tolist() == [0.5, -1.0]


def test_hybrid_sampling_keeps_each_group_in_descending_pt(hybrid_backbone):
    """The drawn features, before decoding sorts them: as ordered as the events the backbone learnt."""
    from backbone.generate import generate
    from backbone.model import GPT
    from tokenizer.tokenizer import Tokenizer

    bb, tok_folder = hybrid_backbone
    model, tok = GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok_folder)
    vocab = model.vocab
    prompt = torch.tensor([[vocab.bos, vocab.process_token("ttbar")]] * 400)
    grammar = Grammar(vocab, tok, 400, "cpu", max_new=model.config.block_size - 2)
    tokens, z = generate(model, prompt, model.config.block_size - 2, eos_id=vocab.eos, pad_id=vocab.pad,
                         generator=torch.Generator().manual_seed(0), grammar=grammar, density=True)
    rank = grammar.rank[tokens]
    same = (rank[:, 1:] == rank[:, :-1]) & (rank[:, 1:] >= 0)
    assert same.sum() > 400  # objects follow others of their group: an order to keep
    assert (z[:, 1:, 0][same] <= z[:, :-1, 0][same]).all()


def test_grammar_keeps_caps_and_the_length_budget(trained):
    from events.model import Caps
    tok = trained[0]
    vocab = Vocab(tok.vocab_size)
    code = {T(t): tok.model.offsets[t] for t in tok.model.types}
    logits = torch.zeros(1, vocab.size)
    g = Grammar(vocab, tok, 1, "cpu", max_new=6, caps=Caps(jets=2))
    g.update(torch.tensor([code[T.JET]]))
    g.update(torch.tensor([code[T.BJET]]))
    allowed = torch.isfinite(g.mask(logits)[0])
    assert not allowed[code[T.JET]] and not allowed[code[T.BJET]] and allowed[code[T.MUON]]  # jets at their cap
    g.update(torch.tensor([code[T.MUON]]))
    g.update(torch.tensor([code[T.MUON]]))
    # two positions left: MET now, then EOS
    assert torch.isfinite(g.mask(logits)[0]).nonzero().flatten().tolist() == list(
        range(tok.model.offsets[int(T.MET)], tok.model.offsets[int(T.MET)] + tok.model.codes_per_type[int(T.MET)]))
    g.update(torch.tensor([code[T.MET]]))
    assert torch.isfinite(g.mask(logits)[0]).nonzero().flatten().tolist() == [vocab.eos]


def synthetic_tokenizer():
    """An untrained event-mode tokenizer of 4 codes per type: sampling needs its code types (the
    grammar) and a decoder; the multiplicities decoded do not depend on its weights."""
    from tokenizer.config import ModelConfig
    from tokenizer.features import FEATURES, FeatureTransform
    from tokenizer.tokenizer import Tokenizer, build_model
    import numpy as np

    torch.manual_seed(0)
    types = [int(t) for t in (T.JET, T.BJET, T.ELECTRON, T.MUON, T.PHOTON, T.MET)]
    n = len(FEATURES["event"])
    model = build_model(ModelConfig(hidden=16, depth=1, latent_dim=8, codebook_dim=4), n, types,
                        dict.fromkeys(types, 4), {})
    return Tokenizer(model, FeatureTransform("event", np.zeros(n), np.ones(n)))


@pytest.mark.parametrize("multiplicity", [False, True])
def test_conditional_sampling_follows_each_process(tmp_path, multiplicity):
    """Two processes of disjoint multiplicities share every code (jets 0-3, then a MET code): only the
    process token tells them apart, at training and at sampling. Trained to convergence, greedy
    decoding gives each process its own number of jets, exactly; with data.multiplicity_token too, where
    the backbone then carries the token."""
    import numpy as np

    from backbone.config import PretrainConfig
    from backbone.model import GPT
    from backbone.pretrain import run
    from backbone.sampling import sample_events
    from common.config import from_dict
    from tokenizer.store import TokenWriter
    from tokenizer.tokenizer import TokenBatch

    tok = synthetic_tokenizer()
    met = tok.model.offsets[int(T.MET)]
    rng = np.random.default_rng(0)
    process = np.arange(256) % 2  # two: 2 jets, four: 4 jets
    ids = [list(rng.integers(0, 4, 2 + 2 * p)) + [met] for p in process]
    with TokenWriter(tmp_path / "tokens.h5", tok.vocab_size, "synthetic", "event", code_types=tok.code_types()) as writer:
        writer.write(TokenBatch(ak.Array(ids), {"event": np.arange(256), "process": process.astype(np.int16)},
                                ("two", "four")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(from_dict(PretrainConfig, {
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 32}, "data": {"train": str(tmp_path / "tokens.h5"),
                                                                        "conditional": True,
                                                                        "multiplicity_token": multiplicity},
            "train": {"batch_size": 64, "lr": 0.01, "warmup_steps": 5, "max_steps": 300, "eval_every": 300,
                      "device": "cpu"}, "out": str(tmp_path / "backbone")}), progress=False)
        backbone = GPT.from_pretrained(tmp_path / "backbone")
        assert (backbone.vocab.multiplicities is not None) == multiplicity
        for name, jets in (("two", 2), ("four", 4)):
            events = next(sample_events(backbone, tok, 100, process=name, temperature=0.0, seed=3))
            assert events.count(T.JET, T.BJET).tolist() == [jets] * 100, name
    finally:
        torch.set_num_threads(threads)


def test_a_leading_jet_frame_tokenizer_gets_each_sampled_event_turned_by_a_uniform_angle(backbone):
    """With azimuth: leading_jet the same seed draws the same tokens, and each event is turned by the angle
    numpy's generator [seed, 1] draws for it (uniform in [-pi, pi)): not left at its leading jet's phi = 0."""
    import copy
    from dataclasses import replace

    import numpy as np

    from backbone.model import GPT
    from backbone.sampling import sample_events
    from events.azimuth import rotate_azimuth
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    model, absolute = GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok)
    framed = copy.deepcopy(absolute)
    framed.model.config = replace(framed.model.config, azimuth="leading_jet")
    plain = next(sample_events(model, absolute, 40, process="ttbar", seed=5))
    turned = next(sample_events(model, framed, 40, process="ttbar", seed=5))
    angle = np.random.default_rng([5, 1]).uniform(-np.pi, np.pi, 40)
    assert ak.to_list(turned.objects) == ak.to_list(rotate_azimuth(plain, -angle).objects)
    assert "azimuth" not in turned.info


def test_mean_decoding_depends_on_the_tokens_alone(hybrid_backbone):
    """Greedy tokens and the head's means: the same events whatever the seed, where drawn features (and so,
    fed back, the tokens after them) change with it."""
    from backbone.model import GPT
    from backbone.sampling import sample_events
    from tokenizer.tokenizer import Tokenizer

    bb, tok_folder = hybrid_backbone
    model, tok = GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok_folder)

    def pts(decode, seed):
        events = next(sample_events(model, tok, 100, process="ttbar", temperature=0, seed=seed, decode=decode))
        return ak.to_numpy(ak.flatten(events.objects.pt))

    np.testing.assert_array_equal(pts("mean", 3), pts("mean", 4))
    assert not np.array_equal(pts("continuous", 3), pts("continuous", 4))
