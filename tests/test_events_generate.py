"""The built-in Pythia 8 + FastJet source: physics peaks, reproducibility, proxies, detector model."""
import awkward as ak
import numpy as np
import pytest

from events.model import Caps, Events, ObjectType as T
from events.physics import peak_position, top_candidates
from events.processes import PROCESSES
from events.pythia import GenerateConfig, generate
from events.reco import RecoConfig


def test_ttbar_has_top_and_w_peaks(ttbar, wjets):
    tops = top_candidates(ttbar)
    assert tops.has_candidate.mean() > 0.5
    assert 140 <= peak_position(tops.m_bjj, 50, 400, 10) <= 195
    assert 65 <= peak_position(tops.m_jj, 20, 250, 5) <= 95
    # the peak is physics, not selection: W+jets rarely forms a candidate at all
    assert top_candidates(wjets).has_candidate.mean() < 0.1 * tops.has_candidate.mean()
    in_window = (tops.m_bjj > 140) & (tops.m_bjj < 200)
    assert in_window.mean() > 0.3


def test_reconstructed_objects_are_sane(ttbar):
    flat = ak.flatten(ttbar.objects)
    types = ak.to_numpy(flat["type"])
    pt, eta, btag = (ak.to_numpy(flat[f]) for f in ("pt", "eta", "btag"))
    jets = np.isin(types, [T.JET, T.BJET])
    assert pt[jets].min() > 20 and np.abs(eta[jets]).max() < 2.5
    # a b-jet is exactly a jet whose score passes the working point
    wp = RecoConfig().btag_wp
    assert np.array_equal(types[jets] == T.BJET, btag[jets] >= np.float32(wp))
    n_b = ttbar.count(T.BJET)
    assert 1.0 < n_b.mean() < 1.6  # two b quarks, ~70 % efficiency, acceptance
    leptons = np.isin(types, [T.ELECTRON, T.MUON])
    assert set(np.unique(ak.to_numpy(flat.charge)[leptons])) == {-1, 1}
    assert (ttbar.count(T.MET) == 1).all()
    assert ttbar.info["ntop"].tolist() == [2] * len(ttbar) and ttbar.process_names == ("ttbar",)
    assert ttbar.info["event"].tolist() == list(range(len(ttbar)))
    ttbar.validate()


@pytest.mark.e2e  # separate processes (torchrun, worker pool or the CLI)
def test_same_seed_same_events_any_workers():
    config = GenerateConfig(block_size=60)
    one = Events.concatenate(generate("wjets", 150, seed=5, workers=1, config=config, progress=False))
    two = Events.concatenate(generate("wjets", 150, seed=5, workers=2, config=config, progress=False))
    other = Events.concatenate(generate("wjets", 150, seed=6, workers=2, config=config, progress=False))
    assert ak.to_list(one.objects) == ak.to_list(two.objects)
    assert one.info["lumi"].tolist() == [0] * 60 + [1] * 60 + [2] * 30
    assert ak.to_list(one.objects) != ak.to_list(other.objects)


def test_top_jets_vs_qcd_jets(top_jets, qcd_jets):
    for jets in (top_jets, qcd_jets):
        assert ((jets.info["jet_pt"] > 500) & (jets.info["jet_pt"] < 650)).all()
        assert np.abs(jets.info["jet_eta"]).max() < 2.0
        assert (jets.count(T.CONSTITUENT) == np.minimum(jets.info["jet_nparticles"], 128)).all()
        # constituents are relative to the jet axis; deta is in pseudorapidity while anti-kt clusters
        # in rapidity, so only very soft massive hadrons may lie beyond R: < 1 % of the jet pt
        pt, deta, dphi = (ak.to_numpy(ak.flatten(jets.objects[f])) for f in ("pt", "eta", "phi"))
        assert pt[np.hypot(deta, dphi) > 0.8].sum() < 0.01 * pt.sum()
    assert 150 < np.median(top_jets.info["jet_mass"]) < 200
    assert np.median(qcd_jets.info["jet_mass"]) < 120
    assert np.median(top_jets.info["jet_nparticles"]) > np.median(qcd_jets.info["jet_nparticles"])


@pytest.mark.parametrize("process, n_tops", [("single_top_t", 1), ("tw_proxy", 1), ("ttbar", 2),
                                             ("ttt_proxy", 3), ("tttt_proxy", 4)])
def test_process_makes_its_number_of_top_quarks(process, n_tops):
    import pythia8mc

    proc = PROCESSES[process]
    assert proc.ntop == n_tops
    pythia = pythia8mc.Pythia("", False)
    for s in ("Beams:eCM = 13000.", "Print:quiet = on", "Random:setSeed = on", "Random:seed = 3", *proc.settings):
        assert pythia.readString(s)
    assert pythia.init()
    batch = pythia.nextBatch(10).prt
    for event in batch:
        ids = np.asarray(event.id)
        d1 = np.asarray(event.daughter1)
        is_top = np.abs(ids) == 6
        last_copy = is_top & (ids[d1] != ids)
        assert last_copy.sum() == n_tops


class _Table:
    """The two facts reconstruction asks Pythia's particle table: charge and visibility."""

    def charge(self, pid):
        return {211: 1.0, -211: -1.0}.get(pid, 0.0)

    def isVisible(self, pid):
        return abs(pid) not in (12, 14, 16)


def test_detector_model_by_hand_without_smearing():
    """Two 100 GeV pions back to back and a 30 GeV neutrino: with the smearing switched off, two jets
    of exactly the pions' momenta and MET exactly the neutrino's (jet energy scale 1)."""
    from events.reco import Particles, reconstruct_events

    def particle(pid, pt, phi, eta=0.0, m=0.13957):
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return {"id": pid, "status": 1, "daughter1": 0, "daughter2": 0,
                "p": {"px": px, "py": py, "pz": pz, "e": np.sqrt(px**2 + py**2 + pz**2 + m**2)}}

    prt = ak.Array([[particle(211, 100.0, 0.3, 0.5), particle(-211, 100.0, 0.3 - np.pi, -1.0),
                     particle(12, 30.0, 2.0, m=0.0)]])
    cfg = RecoConfig(jet_stochastic=0.0, jet_constant=0.0, met_resolution=0.0)
    objects, _ = reconstruct_events(Particles(prt, _Table()), cfg, Caps(), np.random.default_rng(0))
    ev = Events(objects, {"event": np.zeros(1, dtype=np.uint64)})
    jets = ev.of_type(T.JET, T.BJET)[0]
    np.testing.assert_allclose(sorted(jets.pt.to_list()), [100.0, 100.0], rtol=1e-5)
    np.testing.assert_allclose(sorted(jets.eta.to_list()), [-1.0, 0.5], atol=1e-5)
    np.testing.assert_allclose(sorted(jets.mass.to_list()), [0.13957, 0.13957], rtol=1e-3)
    met_pt, met_phi = ev.met
    assert met_pt[0] == pytest.approx(30.0, rel=1e-5) and met_phi[0] == pytest.approx(2.0, abs=1e-5)
