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
