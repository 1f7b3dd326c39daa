"""Fine-tuning by head swap, classification metrics and anomaly scores, on the session's small samples."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from events.errors import EventDataError
from events.io import write_events
from finetune.config import HeadSection, TrainSection
from finetune.metrics import (binary_metrics, classification_metrics, entropy, max_sic, rejection_at,
                              sic_at)
from finetune.model import Classifier
from tests.conftest import REPO


def backbone_tensors(model):
    return {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


def test_entropy_on_hand_made_probabilities():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.9, 0.1, 0.0]])
    expected = [0.0, np.log(2), np.log(3), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))]
    np.testing.assert_allclose(entropy(probs), expected, rtol=1e-12)


def test_binary_metrics_on_hand_computed_values():
    # 4 background events, 4 signal: cut above 0.65 keeps signal 0.8, 0.9 and no background
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9])
    m = binary_metrics(labels, scores)
    assert m["auc"] == pytest.approx(15 / 16)
    assert rejection_at(labels, scores, 0.75) == pytest.approx(4.0)  # 3 of 4 signal pass with 1 of 4 background
    assert max_sic(labels, scores, min_background=1) == pytest.approx(1.0 / np.sqrt(0.25))
    # perfect separation of 100 and 100: the best cut keeps all signal and the 10 highest background
    # events, the fewest allowed: 1 / sqrt(0.1), on a straight stretch of the curve
    labels, scores = np.repeat([0, 1], 100), np.arange(200.0)
    assert max_sic(labels, scores) == pytest.approx(1 / np.sqrt(0.1))
    cm = classification_metrics(np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 2, 1]], ("a", "b", "c"))
    assert cm["accuracy"] == 0.75 and cm["confusion"][2] == [0.0, 0.5, 0.5]



def test_sic_at_a_fixed_background_efficiency_on_hand_computed_values():
    # background 0..9, signal 100, 5.5 and 2.5: the highest background event alone (eps_b 0.1) lets
    # one signal in of three; the five highest (0.5) two of three
    labels = np.r_[np.zeros(10), np.ones(3)]
    scores = np.r_[np.arange(10.0), 100.0, 5.5, 2.5]
    assert sic_at(labels, scores, 0.1, min_background=1) == pytest.approx((1 / 3) / np.sqrt(0.1))
    assert sic_at(labels, scores, 0.5, min_background=1) == pytest.approx((2 / 3) / np.sqrt(0.5))
    # half way between no background (1/3 of the signal) and one event (still 1/3): 1/3, not more
    assert sic_at(labels, scores, 0.05, min_background=0) == pytest.approx((1 / 3) / np.sqrt(0.05))
    # a cut at 2.5 keeps the seven highest background events, as one at 3 does, and every signal
    assert sic_at(labels, scores, 0.7, min_background=1) == pytest.approx(1 / np.sqrt(0.7))
    # a tie of one background and one signal event is crossed on a straight line
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.0, 1.0, 1.0, 2.0])
    assert sic_at(labels, scores, 0.25, min_background=0) == pytest.approx(0.75 / np.sqrt(0.25))
    # fewer background events passing than min_background: no number
    assert np.isnan(sic_at(np.r_[np.zeros(10), 1], np.arange(11.0), 0.1, min_background=2))
    assert sic_at(np.r_[np.zeros(10), 1], np.arange(11.0), 0.1, min_background=1) == pytest.approx(1 / np.sqrt(0.1))
    with pytest.raises(ValueError, match="background_eff"):
        sic_at(labels, scores, 0.0)

@pytest.mark.parametrize("mode", ["frozen", "full", "scratch"])
def test_head_swap_keeps_or_replaces_the_backbone(backbone, data_files, trained, mode):
    from backbone.model import GPT
    from finetune.data import labels, read_sequences
    from finetune.train import fit

    bb_folder, _ = backbone
    pretrained = GPT.from_pretrained(bb_folder)
    vocab = pretrained.vocab
    model = Classifier.from_backbone(bb_folder, 2, HeadSection(), mode)
    start = backbone_tensors(model)
    same = all(torch.equal(start[k], v) for k, v in pretrained.state_dict().items())
    assert same == (mode != "scratch")  # full and frozen load the weights; scratch is a fresh init
    assert model.vocab == vocab and model.conditional == pretrained.conditional  # scratch too: same description
    seqs = read_sequences(data_files, trained[0], vocab, pretrained.conditional)
    y, classes = labels(seqs, "process", (), "test")
    assert classes == ("ttbar", "wjets") and (seqs.process_tokens == vocab.mask).all()  # the answer is hidden
    idx = np.arange(len(y))
    head_before = model.head[-1].weight.detach().clone()
    fit(model, seqs, y, idx[::4], seqs, y, idx[1::8], TrainSection(mode=mode, epochs=1, batch_size=64, lr=1e-3),
        "cpu", progress=False)
    after = backbone_tensors(model)
    changed = any(not torch.equal(start[k], after[k]) for k in start)
    assert changed == (mode != "frozen")  # frozen: bit-identical backbone
    assert not torch.equal(head_before, model.head[-1].weight)


@pytest.mark.parametrize("bucket", [50, 1])
def test_fine_tuning_batches_follow_the_length_bucket(backbone, data_files, trained, drawn, bucket):
    """train.length_bucket 50 (the default): the epoch's 625 events fit in one chunk, sorted by length, so
    the batches hold disjoint runs of lengths (and ttbar, longer than W+jets, apart from it); 1: each batch
    a uniform draw."""
    from finetune.data import labels, read_sequences
    from finetune.train import fit

    model = Classifier.from_backbone(backbone[0], 2, HeadSection(), "frozen")
    seqs = read_sequences(data_files, trained[0], model.vocab, model.conditional)
    y, _ = labels(seqs, "process", (), "test")
    idx = np.arange(len(y))
    fit(model, seqs, y, idx[::4], seqs, y, idx[1::8],
        TrainSection(mode="frozen", epochs=1, batch_size=64, length_bucket=bucket), "cpu", progress=False)
    spans = sorted((seqs.lengths[batch].min(), seqs.lengths[batch].max()) for _, batch in drawn)
    assert len(spans) == 10 and all(hi <= lo for (_, hi), (lo, _) in zip(spans, spans[1:])) == (bucket == 50)
    with pytest.raises(ValueError, match="length_bucket must be >= 1"):
        TrainSection(length_bucket=0)


def held_out(ttbar, wjets, folder):
    """The session's samples split into training files (the first 1600 ttbar and 400 W+jets events) and test
    files (the last 400 and 100), which neither training nor early stopping sees: (train, test) paths."""
    train, test = [str(folder / "ttbar.h5"), str(folder / "wjets.h5")], [str(folder / "ttbar_test.h5"),
                                                                         str(folder / "wjets_test.h5")]
    for events, n, path, test_path in zip((ttbar, wjets), (1600, 400), train, test):
        write_events(events[:n], path)
        write_events(events[n:], test_path)
    return train, test


def test_classify_cli_trains_saves_and_reloads(backbone, data_files, ttbar, wjets, tmp_path):
    from events.model import ObjectType as T

    bb, tok = backbone
    train, test = held_out(ttbar, wjets, tmp_path)
    out = tmp_path / "cls"
    proc = subprocess.run([sys.executable, "-m", "finetune.classify", "--backbone", str(bb), "--tokenizer", str(tok),
                           "--train", *train, "--test", *test, "--label", "process", "--mode", "full", "--out",
                           str(out), "--quiet", "--train.epochs=6", "--train.batch_size=64", "--train.device=cpu"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import json
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["auc"]) == {"ttbar", "wjets"} and metrics["events"] == 500  # the test files, not validation
    # ttbar vs W+jets (2t vs 0t) is easy: W+jets has ~1.4 jets, ttbar ~4.8. The simplest cut, the jet
    # multiplicity, on the same test events (W+jets, class 1, is the signal: fewer jets)
    n_jets = np.concatenate([e.count(T.JET) + e.count(T.BJET) for e in (ttbar[1600:], wjets[400:])])
    cut = binary_metrics(np.repeat([0, 1], [400, 100]), -n_jets)
    assert cut["auc"] > 0.9, cut
    # this tiny classifier matches the cut (seeds 0..5 give 0.90-0.98, the cut 0.94); a broken one cannot
    assert metrics["mean_auc"] > 0.9 and metrics["mean_auc"] > cut["auc"] - 0.05, (metrics["mean_auc"], cut["auc"])
    # ttbar efficiency at 30% W+jets efficiency: at most 20 of the 400 test events (a guess lets 120 pass);
    # 1 / rejection stays finite where no ttbar event passes
    assert 1 / metrics["rejection_at_30"] <= 0.05, metrics["rejection_at_30"]
    assert (out / "classification.png").is_file()
    model = Classifier.from_pretrained(out)
    assert model.classes == ("ttbar", "wjets") and model.pretrained_config["mode"] == "full"
    bad = subprocess.run([sys.executable, "-m", "finetune.classify", "--backbone", str(bb), "--tokenizer", str(tok),
                          "--train", data_files[0], "--out", str(tmp_path / "x"), "--train.device=cpu"], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "one class only (2t)" in bad.stderr  # ttbar alone: every event has two tops


def score(bb, tok, path, out, *extra):
    """The score CLI (its own tests; the others score through the Python API)."""
    return subprocess.run([sys.executable, "-m", "finetune.anomaly", "score", "--backbone", str(bb), "--tokenizer",
                           str(tok), "--input", str(path), "--out", str(out), "--device", "cpu", "--quiet", *extra],
                          cwd=REPO, capture_output=True, text=True)


def scorer(backbone, methods, **options):
    from finetune.scorer import AnomalyScorer

    bb, tok = backbone
    return AnomalyScorer.from_pretrained(bb, tok, methods, device="cpu", **options)


def classify(bb, tok, files, out, mode, epochs, label="process", test=(), overrides=()):
    """`python -m finetune.classify` with its default config (and `overrides`), through the Python API; its
    metrics, on the `test` files (default: the validation split early stopping chose from)."""
    from common.config import load_config
    from finetune.classify import prepare, train_and_test
    from finetune.config import ClassifyConfig
    from tokenizer.tokenizer import Tokenizer

    cfg = load_config(ClassifyConfig, "configs/finetune/classify.yaml",
                      [f"backbone={bb}", f"tokenizer={tok}", f"data.train={[str(f) for f in files]}",
                       f"data.test={[str(f) for f in test]}", f"data.label={label}", f"train.mode={mode}",
                       f"train.epochs={epochs}", "train.device=cpu", f"out={out}", *overrides])
    return train_and_test(cfg, prepare(cfg, Tokenizer.from_pretrained(tok)), progress=False)


def test_scores_one_per_event_in_order_on_a_nanoaod_file(backbone, ttbar, tmp_path):
    from finetune.score_store import read_scores

    bb, tok = backbone
    events = ttbar[:300]
    events.info["event"] = np.arange(300)[::-1] * 7 + 1000  # ids not in sorted order
    write_events(events, tmp_path / "data.root", "nanoaod")
    proc = score(bb, tok, tmp_path / "data.root", tmp_path / "s.csv", "--method", "nll", "masked", "--step-size", "128")
    assert proc.returncode == 0, proc.stderr
    assert "scored 300 events (nll, nll_per_token, masked, masked_surprise) into" in proc.stdout
    s = read_scores(tmp_path / "s.csv")
    assert s["event"].astype(int).tolist() == events.info["event"].tolist()  # every event, in input order
    for c in ("nll", "nll_per_token", "masked"):
        assert np.isfinite(s[c]).all() and np.std(s[c]) > 0
    # the same input gives the same scores whatever the chunk and batch sizes, and the flagged events
    # are the ones beyond the caps
    scorer(backbone, ["nll", "masked"], batch_size=37).score_file(tmp_path / "data.root", tmp_path / "again.h5",
                                                                  step_size=100)
    again = read_scores(tmp_path / "again.h5")
    np.testing.assert_allclose(again["masked"], s["masked"], rtol=1e-5)
    np.testing.assert_allclose(again["nll"], s["nll"], rtol=1e-5)
    assert ((again["flag"] & 1) > 0).tolist() == (events.info["n_truncated"] > 0).tolist()
    assert set(s["process"]) == set(again["process"]) == {"ttbar"}  # the process travels with the scores


def test_hybrid_backbone_classifies_and_scores_from_event_files(hybrid_backbone, data_files, ttbar, wjets,
                                                                 tmp_path):
    from events.io import read_events

    bb, tok = hybrid_backbone
    train, test = held_out(ttbar, wjets, tmp_path)
    for mode in ("frozen", "scratch"):
        metrics = classify(bb, tok, train, tmp_path / mode, mode, 2, test=test, overrides=["train.batch_size=64"])
        # well above chance (0.5), not a precise value: a tiny backbone trained 300 steps moves by about 0.05
        # with float rounding alone (0.86 before, 0.785 after summing the same density loss in another order)
        assert metrics["events"] == 500 and metrics["mean_auc"] > 0.7, (mode, metrics["mean_auc"])
    model = Classifier.from_pretrained(tmp_path / "scratch")
    assert model.backbone.code_features.abs().sum() > 0  # scratch re-initializes weights, not the code table
    s = scorer(hybrid_backbone, ["nll", "masked"]).score(read_events(data_files[1]))
    assert len(s["nll"]) == 500 and np.isfinite(s["nll"]).all() and np.isfinite(s["masked"]).all()


def test_evaluate_splits_mixed_scores_by_process(backbone, data_files, tmp_path):
    outs = [tmp_path / "ttbar.h5", tmp_path / "wjets.csv"]
    nll = scorer(backbone, ["nll"])
    for path, out in zip(data_files, outs):
        nll.score_file(path, out)
    proc = subprocess.run([sys.executable, "-m", "finetune.anomaly", "evaluate", "--scores", *map(str, outs),
                           "--signal-process", "wjets", "--out", str(tmp_path / "ev")], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "2000 background and 500 signal events" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "finetune.anomaly", "evaluate", "--scores", str(outs[0]),
                          "--signal-process", "zprime", "--out", str(tmp_path / "ev")], cwd=REPO, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "['ttbar']" in bad.stderr


def test_planted_signal_scores_higher_than_background(backbone, ttbar):
    """Signal: background events with every jet b-tagged (ttbar has about two b-jets)."""
    import awkward as ak

    from events.model import Events, ObjectType
    from finetune.anomaly import compare

    bkg = ttbar[-200:]
    o = bkg.objects
    t = ak.where(o["type"] == int(ObjectType.JET), int(ObjectType.BJET), o["type"])
    sig = Events(ak.with_field(o, ak.values_astype(t, np.int8), "type"), bkg.info, bkg.process_names)
    token_scores = scorer(backbone, ["nll", "masked", "quantization"], n_masks=4)
    b, s = token_scores.score(bkg), token_scores.score(sig)
    for c in ("nll_per_token", "masked"):
        labels = np.r_[np.zeros(len(b[c])), np.ones(len(s[c]))]
        assert binary_metrics(labels, np.r_[b[c], s[c]])["auc"] > 0.8, c
    # jets moved beyond the acceptance (|eta| + 2): ordinary tokens, but large tokenizer residuals
    jet = (o["type"] == int(ObjectType.JET)) | (o["type"] == int(ObjectType.BJET))
    eta = ak.where(jet, np.sign(o.eta) * (abs(o.eta) + 2.0), o.eta)
    fwd = scorer(backbone, ["quantization"]).score(Events(ak.with_field(o, eta, "eta"), bkg.info, bkg.process_names))
    metrics, _ = compare(b, fwd, ["quantization"])
    assert metrics["quantization"]["auc"] > 0.9


def test_entropy_method_is_the_entropy_of_the_classifier_probabilities(backbone, ttbar, wjets, tmp_path):
    """`entropy` scores each event by -sum p ln p of the classifier's class probabilities, by hand here: the
    probabilities of a saved classifier on the same events read as finetune.classify reads them."""
    from events.model import Events
    from finetune.data import read_sequences
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    model = Classifier.from_backbone(bb, 3, HeadSection(dropout=0.0), "frozen", seed=3)
    with torch.no_grad():  # an untrained head gives about 1/3 each: spread the probabilities
        model.head[-1].weight.mul_(5)
    model.save_pretrained(tmp_path / "clf")
    events = Events.concatenate([ttbar[:20], wjets[:20]])
    write_events(events, tmp_path / "events.h5")
    scores = scorer(backbone, ["nll"], classifier=tmp_path / "clf").score(events)
    assert list(scores)[-3:] == ["nll", "nll_per_token", "entropy"]  # a classifier adds the method
    seqs = read_sequences([str(tmp_path / "events.h5")], Tokenizer.from_pretrained(tok), model.vocab,
                          model.conditional)
    with torch.no_grad():
        p = torch.softmax(model.eval()(*seqs.tensors(np.arange(40))).double(), -1).numpy()
    expected = -(p * np.log(p)).sum(1)
    assert np.ptp(expected) > 0.01  # the events differ: the comparison below is of per-event values
    np.testing.assert_allclose(scores["entropy"], expected, rtol=1e-4, atol=1e-6)


def test_head_method_scores_each_event_by_heads_that_never_trained_on_it(backbone, ttbar, wjets, monkeypatch):
    """Weak supervision: heads learn to tell a data sample (ttbar and W+jets) from a W+jets reference. Each of
    the first `head_events` data events is scored by the one head whose training and early-stopping events
    left it out; later events by the mean of the heads; and the scores tell the ttbar in the data from the
    W+jets, though no label said which was which."""
    import finetune.scorer as scorer_module
    import finetune.train
    from events.model import Events
    from finetune.train import predict

    fits, calls = [], []
    real_fit, real_head_scores = finetune.train.fit, scorer_module.head_scores

    def recording_fit(model, seqs, y, train_idx, val_seqs, y_val, val_idx, *args, **kwargs):
        fits.append((model, set(train_idx.tolist()) | set(val_idx.tolist())))
        return real_fit(model, seqs, y, train_idx, val_seqs, y_val, val_idx, *args, **kwargs)

    def recording_head_scores(models, fold_of, seqs, *args, **kwargs):
        calls.append((list(models), fold_of.copy(), seqs))
        return real_head_scores(models, fold_of, seqs, *args, **kwargs)

    monkeypatch.setattr(finetune.train, "fit", recording_fit)
    monkeypatch.setattr(scorer_module, "head_scores", recording_head_scores)
    # data: 100 ttbar, 100 W+jets (the heads' sample), then 50 of each that no head sees
    data = Events.concatenate([ttbar[:100], wjets[200:300], ttbar[100:150], wjets[300:350]])
    is_ttbar = np.repeat([1, 0, 1, 0], [100, 100, 50, 50])
    head = scorer(backbone, ["nll"], head_events=200, head_epochs=40)
    scores = head.fit(wjets[:200]).score(data)["head"]
    (models, fold_of, seqs), = calls
    assert [m for m, _ in fits] == models and len(models) == 2  # one head per fold
    n_ref = 200  # the heads train on reference + sample: sample event i is row n_ref + i
    assert (fold_of[:200] >= 0).all() and (fold_of[200:] == -1).all()
    for k, (_, seen) in enumerate(fits):
        mine = np.flatnonzero(fold_of == k)
        assert len(mine) > 50 and not seen & set((n_ref + mine).tolist()), k  # never trained on its own events
        assert len(seen) > 150 and min(seen) < n_ref <= max(seen)  # the rest of the sample, and the reference
    # each score is that event's own head's P(data), or the heads' mean for the later events
    probs = np.stack([predict(m, seqs)[:, 1] for m in models])
    expected = np.where(fold_of >= 0, probs[np.maximum(fold_of, 0), np.arange(len(data))], probs.mean(0))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    for part in (slice(0, 200), slice(200, 300)):  # scored out of fold, and by no head that saw them
        auc = binary_metrics(is_ttbar[part], scores[part])["auc"]
        assert auc > 0.8, (part, auc)


def test_unrepresentable_events_are_flagged_not_dropped(trained, ttbar):
    import awkward as ak

    from events.model import Events, ObjectType
    from tokenizer.tokenizer import FLAG_NO_OBJECTS, FLAG_UNKNOWN_TYPES

    tok = trained[0]
    events = ttbar[:3]
    objects = ak.to_list(events.objects)
    objects[1][0]["type"] = int(ObjectType.CONSTITUENT)  # a type this event-mode tokenizer has no codes for
    objects[2] = []
    odd = Events(ak.Array(objects), events.info, events.process_names)
    kept, flags = tok.representable(odd)
    assert len(kept) == 3 and flags[0] & FLAG_UNKNOWN_TYPES == 0
    assert flags[1] & FLAG_UNKNOWN_TYPES and len(kept.objects[1]) == len(objects[1]) - 1
    assert flags[2] & FLAG_NO_OBJECTS


def test_score_file_refuses_collapsed_and_non_finite_scores(tmp_path):
    from finetune.score_store import ScoreError, ScoreWriter

    ids = {"run": np.ones(3, int), "lumi": np.zeros(3, int), "event": np.arange(3)}  # no process: unknown
    with pytest.raises(ScoreError, match="collapsed"):
        with ScoreWriter(tmp_path / "c.h5", ("nll",)) as w:
            w.write(ids, np.zeros(3, int), {"nll": np.full(3, 2.0)})
    with pytest.raises(ScoreError, match="nan for event 1"):
        with ScoreWriter(tmp_path / "n.csv", ("nll",)) as w:
            w.write(ids, np.zeros(3, int), {"nll": np.array([1.0, np.nan, 2.0])})
    with pytest.raises(EventDataError, match=".h5, .hdf5 or .csv"):
        ScoreWriter(tmp_path / "scores.txt", ("nll",))
    assert list(tmp_path.iterdir()) == []  # nothing that looks like a result, no temporary left
    with ScoreWriter(tmp_path / "ok.csv", ("nll",)) as w:  # NaN allowed where the event is flagged
        w.write(ids, np.array([0, 4, 0]), {"nll": np.array([1.0, np.nan, 2.0])})
    assert (tmp_path / "ok.csv").is_file()


def test_constituent_mode_top_vs_qcd_end_to_end(top_jets, qcd_jets, tmp_path):
    """Constituent tokens -> tiny backbone -> binary classifier: on held-out jets, top jets are told from QCD
    jets about as well as by the jet-mass cut on the same jets (the classifier sees the constituents the
    mass is made of; a broken head swap, or an untrained one, stays far below)."""
    from backbone.config import PretrainConfig
    from backbone.pretrain import run as pretrain
    from common.config import from_dict, load_config
    from events.compare import constituent_jet_mass
    from tokenizer.config import TokenizerTrainConfig
    from tokenizer.store import TokenWriter
    from tokenizer.tokenize import tokenize_into
    from tokenizer.tokenizer import Tokenizer
    from tokenizer.train import run as train_tokenizer
    from tests.conftest import SMALL

    # the tokenizer, the backbone and the classifier learn from the first 200 jets of each kind; the last
    # 100 of each are the test jets, which none of them saw (nor early stopping)
    files = [str(tmp_path / "top.h5"), str(tmp_path / "qcd.h5")]
    test_files = [str(tmp_path / "top_test.h5"), str(tmp_path / "qcd_test.h5")]
    test_jets = [top_jets[200:], qcd_jets[200:]]
    for jets, path, test, test_path in zip((top_jets, qcd_jets), files, test_jets, test_files):
        write_events(jets[:200], path)
        write_events(test, test_path)
    cfg = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/constituent.yaml",
                      SMALL + [f"data.files={files}", f"out={tmp_path / 'tok'}"])
    train_tokenizer(cfg, progress=False)
    tok = tmp_path / "tok"
    tokenizer = Tokenizer.from_pretrained(tok)
    with TokenWriter.for_tokenizer(tmp_path / "tokens.h5", tokenizer, tok, features=True) as writer:
        for path in files:
            tokenize_into(writer, tokenizer, path, features=True)
    # the density head in constituent mode (log pt, deta, dphi, all linear) trains to a finite loss
    head = pretrain(from_dict(PretrainConfig, {
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "density_components": 2},
        "data": {"train": str(tmp_path / "tokens.h5")}, "out": str(tmp_path / "bb_head"),
        "train": {"batch_size": 32, "max_steps": 4, "eval_every": 4, "device": "cpu"}}), progress=False)
    assert np.isfinite(head["val_loss_density"]) and head["history"][-1]["train_loss_density"] > -50
    pretrain(from_dict(PretrainConfig, {"model": {"n_layer": 2, "n_head": 2, "n_embd": 32},
                                        "data": {"train": str(tmp_path / "tokens.h5")},
                                        "train": {"batch_size": 32, "max_steps": 40, "eval_every": 40, "lr": 0.003,
                                                  "warmup_steps": 5, "device": "cpu"}, "out": str(tmp_path / "bb")}),
             progress=False)
    import json
    assert json.loads((tmp_path / "bb" / "config.json").read_text())["gpt"]["block_size"] == 130  # 128 + BOS, EOS
    metrics = classify(tmp_path / "bb", tok, files, tmp_path / "cls", "full", 10, test=test_files,
                       overrides=["train.batch_size=32"])
    assert metrics["classes"] == ["top_jets", "qcd_jets"] and metrics["events"] == 200
    # the jet-mass cut on the same test jets; class 1 (QCD) is the signal of the binary metrics: light jets
    mass = np.concatenate([constituent_jet_mass(jets) for jets in test_jets])
    cut = binary_metrics(np.repeat([0, 1], 100), -mass)
    assert cut["auc"] > 0.85, cut  # the physics of the sample: top jets are heavy
    assert metrics["mean_auc"] > 0.9 and metrics["mean_auc"] > cut["auc"] - 0.05, (metrics["mean_auc"], cut["auc"])
    # background (top) efficiency at 30% QCD efficiency: at most 5 of the 100 top jets (a guess passes 30);
    # finite where the rejection, 1 / efficiency, is infinite (no top jet passes)
    assert 1 / metrics["rejection_at_30"] <= 0.05, metrics["rejection_at_30"]


def tiny_classifier(pooling: str, causal: bool = False) -> Classifier:
    """A randomly initialized 2-layer backbone (8 codes) with a 3-class head; eval mode, no dropout."""
    from backbone.config import GPTConfig
    from backbone.model import GPT
    from backbone.vocab import Vocab

    torch.manual_seed(0)
    vocab = Vocab(8)
    gpt = GPT(GPTConfig(vocab_size=vocab.size, block_size=12, n_layer=2, n_head=2, n_embd=16))
    gpt.vocab = vocab
    return Classifier(gpt, 3, HeadSection(pooling=pooling, hidden=8, dropout=0.0, causal=causal)).eval()


def tiny_batch(vocab) -> tuple[torch.Tensor, list[int]]:
    """Three right-padded sequences BOS codes EOS PAD... of lengths 9, 5 and 3; (ids, lengths)."""
    rows = [[1, 2, 3, 4, 5, 6, 7], [0, 5, 3], [6]]
    seqs = [[vocab.bos, *r, vocab.eos] for r in rows]
    width = max(map(len, seqs))
    return torch.tensor([s + [vocab.pad] * (width - len(s)) for s in seqs]), [len(s) for s in seqs]


@pytest.mark.parametrize("pooling", ["mean", "eos", "attention"])
@pytest.mark.parametrize("causal", [False, True])
def test_pooling_reads_the_backbone_states_as_documented(pooling, causal):
    """head.pooling mean: the mean of the backbone's states over the real tokens; eos: the state at the end
    token; attention: their softmax(score)-weighted sum. Padding changes nothing: each sequence alone,
    unpadded, gives the same logits. head.causal: the states are those of a causal pass."""
    model = tiny_classifier(pooling, causal)
    vocab = model.vocab
    idx, lengths = tiny_batch(vocab)
    with torch.no_grad():
        logits = model(idx)
        for row, n in enumerate(lengths):
            alone = idx[row:row + 1, :n]
            assert alone[0, -1] == vocab.eos and (idx[row, n:] == vocab.pad).all()
            h = model.backbone.hidden_states(alone, causal=causal)[0]  # (n, C), no padding at all
            pooled = {"mean": lambda: h.mean(0), "eos": lambda: h[-1],
                      "attention": lambda: torch.softmax(model.pool.score(h)[:, 0], 0) @ h}[pooling]()
            torch.testing.assert_close(logits[row], model.head(pooled), rtol=1e-5, atol=1e-6)
        other = tiny_classifier(pooling, not causal)  # the same weights, the other attention
        assert not torch.allclose(other(idx), logits, atol=1e-4)


def test_causal_head_states_never_see_later_tokens():
    """With head.causal, changing the token at position 4 leaves the states before it as they were; with
    bidirectional attention every state changes."""
    idx, _ = tiny_batch(tiny_classifier("mean").vocab)
    changed = idx.clone()
    changed[0, 4] = 0 if idx[0, 4] != 0 else 1
    for causal in (True, False):
        model = tiny_classifier("mean", causal)
        with torch.no_grad():
            before, keep = model.states(idx)
            after, _ = model.states(changed)
        assert keep[0].all() and keep[2].tolist() == [True] * 3 + [False] * 6
        earlier_same = torch.allclose(before[0, :4], after[0, :4], atol=1e-6)
        assert earlier_same == causal
        assert not torch.allclose(before[0, 4:], after[0, 4:], atol=1e-6)
        torch.testing.assert_close(before[1:], after[1:])  # other events are not touched
