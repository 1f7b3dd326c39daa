"""Real NanoAOD: the shared CMS Open Data file (an RNTuple with Run-2 tagger placeholders) read right,
against values computed here by hand with uproot; tagger choice by content and era; the object
selection matching the built-in simulation; scalar-branch (slot) maps; impossible kinematics; uint64
event numbers."""
from __future__ import annotations

import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import uproot

from events.errors import EventDataError
from events.io import open_events, read_events, write_events
from events.kinematics import delta_r
from events.model import ObjectType as T
from events.options import ReadOptions
from tests.conftest import REPO
from tests.test_root import write_nanoaod, write_tree

REAL = REPO.parent / "shared" / "data" / "cms-opendata-2015-ttbar-nanoaod-rntuple.root"
pytestmark = pytest.mark.skipif(not REAL.is_file(), reason="shared real NanoAOD file not present")


@pytest.fixture(scope="module")
def raw():
    """The shared file's branches as uproot reads them, without this project's reader."""
    with uproot.open(REAL) as f:
        return f["Events"].arrays(filter_name=["Jet_*", "Electron_*", "Muon_*", "Photon_*", "MET_*", "run", "event",
                                               "luminosityBlock"])


def test_rntuple_is_read_and_placeholder_taggers_are_skipped(raw):
    with open_events(REAL) as reader:
        events = next(reader.iterate())
        report = reader.report()["btag"]["Jet"]
    assert report["branch"] == "Jet_btagCSVV2" and report["working_point"] == 0.8484  # 2016 medium, MC default
    assert set(report["skipped"]) == {"Jet_btagDeepFlavB", "Jet_btagDeepB"}
    assert "-3000" in report["skipped"]["Jet_btagDeepFlavB"] and "-1" in report["skipped"]["Jet_btagDeepB"]
    csv = raw["Jet_btagCSVV2"]
    assert events.count(T.BJET).tolist() == ak.to_list(ak.sum(csv >= np.float32(0.8484), axis=1))
    assert events.count(T.JET, T.BJET).tolist() == ak.to_list(ak.num(csv))
    assert report["jets_without_score"] == int(ak.sum(csv == -10))
    btag = ak.to_numpy(ak.flatten(events.of_type(T.JET, T.BJET).btag))
    assert btag.min() >= 0 and btag.max() <= 1
    assert events.info["event"].dtype == np.uint64 and events.info["event"].tolist() == raw["event"].tolist()


def test_era_option_sets_the_working_point(raw):
    events = read_events(REAL, options=ReadOptions(era="2015"))
    assert events.count(T.BJET).tolist() == ak.to_list(ak.sum(raw["Jet_btagCSVV2"] >= np.float32(0.800), axis=1))
    tight = read_events(REAL, options=ReadOptions(btag_wp="tight", era="2015"))
    assert tight.count(T.BJET).tolist() == ak.to_list(ak.sum(raw["Jet_btagCSVV2"] >= np.float32(0.935), axis=1))
    with pytest.raises(EventDataError, match="unknown era '2019'"):
        read_events(REAL, options=ReadOptions(era="2019"))


def _selected(raw, name, pt_min, eta_max, passes):
    c = {k[len(name) + 1:]: raw[k] for k in raw.fields if k.startswith(name + "_")}
    return c, (c["pt"] > pt_min) & (abs(c["eta"]) < eta_max) & passes(c)


def test_reco_selection_counts_by_hand(raw):
    events = read_events(REAL, options=ReadOptions(selection="reco", era="2015"))
    el, el_ok = _selected(raw, "Electron", 10, 2.5, lambda c: (c["cutBased"] >= 2) & (c["pfRelIso03_all"] <= 0.15))
    # every muon ID of this 2015 file is False for every muon: the selection falls back to PF muons
    mu, mu_ok = _selected(raw, "Muon", 10, 2.5, lambda c: c["isPFcand"] & (c["pfRelIso03_all"] <= 0.15))
    ph, ph_ok = _selected(raw, "Photon", 15, 2.5, lambda c: (c["cutBased"] >= 2) & (c["pfRelIso03_all"] <= 0.15))
    jet, jet_ok = _selected(raw, "Jet", 20, 2.5, lambda c: (c["jetId"] & 2) == 2)
    assert events.count(T.ELECTRON).tolist() == ak.to_list(ak.sum(el_ok, axis=1))
    assert events.count(T.MUON).tolist() == ak.to_list(ak.sum(mu_ok, axis=1))
    assert events.count(T.PHOTON).tolist() == ak.to_list(ak.sum(ph_ok, axis=1))
    expected_jets, expected_b = [], []
    for i in range(len(raw)):
        others = [(c["eta"][i][ok[i]], c["phi"][i][ok[i]]) for c, ok in ((el, el_ok), (mu, mu_ok), (ph, ph_ok))]
        n = nb = 0
        for j in np.flatnonzero(ak.to_numpy(jet_ok[i])):
            if any(np.any(delta_r(jet["eta"][i][j], jet["phi"][i][j], ak.to_numpy(e), ak.to_numpy(p)) < 0.4)
                   for e, p in others):
                continue
            n += 1
            nb += jet["btagCSVV2"][i][j] >= np.float32(0.800)
        expected_jets.append(n)
        expected_b.append(int(nb))
    assert events.count(T.JET, T.BJET).tolist() == expected_jets
    assert events.count(T.BJET).tolist() == expected_b
    # scores rescaled so that the working point lands on the simulation's: b-jets at and above 0.2783
    jets = events.of_type(T.JET, T.BJET)
    btag, is_b = ak.to_numpy(ak.flatten(jets.btag)), ak.to_numpy(ak.flatten(jets["type"] == int(T.BJET)))
    assert np.all(btag[is_b] >= np.float32(0.2783)) and np.all(btag[~is_b] < 0.2783)
    assert btag.min() >= 0 and btag.max() <= 1


def test_a_skim_without_an_id_branch_is_selected_without_that_requirement_and_says_so(raw, tmp_path, caplog):
    """A skim that dropped Electron_cutBased: the rest of the selection applies, the electrons pass on pt,
    |eta| and isolation alone, and the missing requirement is in the cutflow and on stderr."""
    def native(values):  # the file's big-endian numbers, as uproot writes them
        flat = ak.to_numpy(ak.flatten(values) if values.ndim > 1 else values)
        flat = flat.astype(flat.dtype.newbyteorder("="))
        return ak.unflatten(flat, ak.num(values)) if values.ndim > 1 else flat

    kept = {k: native(raw[k]) for k in raw.fields if not k.startswith("Electron_")}
    kept["Electron"] = ak.zip({k[len("Electron_"):]: native(raw[k]) for k in raw.fields
                               if k.startswith("Electron_") and k != "Electron_cutBased"})
    path = write_tree(tmp_path / "skim.root", "Events", kept)
    with caplog.at_level("WARNING", logger="events.root"), \
            open_events(path, options=ReadOptions(selection="reco", era="2015")) as reader:
        events = next(reader.iterate())
        cutflow = reader.report()["selection"]["cutflow"]["Electron"]
    _, el_ok = _selected(raw, "Electron", 10, 2.5, lambda c: c["pfRelIso03_all"] <= 0.15)
    assert events.count(T.ELECTRON).tolist() == ak.to_list(ak.sum(el_ok, axis=1))
    assert cutflow["not applied"] == {"Electron_cutBased >= 2": "no such branch"}
    assert "no branch Electron_cutBased: the requirement Electron_cutBased >= 2 of selection 'reco' on Electron " \
           "is not applied" in caplog.text


def test_selection_matches_the_built_in_reconstruction():
    """The shipped selections keep RecoConfig's thresholds, so data and simulation define objects alike."""
    from events.reco import RecoConfig
    from events.schema import load_schema

    cfg = RecoConfig()
    for name in ("nanoaod", "delphes"):
        schema = load_schema(name)
        sel = schema.selections[schema.model_selection].collections
        assert (sel["Jet"].pt_min, sel["Jet"].abs_eta_max) == (cfg.jet_pt_min, cfg.jet_eta_max), name
        for lepton in ("Electron", "Muon"):
            assert (sel[lepton].pt_min, sel[lepton].abs_eta_max) == (cfg.lepton_pt_min, cfg.lepton_eta_max), name
        assert (sel["Photon"].pt_min, sel["Photon"].abs_eta_max) == (cfg.photon_pt_min, cfg.lepton_eta_max), name
    nano = load_schema("nanoaod").selections["reco"]
    assert nano.btag_reference == cfg.btag_wp and nano.collections["Jet"].clean_dr == cfg.jet_r
    isolation = {r.branches[0]: r.max for c in ("Electron", "Muon") for r in nano.collections[c].require if r.max}
    assert set(isolation.values()) == {cfg.iso_max}


@pytest.mark.e2e  # separate processes (torchrun, worker pool or the CLI)
def test_info_reports_tagger_and_cutflow():
    proc = subprocess.run([sys.executable, "-m", "events.info", str(REAL), "--selection", "reco", "--era", "2015"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Jet_btagCSVV2 >= 0.8 (medium working point, era 2015" in out
    assert "skipped Jet_btagDeepFlavB: no value in [0, 1]" in out
    assert "Jet       75 read, pt > 20: -14, |eta| < 2.5: -6" in out
    assert "not applied: Muon_tightId >= 1 (False for all 6 objects" in out


@pytest.mark.e2e  # separate processes (torchrun, worker pool or the CLI)
def test_convert_rntuple_keeps_ids_and_objects(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "events.convert", str(REAL), str(tmp_path / "real.h5"),
                           "--selection", "reco"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    back, direct = read_events(tmp_path / "real.h5"), read_events(REAL, options=ReadOptions(selection="reco"))
    assert back.info["event"].tolist() == direct.info["event"].tolist()
    assert ak.to_list(back.objects.pt) == ak.to_list(direct.objects.pt)


# --- tagger choice and era on written files -------------------------------------------------------
def _jets(**scores):
    base = {"pt": [[50.0, 40.0, 30.0]], "eta": [[0.0, 1.0, -1.0]], "phi": [[0.0, 1.0, 2.0]], "mass": [[5.0] * 3]}
    return ak.zip({k: ak.values_astype(ak.Array(v), np.float32) for k, v in {**base, **scores}.items()})


def _file(path, jets, run=1):
    return write_tree(path, "Events", {
        "run": np.array([run], np.uint32), "luminosityBlock": np.array([1], np.uint32),
        "event": np.array([1], np.uint64), "MET_pt": np.array([1.0]), "MET_phi": np.array([0.0]), "Jet": jets,
        "Electron": ak.zip({k: [[]] for k in ("pt", "eta", "phi", "mass", "charge")}),
        "Muon": ak.zip({k: [[]] for k in ("pt", "eta", "phi", "mass", "charge")})})


def test_a_placeholder_tagger_is_passed_over_and_undefined_scores_are_untagged(tmp_path):
    jets = _jets(btagDeepFlavB=[[-3000.0] * 3], btagCSVV2=[[0.95, -10.0, 0.5]])
    with open_events(_file(tmp_path / "a.root", jets)) as reader:
        ev = next(reader.iterate())
        assert reader.report()["btag"]["Jet"]["branch"] == "Jet_btagCSVV2"
    assert ak.to_list(ev.objects["type"][0][:3]) == [T.BJET, T.JET, T.JET]
    np.testing.assert_allclose(ak.to_list(ev.objects.btag[0][:3]), [0.95, 0.0, 0.5], rtol=1e-6)


@pytest.mark.parametrize("run, wp", [(320000, 0.2783), (300000, 0.3040), (360000, 0.3196), (1, 0.2783)])
def test_era_is_read_off_the_run_numbers(tmp_path, run, wp):
    jets = _jets(btagDeepFlavB=[[0.2790, 0.3050, 0.3200]])
    with open_events(_file(tmp_path / "a.root", jets, run=run)) as reader:
        ev = next(reader.iterate())
        assert reader.report()["btag"]["Jet"]["working_point"] == wp
    assert int(ev.count(T.BJET)[0]) == int(np.sum(np.array([0.2790, 0.3050, 0.3200], np.float32) >= np.float32(wp)))


def test_an_era_without_its_own_points_falls_back_to_its_year(tmp_path):
    # 2016 data before the VFP change (run 275000): CSVv2 has one 2016 point, 0.8484
    jets = _jets(btagDeepFlavB=[[-3000.0] * 3], btagCSVV2=[[0.85, 0.84, -10.0]])
    with open_events(_file(tmp_path / "a.root", jets, run=275000)) as reader:
        ev = next(reader.iterate())
        report = reader.report()["btag"]["Jet"]
    assert (report["era"], report["working_point"], report["era_from"]) == ("2016preVFP", 0.8484, "run numbers")
    assert int(ev.count(T.BJET)[0]) == 1


def test_run3_file_without_deepjet_points_uses_the_next_tagger(tmp_path):
    # 2024 data: DeepJet has no published point, UParT does
    jets = _jets(btagDeepFlavB=[[0.9, 0.1, 0.2]], btagUParTAK4B=[[0.2, 0.1, 0.05]])
    with open_events(_file(tmp_path / "a.root", jets, run=380000)) as reader:
        ev = next(reader.iterate())
        report = reader.report()["btag"]["Jet"]
    assert report["branch"] == "Jet_btagUParTAK4B" and report["working_point"] == 0.1272 and report["era"] == "2024"
    assert "no published working point for era 2024" in report["skipped"]["Jet_btagDeepFlavB"]
    assert int(ev.count(T.BJET)[0]) == 1


# --- impossible kinematics -----------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"Jet_pt": [[120.5, -45.25, 30.0], [], [80.0]]}, "Jet in entry 0 has negative pt"),
    ({"Jet_pt": [[120.5, 45.25, 30.0], [], [1e30]]}, "Jet in entry 2 has pt above 100000 GeV"),
    ({"Jet_eta": [[0.5, -1.25, 2.0], [], [1e6]]}, r"Jet in entry 2 has \|eta\| above 10"),
    ({"Jet_phi": [[0.1, 100.0, -2.0], [], [1.5]]}, r"Jet in entry 0 has phi outside \[-2 pi, 2 pi\]"),
    ({"Jet_eta": [[0.5, np.nan, 2.0], [], [0.0]]}, r"'Jet_eta' has a non-finite value \(nan\) in entry 0"),
    ({"MET_pt": np.array([30.0, -5.0, 60.0], np.float32)}, "MET in entry 1 has negative pt"),
])
def test_impossible_kinematics_is_an_error_or_a_flag(tmp_path, change, message):
    changes = {}
    for key, value in change.items():
        if key.startswith("Jet_"):
            from tests.test_root import JET_BTAG, JET_ETA, JET_MASS, JET_PHI, JET_PT
            cols = {"pt": JET_PT, "eta": JET_ETA, "phi": JET_PHI, "mass": JET_MASS, "btagDeepFlavB": JET_BTAG,
                    key[4:]: value}
            changes["Jet"] = ak.zip({k: ak.values_astype(ak.Array(v), np.float32) for k, v in cols.items()})
        else:
            changes[key] = value
    path = write_nanoaod(tmp_path / "bad.root", **changes)
    with pytest.raises(EventDataError, match=message):
        read_events(path)
    flagged = read_events(path, options=ReadOptions(bad_kinematics="flag"))
    assert len(flagged) == 3  # nothing dropped
    bad = flagged.info["bad_kinematics"]
    entry = int(message.split("entry ")[-1][0])
    assert bad[entry] == 1 and bad.sum() == 1
    flat = ak.flatten(flagged.objects)
    assert np.all(flat.pt >= 0) and np.all(flat.pt <= 1e5) and np.all(abs(flat.eta) <= 10)
    assert np.all(abs(flat.phi) <= np.pi)


def test_phi_in_another_convention_is_wrapped(tmp_path):
    from tests.test_root import JET_BTAG, JET_ETA, JET_MASS, JET_PT
    jets = ak.zip({k: ak.values_astype(ak.Array(v), np.float32) for k, v in {
        "pt": JET_PT, "eta": JET_ETA, "phi": [[0.1, 5.0, -2.0], [], [1.5]], "mass": JET_MASS,
        "btagDeepFlavB": JET_BTAG}.items()})
    ev = read_events(write_nanoaod(tmp_path / "phi.root", Jet=jets))
    np.testing.assert_allclose(ev.objects.phi[0][1], 5.0 - 2 * np.pi, atol=1e-6)


# --- scalar-branch (slot) maps -------------------------------------------------------------------
DIMUON_MAP = """
name: dimuon
tree: events
detect: [px1, px2]
run: Run
event: Event
collections:
  - name: Muon
    type: muon
    slots: [1, 2]
    px: px{}
    py: py{}
    pz: pz{}
    energy: E{}
    charge: Q{}
"""


def test_scalar_branch_objects(tmp_path):
    """The classic Z -> mumu tutorial layout: one set of scalar branches per muon."""
    rng = np.random.default_rng(1)
    n = 5
    cols = {"Run": np.full(n, 165617, np.int32), "Event": np.arange(n, dtype=np.int64) + 74601703}
    for s in (1, 2):
        px, py, pz = rng.normal(0, 30, (3, n))
        cols |= {f"px{s}": px, f"py{s}": py, f"pz{s}": pz, f"E{s}": np.sqrt(px**2 + py**2 + pz**2 + 0.105658**2),
                 f"Q{s}": rng.choice([-1, 1], n).astype(np.int32)}
    path = write_tree(tmp_path / "dimuon.root", "events", cols)
    (tmp_path / "dimuon.yaml").write_text(DIMUON_MAP)
    ev = read_events(path, str(tmp_path / "dimuon.yaml"))
    assert ev.count(T.MUON).tolist() == [2] * n
    mu = ev.of_type(T.MUON)
    pt_sorted = np.sort(np.stack([np.hypot(cols[f"px{s}"], cols[f"py{s}"]) for s in (1, 2)], 1), axis=1)[:, ::-1]
    np.testing.assert_allclose(ak.to_numpy(mu.pt), pt_sorted, rtol=1e-5)
    np.testing.assert_allclose(ak.to_numpy(mu.mass), 0.105658, atol=1e-3)
    assert ev.info["event"].tolist() == cols["Event"].tolist()
    # an absent second muon marked by a placeholder value
    cols["px2"][1] = -999.0
    write_tree(tmp_path / "one.root", "events", cols)
    (tmp_path / "one.yaml").write_text(DIMUON_MAP.replace("slots: [1, 2]", "slots: [1, 2]\n    slot_absent: -999"))
    assert read_events(tmp_path / "one.root", str(tmp_path / "one.yaml")).count(T.MUON).tolist() == [2, 1, 2, 2, 2]


def test_scoring_the_real_file_feeds_the_tokenizer_no_placeholder(backbone, tmp_path):
    """`anomaly score` on the real file: every event scored in order, no b-tag outside [0, 1] encoded."""
    from backbone.model import GPT
    from finetune.score_store import read_scores
    from finetune.scorer import AnomalyScorer
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    tokenizer = Tokenizer.from_pretrained(tok)
    seen = []
    encode = tokenizer.encode_with_residuals

    def spy(events, **kwargs):
        seen.append(ak.to_numpy(ak.flatten(events.objects.btag)))
        return encode(events, **kwargs)

    tokenizer.encode_with_residuals = spy
    AnomalyScorer(GPT.from_pretrained(bb), tokenizer, ["quantization"]).score(
        read_events(REAL, options=ReadOptions(selection="auto")))
    btag = np.concatenate(seen)
    assert len(btag) > 50 and btag.min() >= 0 and btag.max() <= 1
    proc = subprocess.run([sys.executable, "-m", "finetune.anomaly", "score", "--backbone", bb, "--tokenizer", tok,
                           "--input", REAL, "--out", tmp_path / "real.csv", "--device", "cpu", "--quiet",
                           "--n-masks", "1"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    scores = read_scores(tmp_path / "real.csv")
    with uproot.open(REAL) as f:
        assert scores["event"].tolist() == f["Events"]["event"].array().tolist()
    assert np.isfinite(scores["density_nll"]).all()
    proc = subprocess.run([sys.executable, "-m", "tokenizer.tokenize", "--tokenizer", tok, "--input", REAL, "--out",
                           tmp_path / "real_tokens.h5", "--device", "cpu"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 10 events" in proc.stdout


# --- uint64 event numbers ------------------------------------------------------------------------
BIG = [2**64 - 1, 2**63 + 5, 2**63 - 1]


def test_uint64_event_numbers_round_trip(tmp_path, ttbar):
    from finetune.score_store import ScoreWriter, read_scores

    events = ttbar[:3]
    events.info["event"] = np.array(BIG, np.uint64)
    for name in ("e.h5", "e.root"):
        write_events(events, tmp_path / name)
        assert read_events(tmp_path / name).info["event"].tolist() == BIG, name
    for name in ("s.h5", "s.csv"):
        with ScoreWriter(tmp_path / name, ("nll",)) as w:
            w.write({"run": np.zeros(3, np.int64), "lumi": np.zeros(3, np.int64), "event": events.info["event"]},
                    np.zeros(3, np.int32), {"nll": np.array([1.0, 2.0, 3.0])})
        assert read_scores(tmp_path / name)["event"].tolist() == BIG, name


def test_an_rntuple_reads_like_the_same_ttree(tmp_path):
    """The same NanoAOD content as a TTree (with counters) and as a flat RNTuple (without): same events."""
    tree = write_nanoaod(tmp_path / "tree.root")
    with uproot.open(tree) as f:
        arrays = f["Events"].arrays()
    with uproot.recreate(tmp_path / "rntuple.root") as f:
        f.mkrntuple("Events", {k: arrays[k] for k in arrays.fields if not k.startswith("n")})
    a, b = read_events(tree), read_events(tmp_path / "rntuple.root")
    assert ak.to_list(a.objects) == ak.to_list(b.objects)
    assert b.info["event"].tolist() == a.info["event"].tolist() == [2**40 + 5, 11, 3]


def test_requirements_by_hand():
    from events.selection import Requirement

    jet_id = Requirement(branch="Jet_jetId", bits=2)  # tight; 4 alone is tight-lepton-veto without tight
    assert jet_id.passes(np.array([0, 1, 2, 4, 6])).tolist() == [False, False, True, False, True]
    iso = Requirement(branch="Muon_pfRelIso03_all", max=0.15)
    assert iso.passes(np.array([0.0, 0.15, 0.1501])).tolist() == [True, True, False]
    assert Requirement(branch="Electron_cutBased", min=2).passes(np.array([0, 1, 2, 4])).tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="give min, max or bits"):
        Requirement(branch="Jet_jetId")
