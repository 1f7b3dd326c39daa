"""The multiplicity token (backbone.multiplicity): its table, the sequences that carry it, the grammar
that writes exactly what it announces, sampling and scoring with it, and data.multiplicity_token."""
import awkward as ak
import numpy as np
import pytest
import torch

from backbone.data import TokenSequences
from backbone.grammar import Grammar
from backbone.multiplicity import Multiplicities
from backbone.vocab import Vocab
from events.errors import EventDataError
from events.model import Caps, ObjectType as T
from tests.test_sample import synthetic_tokenizer
from tokenizer.tokenizer import TokenBatch

# the synthetic tokenizer's codes: 4 of each of jet, b-jet, electron, muon, photon, MET
JET, BJET, ELE, MU, PHO, MET = 0, 4, 8, 12, 16, 20
CODE_TYPES = np.repeat([int(t) for t in (T.JET, T.BJET, T.ELECTRON, T.MUON, T.PHOTON, T.MET)], 4)


def test_the_table_holds_every_count_within_the_caps():
    counts = Multiplicities.of(CODE_TYPES)
    assert counts.kinds == ((0,), (1,), (2, 3)) and counts.caps == (12, 12, 4)  # photons, MET not counted
    assert counts.names == ("jet", "bjet", "electron+muon")
    assert len(counts) == 91 * 5  # jets + b-jets <= 12: 13 * 14 / 2 pairs; leptons 0..4
    assert counts.table[:, :2].sum(1).max() == 12 and counts.table[:, 2].max() == 4
    # jets + b-jets <= 2: (0,0) (0,1) (0,2) (1,0) (1,1) (2,0); leptons 0, 1
    small = Multiplicities.of(CODE_TYPES, Caps(jets=2, leptons=1))
    assert len(small) == 12 and sorted(map(tuple, small.table[:, :2].tolist()))[:3] == [(0, 0), (0, 0), (0, 1)]
    # the same 12 among the full table's tokens, in the table's order: what the sampler offers under those caps
    assert counts.table[counts.within(Caps(jets=2, leptons=1))].tolist() == small.table.tolist()
    assert counts.kind_of_code.tolist() == [0] * 4 + [1] * 4 + [2] * 8 + [-1] * 8
    constituents = Multiplicities.of(np.full(8, int(T.CONSTITUENT)))
    assert constituents.kinds == ((6,),) and len(constituents) == 129 and constituents.table[-1, 0] == 128
    with pytest.raises(EventDataError, match="none of them"):
        Multiplicities.of(np.full(8, int(T.MET)))


def test_each_event_gets_the_token_of_its_counts_and_one_beyond_the_caps_is_named():
    counts = Multiplicities.of(CODE_TYPES, Caps(jets=2, leptons=1))
    codes = np.array([JET, BJET + 1, MU, MET, PHO, MET, JET, JET + 3, MET])
    offsets = np.array([0, 4, 6, 9])  # (1 jet, 1 b-jet, 1 lepton), (nothing counted), (2 jets)
    rows = counts.table[counts.tokens_of(codes, offsets)]
    assert rows.tolist() == [[1, 1, 1], [0, 0, 0], [2, 0, 0]]
    over = np.array([JET, MET, JET, BJET, BJET, MET])  # event 1: 3 jets in all, beyond jets + b-jets <= 2
    with pytest.raises(EventDataError, match=r"my.h5: event 1 has \{'jet': 1, 'bjet': 2"):
        counts.tokens_of(over, np.array([0, 2, 6]), "my.h5")


def test_the_vocabulary_puts_them_last_and_records_them():
    counts = Multiplicities.of(CODE_TYPES)
    vocab = Vocab(24, ("ttbar", "wjets"), counts)
    assert vocab.first_count == 24 + 4 + 2 and vocab.size == 30 + 455
    assert Vocab.from_dict(vocab.to_dict()) == vocab
    assert Vocab.from_dict({"n_codes": 24, "processes": []}).multiplicities is None  # folders written before
    assert vocab.output_groups(CODE_TYPES)[-2:] == (24 + 4, 30)  # the processes, then the multiplicity tokens


def batch(ids, process=None, features=False):
    n = len(ids)
    feats = ak.Array([np.full((len(e), 6), i + 1, np.float32) for i, e in enumerate(ids)]) if features else None
    return TokenBatch(ak.Array(ids), {"process": np.zeros(n, np.int64) if process is None else process},
                      ("ttbar",), feats)


def test_sequences_carry_the_token_after_the_prompt_and_features_stay_on_their_objects():
    seqs = TokenSequences([batch([[JET, MU, MET], [MET]], features=True)], 24, conditional=True, multiplicity=True,
                          code_types=CODE_TYPES, mode="event")
    v = seqs.vocab
    one = v.first_count + v.multiplicities.tokens_of(np.array([JET, MU, MET]), np.array([0, 3]))[0]
    assert seqs.sequence(0).tolist() == [v.bos, v.process_token("ttbar"), one, JET, MU, MET, v.eos]
    assert v.multiplicities.table[seqs.sequence(1)[2] - v.first_count].tolist() == [0, 0, 0]
    assert seqs.lengths.tolist() == [7, 5] and seqs.longest_possible() == (12 + 4 + 4 + 1) + 4  # objects, 4 more
    f = seqs.batch_features(np.array([0, 1]))  # event 0's features are 1s, event 1's 2s
    assert f[:, :3].abs().sum() == 0 and (f[0, 3:6] == 1).all() and (f[1, 3] == 2).all() and f[1, 4:].sum() == 0
    with pytest.raises(EventDataError, match="object type"):
        TokenSequences([batch([[JET, MET]])], 24, multiplicity=True)


def test_unlabelled_sequences_use_the_backbones_token_ids_and_hide_the_process():
    from finetune.data import unlabelled_sequences

    vocab = Vocab(24, ("wjets", "ttbar"), Multiplicities.of(CODE_TYPES))
    seqs = unlabelled_sequences([batch([[JET, JET, MET]])], vocab, True, None, "x")
    row = seqs.sequence(0)
    assert row[1] == vocab.mask and vocab.multiplicities.table[row[2] - vocab.first_count].tolist() == [2, 0, 0]


def announced_grammar(n, caps=None):
    tok = synthetic_tokenizer()
    vocab = Vocab(tok.vocab_size, (), Multiplicities.of(tok.code_types()))
    return vocab, Grammar(vocab, tok, n, "cpu", caps=caps)


def test_the_grammar_draws_the_token_first_then_exactly_the_objects_it_announces():
    vocab, g = announced_grammar(455)
    table = vocab.multiplicities.table
    allowed = torch.isfinite(g.mask(torch.zeros(455, vocab.size)))
    assert (allowed.nonzero()[:, 1] >= vocab.first_count).all() and allowed.sum(1).eq(455).all()
    g.update(torch.arange(vocab.first_count, vocab.size))  # row i announces table row i
    rng = torch.Generator().manual_seed(0)
    seqs, ended = [], torch.zeros(455, dtype=torch.bool)
    for _ in range(30):
        logits = g.mask(torch.randn(455, vocab.size, generator=rng))
        assert torch.isfinite(logits).any(1)[~ended].all()  # never a dead end
        token = torch.where(ended, vocab.eos, logits.argmax(1))
        seqs.append(token)
        ended |= token == vocab.eos
        g.update(token)
    assert ended.all()
    drawn = torch.stack(seqs, 1)
    kinds = torch.from_numpy(vocab.multiplicities.kind_of_code)
    for k in range(3):
        assert ((drawn < 24) & (kinds[drawn.clamp(max=23)] == k)).sum(1).tolist() == table[:, k].tolist()
    assert ((drawn >= MET) & (drawn < MET + 4)).sum(1).eq(1).all()  # and one MET, last


def test_the_grammar_offers_only_the_counts_the_sampling_caps_allow():
    vocab, g = announced_grammar(1, Caps(jets=2, leptons=1))
    allowed = torch.isfinite(g.mask(torch.zeros(1, vocab.size)))[0, vocab.first_count:]
    table = vocab.multiplicities.table
    assert allowed.tolist() == ((table[:, :2].sum(1) <= 2) & (table[:, 2] <= 1)).tolist() and allowed.sum() == 12


def test_sampled_events_hold_what_the_drawn_token_announced(monkeypatch):
    """An untrained backbone made to announce (3 jets, 1 b-jet, 2 leptons): every sampled event has them."""
    from backbone.config import GPTConfig
    from backbone.model import GPT
    from backbone.sampling import sample_events

    tok = synthetic_tokenizer()
    vocab = Vocab(tok.vocab_size, (), Multiplicities.of(tok.code_types()))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab.size, block_size=28, n_layer=1, n_head=2, n_embd=16,
                          n_codes=vocab.n_codes)).eval()
    model.vocab = vocab
    row = int(np.flatnonzero((vocab.multiplicities.table == [3, 1, 2]).all(1))[0])
    logits = GPT.logits
    monkeypatch.setattr(GPT, "logits", lambda self, h: logits(self, h).index_add(
        -1, torch.tensor([vocab.first_count + row]), torch.full((*h.shape[:-1], 1), 50.0)))
    events = next(sample_events(model, tok, 50, seed=1, decode="centroid"))
    assert events.count(T.JET).tolist() == [3] * 50 and events.count(T.BJET).tolist() == [1] * 50
    assert events.count(T.ELECTRON, T.MUON).tolist() == [2] * 50 and events.count(T.MET).tolist() == [1] * 50


def test_the_event_likelihood_counts_the_multiplicity_token():
    """nll_scores sums -log p over the objects, the end and the multiplicity token, by hand."""
    from backbone.config import GPTConfig
    from backbone.model import GPT
    from finetune.scores import nll_scores

    vocab = Vocab(24, ("ttbar",), Multiplicities.of(CODE_TYPES))
    seqs = TokenSequences([batch([[JET, BJET, MU, MET]])], 24, conditional=True, vocab=vocab)
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=vocab.size, block_size=12, n_layer=1, n_head=2, n_embd=16, n_codes=24)).eval()
    idx = seqs.batch(np.array([0]))
    with torch.no_grad():
        logp = model(idx[:, :-1])[0].log_softmax(-1)[0]
    picked = logp[torch.arange(idx.shape[1] - 1), idx[0, 1:]]
    # targets: the process (not scored), the multiplicity token, 4 objects, EOS
    assert nll_scores(model, seqs, "cpu")["nll"][0] == pytest.approx(-float(picked[1:].sum()), rel=1e-5)


def test_count_hazards_by_hand():
    from benchmarks.conditional_generation import count_hazards

    table = np.array([[0, 0, 1], [1, 0, 0], [2, 1, 0]])  # 0, 1 and 3 jets (b-jets count)
    hazards = count_hazards(table, np.array([0.2, 0.3, 0.5]))
    assert hazards[:4] == pytest.approx([0.8, 0.5 / 0.8, 1.0, 0.0]) and hazards[4] is None


def test_each_multiplicity_token_is_its_own_part_of_the_composition():
    """The calibrated score's composition reads -log P(N): each N a group of its own after the types and EOS."""
    from finetune.scores import type_groups

    vocab = Vocab(24, ("ttbar",), Multiplicities.of(CODE_TYPES))
    group = type_groups(CODE_TYPES, vocab, vocab.size, "cpu")
    assert group[:24].tolist() == np.repeat(np.arange(6), 4).tolist() and group[vocab.eos] == 6
    assert group[vocab.first_count:].tolist() == list(range(7, 7 + 455))
    assert group[vocab.process_token("ttbar")] == -1 and group[vocab.mask] == -1
