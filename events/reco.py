"""Detector-level reconstruction of Pythia 8 particle records, vectorized over a batch of events.

No Python loop runs over particles or events: the particle record of a whole batch is handled as
flat numpy arrays (one entry per particle, `event` telling which event it belongs to), and FastJet
clusters the batch at once. The detector model (all numbers in `RecoConfig`):

- isolated electrons, muons, photons: pt and |eta| cuts, relative isolation (scalar pt sum of
  other visible particles within dR / pt), a flat efficiency, Gaussian pt smearing;
- anti-kt R=0.4 jets from all other visible particles within the calorimeter acceptance, energy
  smeared with sigma/E = S/sqrt(E) (+) C, then the pt and |eta| cuts;
- b-tagging: jets within dR of a B hadron (else a C hadron, else light) are tagged with a
  flavour-dependent efficiency; tagged jets get a score at or above the working point, untagged
  below it, so a b-jet is exactly a jet whose score passes the working point (as in NanoAOD);
- MET: invisible particles plus visible ones outside the acceptance, minus the jet
  mismeasurement, plus Gaussian noise of met_resolution * sqrt(sum ET) per component.
"""
from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from events.btag import check_working_point
from events.kinematics import cartesian_to_ptetaphi, delta_r, mass_from_energy, wrap_phi
from events.model import Caps, ObjectType, assemble, make_objects

ELECTRON_MASS, MUON_MASS = 0.000511, 0.105658


@dataclass(frozen=True)
class RecoConfig:
    """Detector model of the built-in source (defaults: roughly CMS-like)."""

    calo_eta_max: float = 4.9
    jet_r: float = 0.4
    jet_pt_min: float = 20.0
    jet_eta_max: float = 2.5
    jet_stochastic: float = 1.0  # S in sigma/E = S/sqrt(E/GeV) (+) C
    jet_constant: float = 0.05
    btag_wp: float = 0.2783  # DeepJet medium, as the NanoAOD schema
    btag_eff_b: float = 0.70
    btag_eff_c: float = 0.12
    btag_eff_light: float = 0.01
    hadron_match_dr: float = 0.3
    hadron_pt_min: float = 5.0
    lepton_pt_min: float = 10.0
    lepton_eta_max: float = 2.5
    photon_pt_min: float = 15.0
    iso_dr: float = 0.3
    iso_max: float = 0.15
    iso_track_pt_min: float = 0.5
    electron_eff: float = 0.90
    muon_eff: float = 0.95
    photon_eff: float = 0.85
    electron_resolution: float = 0.02
    muon_resolution: float = 0.015
    photon_resolution: float = 0.02
    met_resolution: float = 0.5  # GeV^1/2
    fatjet_r: float = 0.8
    fatjet_pt_min: float = 500.0
    fatjet_pt_max: float = 650.0
    fatjet_eta_max: float = 2.0
    top_match_dr: float = 0.8

    def __post_init__(self):
        check_working_point(self.btag_wp, where="reco.btag_wp")  # the simulated scores lie in [0, 1]


class Particles:
    """The flat particle record of a batch: one numpy entry per particle, all events concatenated."""

    def __init__(self, prt: ak.Array, particle_data):
        self.n_events = len(prt)
        self.counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.event = np.repeat(np.arange(self.n_events), self.counts)
        flat = ak.flatten(prt)
        self.id = ak.to_numpy(flat.id)
        self.status = ak.to_numpy(flat.status)
        self.px, self.py, self.pz, self.e = (ak.to_numpy(flat.p[c]) for c in ("px", "py", "pz", "e"))
        self.daughter1 = ak.to_numpy(flat.daughter1) + self.offsets[self.event]
        self.daughter2 = ak.to_numpy(flat.daughter2) + self.offsets[self.event]
        self.pt, self.eta, self.phi = cartesian_to_ptetaphi(self.px, self.py, self.pz)
        self.eta = np.nan_to_num(self.eta, posinf=1e3, neginf=-1e3)  # beam remnants along the axis
        ids = np.unique(self.id)
        charge = np.array([particle_data.charge(int(i)) for i in ids])
        visible = np.array([particle_data.isVisible(int(i)) for i in ids])
        where = np.searchsorted(ids, self.id)
        self.charge, self.visible = charge[where], visible[where]
        self.final = self.status > 0


def _pairs(a_event: np.ndarray, b_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (a, b) index pairs in the same event; b items of event e are [b_offsets[e], b_offsets[e+1])."""
    n_b = np.diff(b_offsets)[a_event]
    ia = np.repeat(np.arange(len(a_event)), n_b)
    start = np.repeat(b_offsets[a_event] - np.concatenate([[0], np.cumsum(n_b)[:-1]]), n_b)
    return ia, start + np.arange(len(ia))


def _offsets(event: np.ndarray, n_events: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(event, minlength=n_events))])


def _isolated(p: Particles, cand: np.ndarray, cfg: RecoConfig) -> np.ndarray:
    """Relative isolation of candidate particles (indices into p) below cfg.iso_max."""
    tracks = np.flatnonzero(p.final & p.visible & (p.pt > cfg.iso_track_pt_min))
    ia, ib = _pairs(p.event[cand], _offsets(p.event[tracks], p.n_events))
    ib = tracks[ib]
    near = (delta_r(p.eta[cand[ia]], p.phi[cand[ia]], p.eta[ib], p.phi[ib]) < cfg.iso_dr) & (cand[ia] != ib)
    cone = np.bincount(ia[near], weights=p.pt[ib[near]], minlength=len(cand))
    return cone < cfg.iso_max * p.pt[cand]


def _hadron_flavour(pid: np.ndarray, quark: int) -> np.ndarray:
    a = np.abs(pid)
    not_diquark = (a // 10) % 10 != 0
    return (a > 100) & not_diquark & (((a // 100) % 10 == quark) | ((a // 1000) % 10 == quark))


_banner_silenced = False


def silence_fastjet_banner() -> None:
    """FastJet prints a 12-line banner to C++ stdout on its first clustering; run that one with fd 1 closed."""
    global _banner_silenced
    if _banner_silenced:
        return
    import os
    import sys

    import fastjet

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            vectors = ak.Array([[{"px": 1.0, "py": 0.0, "pz": 0.0, "E": 1.0}]], with_name="Momentum4D")
            fastjet.ClusterSequence(vectors, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)).inclusive_jets()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _banner_silenced = True


def _cluster(p: Particles, inputs: np.ndarray, radius: float, pt_min: float):
    """Anti-kt jets of the given particles; returns (jets, constituent indices into p), per event."""
    import fastjet

    silence_fastjet_banner()
    counts = np.bincount(p.event[inputs], minlength=p.n_events)
    vectors = ak.unflatten(ak.zip({"px": p.px[inputs], "py": p.py[inputs], "pz": p.pz[inputs], "E": p.e[inputs]},
                                  with_name="Momentum4D"), counts)
    sequence = fastjet.ClusterSequence(vectors, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
    jets = sequence.inclusive_jets(pt_min)
    local = sequence.constituent_index(pt_min)  # (event, jet, constituent) -> index within event inputs
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_jets, n_const = ak.num(local, axis=1), ak.flatten(ak.num(local, axis=2))
    flat_local = ak.to_numpy(ak.flatten(local, axis=None))
    jet_event = np.repeat(np.arange(p.n_events), ak.to_numpy(n_jets))
    glob = inputs[flat_local + np.repeat(start[jet_event], ak.to_numpy(n_const))]
    constituents = ak.unflatten(glob, ak.to_numpy(n_const))
    flat = ak.flatten(jets)
    px, py, pz, e = (ak.to_numpy(flat[c]).astype(np.float64) for c in ("px", "py", "pz", "E"))
    return jet_event, (px, py, pz, e), constituents


def _jet_kinematics(px, py, pz, e):
    pt, eta, phi = cartesian_to_ptetaphi(px, py, pz)
    return pt, eta, phi, mass_from_energy(e, px * px + py * py + pz * pz)


def _leptons_and_photons(p: Particles, cfg: RecoConfig, rng: np.random.Generator):
    """Isolated e, mu, gamma as object collections, and the mask of particles they take from jets."""
    absid = np.abs(p.id)
    central = p.final & (np.abs(p.eta) < cfg.lepton_eta_max)
    taken = np.zeros(len(p.id), dtype=bool)
    collections = []
    for pdg, otype, pt_min, eff, res, mass in (
            (11, ObjectType.ELECTRON, cfg.lepton_pt_min, cfg.electron_eff, cfg.electron_resolution, ELECTRON_MASS),
            (13, ObjectType.MUON, cfg.lepton_pt_min, cfg.muon_eff, cfg.muon_resolution, MUON_MASS),
            (22, ObjectType.PHOTON, cfg.photon_pt_min, cfg.photon_eff, cfg.photon_resolution, 0.0)):
        cand = np.flatnonzero(central & (absid == pdg) & (p.pt > pt_min))
        cand = cand[_isolated(p, cand, cfg)]
        taken[cand] = True
        keep = cand[rng.random(len(cand)) < eff]
        pt = p.pt[keep] * np.maximum(1 + res * rng.standard_normal(len(keep)), 0.01)
        counts = np.bincount(p.event[keep], minlength=p.n_events)
        charge = -np.sign(p.id[keep]) if pdg != 22 else 0
        collections.append(make_objects(counts, type=int(otype), pt=pt, eta=p.eta[keep], phi=p.phi[keep],
                                        mass=mass, charge=charge))
    return collections, taken


def _btag(p: Particles, jet_event, eta, phi, cfg: RecoConfig, rng: np.random.Generator):
    """(score, tagged) per jet from the flavour of the nearest-in-dR heavy hadrons."""
    flavour = np.zeros(len(eta), dtype=np.int8)  # 0 light, 4 c, 5 b
    for quark in (4, 5):  # b last: a jet near both is a b-jet
        had = np.flatnonzero(_hadron_flavour(p.id, quark) & (p.pt > cfg.hadron_pt_min))
        ij, ih = _pairs(jet_event, _offsets(p.event[had], p.n_events))
        ih = had[ih]
        near = delta_r(eta[ij], phi[ij], p.eta[ih], p.phi[ih]) < cfg.hadron_match_dr
        flavour[np.unique(ij[near])] = quark
    eff = np.select([flavour == 5, flavour == 4], [cfg.btag_eff_b, cfg.btag_eff_c], cfg.btag_eff_light)
    tagged = rng.random(len(eta)) < eff
    wp = cfg.btag_wp
    above = wp + (1 - wp) * np.where(flavour == 5, rng.beta(5, 1, len(eta)), rng.beta(2, 2, len(eta)))
    below = wp * np.where(flavour == 5, rng.beta(2, 2, len(eta)), rng.beta(1, 6, len(eta)))
    score = np.where(tagged, above, np.minimum(below, np.nextafter(np.float32(wp), np.float32(0))))
    return score, tagged


def reconstruct_events(p: Particles, cfg: RecoConfig, caps: Caps, rng: np.random.Generator):
    """Event-mode objects: jets, b-jets, isolated leptons and photons, MET. Returns (objects, n_truncated)."""
    collections, taken = _leptons_and_photons(p, cfg, rng)
    in_calo = np.abs(p.eta) < cfg.calo_eta_max
    inputs = np.flatnonzero(p.final & p.visible & in_calo & ~taken)
    jet_event, (px, py, pz, e), _ = _cluster(p, inputs, cfg.jet_r, pt_min=0.75 * cfg.jet_pt_min)
    sigma = np.hypot(cfg.jet_stochastic / np.sqrt(np.maximum(e, 1e-3)), cfg.jet_constant)
    scale = np.maximum(1 + sigma * rng.standard_normal(len(e)), 0.05)
    pt, eta, phi, mass = _jet_kinematics(px, py, pz, e)
    # MET: invisibles and visibles outside the acceptance escape; jet mismeasurement feeds in; noise
    lost = p.final & (~p.visible | ~in_calo)
    met_x = np.bincount(p.event[lost], weights=p.px[lost], minlength=p.n_events) \
        - np.bincount(jet_event, weights=(scale - 1) * px, minlength=p.n_events)
    met_y = np.bincount(p.event[lost], weights=p.py[lost], minlength=p.n_events) \
        - np.bincount(jet_event, weights=(scale - 1) * py, minlength=p.n_events)
    seen = p.final & p.visible & in_calo
    sum_et = np.bincount(p.event[seen], weights=p.pt[seen], minlength=p.n_events)
    noise = cfg.met_resolution * np.sqrt(sum_et)
    met_x += noise * rng.standard_normal(p.n_events)
    met_y += noise * rng.standard_normal(p.n_events)
    pt, mass = pt * scale, mass * scale
    keep = (pt > cfg.jet_pt_min) & (np.abs(eta) < cfg.jet_eta_max)
    score, tagged = _btag(p, jet_event[keep], eta[keep], phi[keep], cfg, rng)
    otype = np.where(tagged, int(ObjectType.BJET), int(ObjectType.JET))
    jets = make_objects(np.bincount(jet_event[keep], minlength=p.n_events), type=otype, pt=pt[keep],
                        eta=eta[keep], phi=phi[keep], mass=mass[keep], btag=score)
    met = make_objects(np.ones(p.n_events), type=int(ObjectType.MET), pt=np.hypot(met_x, met_y),
                       phi=np.arctan2(met_y, met_x))
    return assemble([jets, *collections, met], caps)


def _last_copy(p: Particles, index: np.ndarray) -> np.ndarray:
    """Follow each particle down its chain of copies (same id) to the last one."""
    for _ in range(100):
        d1 = p.daughter1[index]
        step = (d1 > p.offsets[p.event[index]]) & (p.id[np.minimum(d1, len(p.id) - 1)] == p.id[index])
        if not step.any():
            return index
        index = np.where(step, d1, index)
    return index


def _hadronic_tops(p: Particles) -> np.ndarray:
    """(n_tops, 4, 2) eta/phi of each hadronically decaying top and its b, q, q' decay quarks."""
    tops = np.flatnonzero(np.abs(p.id) == 6)
    tops = tops[_last_copy(p, tops) == tops]
    d1, d2 = p.daughter1[tops], p.daughter2[tops]
    w_first = np.where(np.abs(p.id[d1]) == 24, d1, d2)
    b = np.where(w_first == d1, d2, d1)
    w = _last_copy(p, w_first)
    q1, q2 = p.daughter1[w], p.daughter2[w]
    hadronic = (np.abs(p.id[w_first]) == 24) & (np.abs(p.id[q1]) <= 5) & (np.abs(p.id[q2]) <= 5) & (q2 > q1)
    parts = np.stack([tops, b, q1, q2], axis=1)[hadronic]
    return parts, np.stack([p.eta[parts], p.phi[parts]], axis=-1)


def reconstruct_jets(p: Particles, cfg: RecoConfig, caps: Caps, top_matched: bool):
    """Jet-mode records: large-R jets in the pt window, each as its constituents relative to the axis.

    Returns (objects, n_truncated, info) with one record per accepted jet, in event then pt order.
    """
    inputs = np.flatnonzero(p.final & p.visible & (np.abs(p.eta) < cfg.calo_eta_max))
    jet_event, (px, py, pz, e), constituents = _cluster(p, inputs, cfg.fatjet_r, pt_min=cfg.fatjet_pt_min)
    pt, eta, phi, mass = _jet_kinematics(px, py, pz, e)
    keep = (pt < cfg.fatjet_pt_max) & (np.abs(eta) < cfg.fatjet_eta_max)
    if top_matched:
        parts, angles = _hadronic_tops(p)
        ij, it = _pairs(jet_event, _offsets(p.event[parts[:, 0]], p.n_events))
        dr = delta_r(eta[ij, None], phi[ij, None], angles[it, :, 0], angles[it, :, 1])
        contained = np.all(dr < cfg.top_match_dr, axis=1)
        matched = np.zeros(len(pt), dtype=bool)
        matched[ij[contained]] = True
        keep &= matched
    order = np.lexsort((-pt, jet_event))  # event order, then descending pt
    order = order[keep[order]]
    const = constituents[order]
    n_const = ak.to_numpy(ak.num(const))
    idx = ak.to_numpy(ak.flatten(const))
    jet_of = np.repeat(np.arange(len(order)), n_const)
    objects = make_objects(n_const, type=int(ObjectType.CONSTITUENT), pt=p.pt[idx],
                           eta=p.eta[idx] - eta[order][jet_of], phi=wrap_phi(p.phi[idx] - phi[order][jet_of]),
                           mass=mass_from_energy(p.e[idx], p.px[idx] ** 2 + p.py[idx] ** 2 + p.pz[idx] ** 2),
                           charge=p.charge[idx])
    objects, n_truncated = assemble([objects], caps)
    info = {"jet_pt": pt[order].astype(np.float32), "jet_eta": eta[order].astype(np.float32),
            "jet_phi": phi[order].astype(np.float32), "jet_mass": mass[order].astype(np.float32),
            "jet_nparticles": n_const.astype(np.int32)}
    return objects, n_truncated, info, jet_event[order]
