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


def test_masked_pretraining_then_ntop(data_files, tmp_path):
    run_baseline("--task", "ntop", "--model", "transformer", "--train", *data_files, "--test", *data_files,
                 "--sizes", "60", "--max-events-per-file", "150", "--pretrain", *data_files,
                 "--pretrain-events-per-file", "100", "--pretrain-steps", "100", "--pretrain-batch-size", "16",
                 cwd=tmp_path)
    r = json.loads((tmp_path / "baseline_transformer_pretrained_test.json").read_text())
    assert r["classes"] == ["0t", "1t", "2t"]  # W+jets is 0t, ttbar 2t; no 1t event but the class exists
    assert [row["n_train"] for row in r["rows"]] == [60]
    assert 0 <= r["rows"][0]["mean_auc"] <= 1
    losses = r["pretraining"]["loss_every_100"]
    assert len(losses) == 1 and 0 < losses[0] < 2  # standardized features: the regression starts near 1


def test_anomaly_entropy(data_files, tmp_path):
    run_baseline("--task", "anomaly", "--model", "transformer", "--train", *data_files, "--test", data_files[1],
                 "--signal", data_files[0], "--sizes", "0", "--max-events-per-file", "150", cwd=tmp_path)
    r = json.loads((tmp_path / "baseline_anomaly_transformer_test.json").read_text())
    assert r["classes"] == ["ttbar", "wjets"]
    (row,) = r["rows"]
    assert row["background_events"] == 150 and row["signal_events"] == 150 and 0 <= row["auc"] <= 1


@pytest.mark.parametrize("model", ["gbdt", "part"])
def test_top_vs_qcd(model, top_jets, qcd_jets, tmp_path):
    pytest.importorskip({"gbdt": "xgboost", "part": "weaver"}[model])
    from events.io import write_events

    files = [str(tmp_path / "top_jets.h5"), str(tmp_path / "qcd_jets.h5")]
    write_events(top_jets[:100], files[0])
    write_events(qcd_jets[:100], files[1])
    run_baseline("--task", "jets", "--model", model, "--train", *files, "--test", *files, "--sizes", "100",
                 cwd=tmp_path)
    (row,) = json.loads((tmp_path / f"baseline_jets_{model}_test.json").read_text())["rows"]
    assert row["n_train"] == 100 and 0 <= row["mean_auc"] <= 1 and row["rejection_at_30"] >= 1


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
