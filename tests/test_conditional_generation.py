"""benchmarks/conditional_generation.py: where generated multiplicities go wrong, on hand-made events."""
from __future__ import annotations

import sys

import numpy as np

from events.model import Caps, Events, ObjectType as T, assemble, make_objects
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import conditional_generation as cg  # noqa: E402


def test_jet_hazards_are_the_chance_that_another_jet_follows_k_jets():
    """Events with 0, 1, 2, 2 and 4 jets (b-jets count as jets): P(n > k | n >= k) by hand is 4/5, 3/4,
    1/3, 1, 0, and undefined beyond four jets."""
    n_jets = [0, 1, 2, 2, 4]
    types = [T.BJET if i == 0 else T.JET for n in n_jets for i in range(n)]
    jets = make_objects(n_jets, type=types, pt=np.linspace(200, 20, len(types)))
    met = make_objects([1] * len(n_jets), type=T.MET, pt=np.full(len(n_jets), 10.0))
    objects, _ = assemble((jets, met), Caps())
    hazards = cg.jet_hazards(Events(objects, {}))
    assert hazards[:5] == [0.8, 0.75, 1 / 3, 1.0, 0.0]
    assert hazards[5:] == [None] * (cg.MAX_JETS - 5)
