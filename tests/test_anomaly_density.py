"""The density scores (the default anomaly scores of a backbone with a density head): objects beyond the
tokenizer's range rank high, the scores do not depend on how the file is cut into batches, the head
beats the context-free per-code reference, and sampling draws features from it."""
from __future__ import annotations

import json
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest

from events.io import write_events
from events.model import ObjectType as T
from finetune.metrics import binary_metrics
from benchmarks.plant_tails import planted
from tests.conftest import REPO, _generate


@pytest.fixture(scope="module")
def fresh_ttbar():
    """ttbar events the backbone never saw."""
    return _generate("ttbar", 300, seed=99, block_size=150)


def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True)


def score(backbone, path, out, *extra):
    bb, tok = backbone
    return run("-m", "finetune.anomaly", "score", "--backbone", bb, "--tokenizer", tok, "--input", path, "--out",
               out, "--device", "cpu", "--quiet", *extra)


#: the least AUC of the default score (density_nll) against the background, and its least lead over the
#: token NLL (0.5 for the first two on this fixture, 0.7 for the muon: an extra token); measured 0.79,
#: 0.95, 0.95 (surprise: 0.81, 1.00, 0.97). A jet at
#: |eta| 4 or a 900 GeV muon lies far outside what the model saw; a leading jet at 5x its pt is an
#: improbable ttbar jet (500-800 GeV), which this small, coarse fixture (256 codes, 300 steps) resolves
#: less sharply than the real run's model does
LEAST_AUC = {"leading jet pt x5": (0.72, 0.15), "leading jet at |eta| 4": (0.9, 0.35),
             "extra 900 GeV muon": (0.9, 0.15)}
#: the same for the surprise, which singles out one extraordinary object more sharply
LEAST_SURPRISE_AUC = {"leading jet pt x5": 0.75, "leading jet at |eta| 4": 0.97, "extra 900 GeV muon": 0.95}


def test_density_is_the_default_and_ranks_objects_beyond_the_range_high(backbone, fresh_ttbar, tmp_path):
    from finetune.score_store import read_object_scores, read_scores

    bkg = fresh_ttbar
    write_events(bkg, tmp_path / "bkg.h5")
    proc = score(backbone, tmp_path / "bkg.h5", tmp_path / "bkg_scores.csv", "--n-masks", "1")
    assert proc.returncode == 0, proc.stderr
    header = (tmp_path / "bkg_scores.csv").read_text().splitlines()[0].split(",")
    assert header[5:8] == ["worst_object", "density_nll", "surprise"]  # after run, lumi, event, process, flag
    b = read_scores(tmp_path / "bkg_scores.csv")
    assert np.all(b["surprise"] >= 0) and np.isfinite(b["density_nll"]).all()
    for name, events in planted(bkg).items():
        path = tmp_path / f"{name.replace(' ', '_')}.h5"
        write_events(events, path)
        proc = score(backbone, path, path.with_suffix(".scores.h5"), "--method", "density", "nll")
        assert proc.returncode == 0, proc.stderr
        s = read_scores(path.with_suffix(".scores.h5"))
        auc = {c: binary_metrics(np.r_[np.zeros(len(b[c])), np.ones(len(s[c]))], np.r_[b[c], s[c]])["auc"]
               for c in ("density_nll", "surprise", "nll")}
        least, lead = LEAST_AUC[name]
        assert auc["density_nll"] > least and auc["density_nll"] > auc["nll"] + lead, (name, auc)
        assert auc["surprise"] > LEAST_SURPRISE_AUC[name], (name, auc)
        # the planted object is the one the score blames
        objects = read_object_scores(path.with_suffix(".scores.h5"))["surprise"]
        assert ak.all(ak.num(objects) == ak.num(events.objects))
        if name == "extra 900 GeV muon":
            muon_index = ak.to_numpy(ak.argmax(events.objects.pt * (events.objects["type"] == int(T.MUON)), axis=1))
            assert (s["worst_object"] == muon_index).mean() > 0.9


def test_the_planted_muon_leads_the_leptons_in_canonical_order():
    from events.physics import leading_pt
    from tests.test_training import synthetic_events

    events = synthetic_events(200)
    muon = planted(events)["extra 900 GeV muon"]
    o = muon.objects
    assert ak.all(ak.num(o) == ak.num(events.objects) + 1)
    # the leading lepton is the planted one: the hardest, first of its group, the rest of the event as it was
    np.testing.assert_array_equal(leading_pt(muon, T.ELECTRON, T.MUON),
                                  ak.to_numpy(ak.max(o.pt[o["type"] == int(T.MUON)], axis=1)))
    assert (leading_pt(muon, T.ELECTRON, T.MUON) >= 800).all()
    assert ak.all(o["type"][:, -1] == int(T.MET))
    kept = o[o.pt < 800]
    assert ak.all(kept.pt == events.objects.pt)


def test_density_scores_do_not_change_with_batch_or_chunk_size(backbone, fresh_ttbar, tmp_path):
    from finetune.score_store import read_object_scores, read_scores

    write_events(fresh_ttbar, tmp_path / "data.h5")
    runs = []
    for i, extra in enumerate((("--batch-size", "512"), ("--batch-size", "7", "--step-size", "64"))):
        out = tmp_path / f"s{i}.h5"
        assert score(backbone, tmp_path / "data.h5", out, "--method", "density", *extra).returncode == 0
        runs.append((read_scores(out), read_object_scores(out)["surprise"]))
    (a, oa), (b, ob) = runs
    for c in ("surprise", "density_nll"):
        np.testing.assert_allclose(a[c], b[c], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(oa)), ak.to_numpy(ak.flatten(ob)), rtol=1e-4, atol=1e-4)
    assert a["worst_object"].tolist() == b["worst_object"].tolist()


def test_density_scores_need_a_density_head(backbone, tmp_path, data_files):
    """The same backbone with its head removed: method density is refused with one clear line, and the
    default methods are the token scores."""
    from dataclasses import replace

    from backbone.model import GPT

    bb, tok = backbone
    model = GPT.from_pretrained(bb)
    del model.density
    model.config = replace(model.config, density_components=0, density_mode="")
    plain = tmp_path / "plain"
    model.save_pretrained(plain)
    proc = score((plain, tok), data_files[1], tmp_path / "s.h5", "--method", "density")
    assert proc.returncode == 2 and "has none" in proc.stderr and "Traceback" not in proc.stderr
    assert score((plain, tok), data_files[1], tmp_path / "s.h5", "--n-masks", "1").returncode == 0
    import h5py

    with h5py.File(tmp_path / "s.h5") as f:
        assert "density_nll" not in f and "nll" in f and json.loads(f.attrs["meta"])["methods"][0] == "nll"


def test_held_out_likelihood_beats_the_per_code_gaussian(backbone, fresh_ttbar, trained, tmp_path):
    from backbone.likelihood import main
    from tokenizer.store import TokenWriter
    from tokenizer.tokenizer import Tokenizer

    bb, tok_folder = backbone
    tokenizer = Tokenizer.from_pretrained(tok_folder)
    with TokenWriter.for_tokenizer(tmp_path / "test.h5", tokenizer, tok_folder, features=True) as w:
        w.write(tokenizer.encode(fresh_ttbar, features=True))
    # through the CLI, which takes a backbone and no tokenizer
    assert main(["--backbone", str(bb), "--train", str(bb.parent / "tokens.h5"), "--test", str(tmp_path / "test.h5"),
                 "--out", str(tmp_path / "likelihood.json")]) == 0
    result = json.loads((tmp_path / "likelihood.json").read_text())
    assert np.isfinite(result["head"]) and np.isfinite(result["per_code_gaussian"])
    assert result["head"] > result["per_code_gaussian"], result


def test_sample_draws_features_from_the_head(backbone, ttbar, tmp_path):
    """Continuous and mean decoding leave the code centroids: more distinct jet pts than codes used (draws:
    nearly all distinct; means repeat where code and context repeat, as for a first jet)."""
    from events.io import read_events

    bb, tok = backbone
    pts = {}
    for mode in ("continuous", "mean", "centroid"):
        out = tmp_path / f"{mode}.h5"
        proc = run("sample.py", "--backbone", bb, "--tokenizer", tok, "--events", 200, "--out", out, "--process",
                   "ttbar", "--device", "cpu", "--decode", mode, "--seed", 3)
        assert proc.returncode == 0, proc.stderr
        assert f"{mode} decoding" in proc.stdout
        events = read_events(out)
        jets = events.of_type(T.JET, T.BJET)
        pts[mode] = ak.to_numpy(ak.flatten(jets.pt))
        assert np.all(pts[mode] > 0)
        if mode != "centroid":  # the head's features are clamped to physical ranges
            btag = ak.to_numpy(ak.flatten(jets.btag))
            assert np.all(np.abs(ak.to_numpy(ak.flatten(jets.eta))) <= 5 + 1e-5)
            assert np.all((btag >= -1e-6) & (btag <= 1 + 1e-6))
    n_codes_used = len(np.unique(pts["centroid"]))
    assert len(np.unique(pts["continuous"])) > 0.9 * len(pts["continuous"]) > n_codes_used
    assert len(np.unique(pts["mean"])) > 2 * n_codes_used


def test_the_sm_mix_of_the_anomaly_table_follows_the_training_proportions():
    from benchmarks.anomaly_table import mix_counts

    # 2,000 test events each; training 24,000 ttbar, 18,000 W+jets, 5,000 WW: ttbar runs out first, at
    # 2,000 / (24/47) = 3,916.7 events in all
    assert mix_counts({"ttbar": 2000, "wjets": 2000, "ww": 2000}, {"ttbar": 24000, "wjets": 18000, "ww": 5000}) \
        == {"ttbar": 2000, "wjets": 1500, "ww": 416}
    assert mix_counts({"ttbar": 2000, "wjets": 700}, None) == {"ttbar": 2000, "wjets": 700}
