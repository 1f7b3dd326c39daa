"""sample.py end to end: tokenizer -> token store -> tiny backbone -> synthetic events in event files."""
import subprocess
import sys

import awkward as ak
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
