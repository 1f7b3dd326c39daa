"""benchmarks/: jet substructure by hand, baseline.py end to end, and the README tables from the results."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


def jets():
    """Two jets: hard constituents at deta = +-0.2 plus a soft one at dphi = 0.3; and a 2-constituent jet."""
    from events.model import Events, ObjectType, make_objects

    objects = make_objects([3, 2], type=ObjectType.CONSTITUENT, pt=[100, 100, 1, 50, 50],
                           eta=[0.2, -0.2, 0.0, 0.1, -0.1], phi=[0, 0, 0.3, 0, 0])
    return Events(objects, {})


def test_n_subjettiness_by_hand():
    from baseline_data import n_subjettiness

    tau = n_subjettiness(jets())
    # one axis: the constituent sum, at eta 0 and phi = atan2(sin 0.3, 200 + cos 0.3)
    axis_phi = np.arctan2(np.sin(0.3), 200 + np.cos(0.3))
    tau1 = (2 * 100 * np.hypot(0.2, axis_phi) + 1 * (0.3 - axis_phi)) / (201 * 0.8)
    assert tau[0, 0] == pytest.approx(tau1, rel=1e-3)
    assert 0 < tau[0, 1] < 0.01  # two axes: the soft constituent merges into one hard one
    assert tau[0, 2] == pytest.approx(0, abs=1e-6)  # three axes: one per constituent
    assert np.isnan(tau[1]).all()  # fewer constituents than axes


def test_jet_features_by_hand():
    from baseline_data import jet_features

    f = jet_features(jets())
    assert f["constituents"].tolist() == [3, 2]
    assert f["pt"] == pytest.approx([201, 100])
    # two massless 50 GeV constituents 0.2 apart in eta: m^2 = 2 pt pt (cosh 0.2 - 1)
    assert f["mass"][1] == pytest.approx(np.sqrt(2 * 50 * 50 * (np.cosh(0.2) - 1)), rel=1e-4)
    assert f["ptD"][1] == pytest.approx(np.sqrt(2 * 50 ** 2) / 100)
    assert f["girth"][1] == pytest.approx(0.1)
    assert f["leading fraction"][0] == pytest.approx(100 / 201)


def run_baseline(*args, cwd: Path) -> dict:
    out = subprocess.run([sys.executable, str(BENCHMARKS / "baseline.py"), "--out", str(cwd), "--tag", "test",
                          "--seeds", "0", "--max-steps", "4", "--eval-every", "2", "--batch-size", "32", *args],
                         capture_output=True, text=True, cwd=cwd, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def held_out(samples, n: int, folder: Path) -> tuple[list[str], list]:
    """The last `n` events of each sample as files (the runs below train on the first events of the
    session's files): (paths, events)."""
    from events.io import write_events

    paths, events = [str(folder / f"{e.process_names[0]}_test.h5") for e in samples], [e[-n:] for e in samples]
    for e, path in zip(events, paths):
        write_events(e, path)
    return paths, events


def n_jets(events) -> np.ndarray:
    from events.model import ObjectType as T

    return events.count(T.JET) + events.count(T.BJET)


def test_masked_pretraining_then_ntop(data_files, ttbar, wjets, tmp_path):
    """ttbar vs W+jets (2t vs 0t) on held-out events: W+jets has ~1.4 jets, ttbar ~4.8, and the classifier,
    which sees every object, beats the jet-multiplicity cut on the same events (seeds 0..3: AUC 0.98-0.99,
    the cut 0.95)."""
    from finetune.metrics import binary_metrics

    test_files, test_events = held_out((ttbar, wjets), 150, tmp_path)
    run_baseline("--task", "ntop", "--model", "transformer", "--train", *data_files, "--test", *test_files,
                 "--sizes", "60", "--max-events-per-file", "150", "--pretrain", *data_files,
                 "--pretrain-events-per-file", "100", "--pretrain-steps", "100", "--pretrain-batch-size", "16",
                 "--max-steps", "20", "--eval-every", "5", cwd=tmp_path)
    r = json.loads((tmp_path / "baseline_transformer_pretrained_test.json").read_text())
    assert r["classes"] == ["0t", "1t", "2t"]  # W+jets is 0t, ttbar 2t; no 1t event but the class exists
    (row,) = r["rows"]
    assert row["n_train"] == 60 and r["test_events"] == 300 and set(row["auc"]) == {"0t", "2t"}
    is_ttbar = np.repeat([1, 0], 150)
    cut = binary_metrics(is_ttbar, np.concatenate([n_jets(e) for e in test_events]))["auc"]
    assert cut > 0.9, cut
    for c in ("0t", "2t"):
        assert row["auc"][c] > cut, (c, row["auc"][c], cut)
    losses = r["pretraining"]["loss_every_100"]
    assert len(losses) == 1 and 0 < losses[0] < 2  # standardized features: the regression starts near 1


def test_anomaly_entropy(data_files, ttbar, wjets, tmp_path, monkeypatch):
    """The entropy score of the SM-process classifier, recomputed by hand from the probabilities the run's
    classifier gave each background and signal event; a signal made of the background events themselves
    scores exactly as the background (AUC 1/2, rejection at 30% = 1/0.3)."""
    import awkward as ak
    import baseline
    import torch
    from sklearn.metrics import roc_auc_score

    predicted = []
    real_predict = baseline.Network.predict

    def recording_predict(self, model, data):
        probs = real_predict(self, model, data)
        predicted.append(((~data[3]).sum(1).numpy(), probs))  # (objects per event, probabilities)
        return probs

    monkeypatch.setattr(baseline.Network, "predict", recording_predict)
    (tt_test, wj_test), test_events = held_out((ttbar, wjets), 150, tmp_path)
    threads = torch.get_num_threads()
    try:  # in this process, to see what the classifier gave each event
        baseline.main(["--out", str(tmp_path), "--tag", "test", "--seeds", "0", "--max-steps", "4", "--eval-every",
                       "2", "--batch-size", "32", "--task", "anomaly", "--model", "transformer", "--train", *data_files,
                       "--test", wj_test, "--signal", tt_test, wj_test, "--sizes", "0", "--max-events-per-file", "150"])
    finally:
        torch.set_num_threads(threads)  # as the other tests expect it
    r = json.loads((tmp_path / "baseline_anomaly_transformer_test.json").read_text())
    assert r["classes"] == ["ttbar", "wjets"] and r["background_files"] == [wj_test]
    ttbar_row, same_row = r["rows"]
    assert [row["signal"] for row in r["rows"]] == [tt_test, wj_test]
    assert all(row["background_events"] == 150 and row["signal_events"] == 150 for row in r["rows"])
    # the background first, then each signal file: the events of each, by their object counts
    (bkg_objects, background), (sig_objects, signal), (_, same) = predicted
    assert bkg_objects.tolist() == ak.num(test_events[1].objects).tolist()
    assert sig_objects.tolist() == ak.num(test_events[0].objects).tolist()
    assert background.shape == signal.shape == (150, 2)
    np.testing.assert_allclose(background.sum(1), 1, rtol=1e-5)
    h = [-(p * np.log(p)).sum(1) for p in (background, signal)]
    assert np.ptp(h[0]) > 0  # not one score for all
    assert ttbar_row["auc"] == pytest.approx(roc_auc_score(np.repeat([0, 1], 150), np.concatenate(h)), abs=1e-6)
    np.testing.assert_array_equal(same, background)
    assert same_row["auc"] == pytest.approx(0.5, abs=1e-12) and same_row["rejection_at_30"] == pytest.approx(1 / 0.3)


@pytest.mark.parametrize("model", ["gbdt", "part"])
def test_top_vs_qcd(model, top_jets, qcd_jets, tmp_path):
    """Trained on 100 jets of each kind, tested on 100 others. The GBDT, whose features include the jet mass,
    does at least about as well as the jet-mass cut on the same test jets; the Particle Transformer is not
    trained enough in 4 steps to tell: its run is checked for what must hold (the test events, one
    probability per class)."""
    pytest.importorskip({"gbdt": "xgboost", "part": "weaver"}[model])
    from events.compare import constituent_jet_mass
    from events.io import write_events
    from finetune.metrics import binary_metrics

    files = [str(tmp_path / "top_jets.h5"), str(tmp_path / "qcd_jets.h5")]
    write_events(top_jets[:100], files[0])
    write_events(qcd_jets[:100], files[1])
    test_files, (top_test, qcd_test) = held_out((top_jets, qcd_jets), 100, tmp_path)
    run_baseline("--task", "jets", "--model", model, "--train", *files, "--test", *test_files, "--sizes", "100",
                 cwd=tmp_path)
    r = json.loads((tmp_path / f"baseline_jets_{model}_test.json").read_text())
    (row,) = r["rows"]
    assert row["n_train"] == 100 and r["test_events"] == 200 and r["classes"] == ["qcd_jets", "top_jets"]
    # two classes: the one-vs-rest AUCs of the two probability columns agree where the columns sum to 1
    assert row["auc"]["top_jets"] == pytest.approx(row["auc"]["qcd_jets"], abs=1e-9)
    if model == "gbdt":
        # class 1, the top jets, is the signal: heavy
        mass = np.concatenate([constituent_jet_mass(qcd_test), constituent_jet_mass(top_test)])
        cut = binary_metrics(np.repeat([0, 1], 100), mass)
        assert cut["auc"] > 0.85, cut
        assert row["mean_auc"] > 0.9 and row["mean_auc"] > cut["auc"] - 0.03, (row["mean_auc"], cut["auc"])
        # QCD efficiency at 30% top efficiency: at most 5 of the 100 (a guess lets 30 pass; the mass cut 3);
        # finite where no QCD jet passes and the rejection is infinite
        assert 1 / row["rejection_at_30"] <= 0.05, (row["rejection_at_30"], cut["rejection_at_30"])


@pytest.mark.parametrize("shared", [True, False])
def test_masked_pretraining_reads_only_the_visible_objects(shared):
    """With every object of an event carrying the event's feature vector, a hidden object's features can be
    read off the others and the regression loss falls far below 1 (unit-variance features); with independent
    objects nothing visible tells, and the loss stays near 1 unless the hidden features leak."""
    import torch

    from baseline_models import ObjectTransformer, masked_pretrain

    torch.manual_seed(0)
    n, t, f = 512, 5, 3
    x = torch.randn(n, 1, f).expand(n, t, f).contiguous() if shared else torch.randn(n, t, f)
    pad = torch.zeros(n, t, dtype=torch.bool)
    pad[::2, -1] = True  # padding is never a target
    data = (x, torch.zeros(n, t, dtype=torch.long), torch.zeros(n, t, dtype=torch.long), pad, torch.zeros(n, t, 4))
    model = ObjectTransformer(f, 1, width=32, layers=2, heads=2, ff=64, dropout=0.0)
    losses = masked_pretrain(model, data, steps=300, batch_size=64, seed=0, lr=3e-3, warmup=20, progress=False)
    assert len(losses) == 3
    assert losses[-1] < 0.05 if shared else losses[-1] > 0.8


@pytest.mark.parametrize("document", ["docs/results.md", "README.md"])
def test_result_tables_are_rendered_from_the_results(document):
    """Every marked table of docs/results.md and the README is what benchmarks/report.py makes of
    benchmarks/results/: no number typed by hand, none left stale."""
    import report

    text = (BENCHMARKS.parent / document).read_text()
    assert report.rendered(text, report.DOCUMENTS[document], document) == text, \
        f"run `python benchmarks/report.py` and commit {document}"
