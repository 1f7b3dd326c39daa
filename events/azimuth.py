"""Turning events about the beam axis.

Collisions are symmetric under a rotation about the beam, so an event's overall direction in phi carries
no physics: only angles between its objects do. `leading_azimuth` picks the reference direction (the
leading jet), `rotate_azimuth` turns each event by its own angle; MET turns with the objects.
"""
from __future__ import annotations

import awkward as ak
import numpy as np

from events.kinematics import wrap_phi
from events.model import Events, ObjectType


def leading_azimuth(events: Events) -> np.ndarray:
    """phi of each event's highest-pt jet or b-jet; without one, of its highest-pt object; 0 if it has none."""
    objects = events.objects
    is_jet = (objects["type"] == int(ObjectType.JET)) | (objects["type"] == int(ObjectType.BJET))

    def phi_of_max(key):
        best = ak.argmax(key, axis=1, keepdims=True)
        return ak.to_numpy(ak.fill_none(ak.firsts(objects.phi[best]), 0.0)).astype(np.float64)

    has_jet = ak.to_numpy(ak.any(is_jet, axis=1))
    return np.where(has_jet, phi_of_max(ak.where(is_jet, objects.pt, -1.0)), phi_of_max(objects.pt))


def rotate_azimuth(events: Events, angle: np.ndarray) -> Events:
    """The events with every object's phi turned by -angle (one angle per event), wrapped into [-pi, pi)."""
    angle = np.asarray(angle, dtype=np.float64)
    if angle.shape != (len(events),):
        raise ValueError(f"one angle per event: {len(events)} events, angles of shape {angle.shape}")
    objects = events.objects
    phi = wrap_phi(objects.phi - angle)
    return Events(ak.with_field(objects, ak.values_astype(phi, np.float32), "phi"), events.info, events.process_names)
