"""benchmarks/second_lepton.py: the chance of a second lepton after the first, on hand-made predictions."""
from __future__ import annotations

import sys

import pytest
import torch

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import second_lepton as sl  # noqa: E402


def test_the_chance_is_read_at_the_token_after_the_first_lepton():
    """Codes 0-3, of which 2 and 3 are leptons; 5 is EOS. Row 0 (jet, lepton, lepton, EOS): the chance is
    what position 2 gives codes 2 and 3, 0.1 + 0.2; row 1 (lepton, EOS): position 1's, 0.05 + 0.05; row 2
    has no lepton. One row has two leptons."""
    probs = torch.zeros(3, 4, 6)
    probs[0, 2, 2], probs[0, 2, 3], probs[0, 1, 2] = 0.1, 0.2, 0.9  # position 1 predicts the first lepton
    probs[1, 1, 2], probs[1, 1, 3] = 0.05, 0.05
    targets = torch.tensor([[0, 2, 3, 5], [2, 5, -100, -100], [0, 1, 5, -100]])
    chances, two = sl.after_first_lepton(probs, targets, torch.tensor([False, False, True, True]))
    assert chances == pytest.approx([0.3, 0.1]) and two == 1
