"""Vectorized four-vector helpers on numpy (flat) or awkward (jagged) arrays."""
from __future__ import annotations

import numpy as np


def wrap_phi(phi):
    """Angles mapped into [-pi, pi)."""
    return (phi + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1, phi1, eta2, phi2):
    """Angular distance sqrt(deta^2 + dphi^2)."""
    return np.hypot(eta1 - eta2, wrap_phi(phi1 - phi2))


def cartesian_to_ptetaphi(px, py, pz):
    """(pt, eta, phi) from Cartesian momenta; eta is +-inf for objects along the beam (pt = 0)."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    return pt, eta, np.arctan2(py, px)


def mass_from_energy(energy, p2):
    """Invariant mass sqrt(E^2 - |p|^2); small negative m^2 from rounding is clipped to 0."""
    return np.sqrt(np.maximum(energy * energy - p2, 0.0))


def ptetaphim_to_cartesian(pt, eta, phi, mass):
    """(px, py, pz, E) from (pt, eta, phi, m)."""
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px * px + py * py + pz * pz + mass * mass)


def invariant_mass(px, py, pz, energy):
    """Mass of summed four-vectors given as components."""
    return mass_from_energy(energy, px * px + py * py + pz * pz)


#: pt above this (GeV) is no collider's: 100 TeV is beyond every beam energy, LHC and FCC-hh alike
PT_MAX = 1e5
#: |eta| above this is beyond any detector (forward calorimeters reach about 5, the beam pipe about 9)
ETA_MAX = 10.0
#: phi within [-2 pi, 2 pi] is an angle in another convention (e.g. [0, 2 pi)) and is wrapped; beyond,
#: it is not an angle in radians (degrees, or garbage)
PHI_MAX = 2 * np.pi


def unphysical(pt, eta, phi) -> list[tuple[str, np.ndarray]]:
    """(what is wrong, mask) for each kind of physically impossible value among flat object kinematics."""
    return [("non-finite pt, eta or phi", ~(np.isfinite(pt) & np.isfinite(eta) & np.isfinite(phi))),
            ("negative pt", pt < 0), (f"pt above {PT_MAX:g} GeV", pt > PT_MAX),
            (f"|eta| above {ETA_MAX:g}", np.abs(eta) > ETA_MAX),
            ("phi outside [-2 pi, 2 pi] (not radians)", np.abs(phi) > PHI_MAX)]


def repaired(pt, eta, phi):
    """Kinematics forced into the physical ranges (for events flagged, not refused): non-finite -> 0."""
    pt = np.clip(np.nan_to_num(pt, nan=0.0, posinf=PT_MAX, neginf=0.0), 0.0, PT_MAX)
    eta = np.clip(np.nan_to_num(eta, nan=0.0), -ETA_MAX, ETA_MAX)
    return pt, eta, wrap_phi(np.nan_to_num(phi, nan=0.0, posinf=0.0, neginf=0.0))
