"""benchmarks/head_retrain.py: a fresh density head trained alone on a backbone's frozen trunk."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import head_retrain  # noqa: E402


@pytest.fixture(scope="module")
def retrained(ordered_backbone, tmp_path_factory):
    """(backbone folder, function running the CLI with extra arguments into a new folder -> the loaded model)."""
    from backbone.model import GPT

    folder, _ = ordered_backbone
    out = tmp_path_factory.mktemp("retrained")

    def run(name, *extra):
        args = ["--backbone", str(folder), "--train", str(folder.parent / "tokens.h5"), "--steps", "4",
                "--batch-size", "8", "--out", str(out / name), *extra]
        assert head_retrain.main(args) == 0
        return GPT.from_pretrained(out / name), json.loads((out / name / "head_training.json").read_text())

    return folder, run


def _head(model):
    return {k: v for k, v in model.state_dict().items() if k.startswith("density.net.")}


def _differs(a, b) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_the_trunk_stays_and_the_head_is_new(retrained):
    """Every weight outside the head's network is the backbone's, bit for bit; the head has the components
    asked for and is trained from a fresh start (at a vanishing learning rate it stays the fresh head); the
    backbone's own head is measured on the same held-out events."""
    from backbone.data import TokenSequences
    from backbone.model import GPT

    folder, run = retrained
    original = GPT.from_pretrained(folder)
    model, result = run("k3", "--components", "3")
    assert model.config.density_components == 3 and result["components"] == 3 and result["steps"] == 4
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("density.net.")}
    assert kept and all(torch.equal(v, original.state_dict()[k]) for k, v in kept.items())
    still, _ = run("still", "--components", "3", "--lr", "1e-30")
    fresh = _head(head_retrain.with_fresh_head(original, 3))
    for k, v in _head(still).items():
        torch.testing.assert_close(v, fresh[k])
    assert max(float((v - fresh[k]).abs().max()) for k, v in _head(model).items()) > 1e-3
    seqs = TokenSequences.from_store(folder.parent / "tokens.h5", original.conditional, original.vocab)
    val, _ = head_retrain.split(len(seqs))
    expected = head_retrain.held_out(original, *head_retrain.trunk_states(original, seqs), val)
    assert result["val_density_backbone_head"] == pytest.approx(expected)
    assert result["held_out_events"] == len(val) == len(seqs) // 50


@pytest.mark.parametrize("option", [("--seed", "1"), ("--batch-size", "16"), ("--steps", "5")])
def test_each_training_option_changes_the_head(retrained, option):
    _, run = retrained
    base, _ = run("base")
    other, result = run("other_" + option[0].strip("-"), *option)
    assert _differs(_head(base), _head(other))
    assert str(result[option[0].strip("-").replace("-", "_")]) == option[1]


@pytest.mark.parametrize("option", [("--seed", "-1"), ("--steps", "0"), ("--lr", "0"), ("--components", "0")])
def test_bad_values_are_refused_before_any_work(option, tmp_path):
    with pytest.raises(SystemExit):
        head_retrain.main(["--backbone", "nope", "--train", "nope.h5", "--out", str(tmp_path / "out"), *option])
    assert not (tmp_path / "out").exists()
