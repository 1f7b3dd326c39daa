"""Pretrained models by name: the bundled `event-small` (models/event-small/), found from any folder and
from an installed package, refused when its weights are damaged, and reproducing its recorded metrics."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.errors import ModelFileError, UserError
from tests.conftest import REPO
from tests.test_device_placement import backbone, pipeline  # noqa: F401 (fixtures: a tiny tokenizer and backbone)

BUNDLED = REPO / "models" / "event-small"
REAL = REPO.parent / "shared" / "data" / "cms-opendata-2015-ttbar-nanoaod-rntuple.root"
needs_bundle = pytest.mark.skipif(not (BUNDLED / "backbone" / "config.json").is_file(), reason="no bundled model")


@pytest.fixture()
def bundle(pipeline, backbone, tmp_path, monkeypatch):  # noqa: F811
    """The tiny models laid out as a bundled model `tiny` of a model root of their own."""
    import common.pretrained

    root = tmp_path / "models"
    shutil.copytree(backbone.source, root / "tiny" / "backbone")
    shutil.copytree(pipeline[0].source, root / "tiny" / "tokenizer")
    monkeypatch.setattr(common.pretrained, "MODEL_ROOT", root)
    return root / "tiny"


def test_a_bundled_model_is_loaded_by_name_and_brings_its_tokenizer(bundle, pipeline, tmp_path, monkeypatch):  # noqa: F811
    from backbone.model import GPT
    from finetune.scorer import AnomalyScorer
    from tokenizer.tokenizer import Tokenizer

    monkeypatch.chdir(tmp_path)
    assert GPT.from_pretrained("tiny").source == bundle / "backbone"
    assert Tokenizer.from_pretrained("tiny").source == bundle / "tokenizer"
    scorer = AnomalyScorer.from_pretrained("tiny", methods=["nll"], device="cpu")
    assert scorer.tokenizer.source == bundle / "tokenizer"
    assert len(scorer.score(pipeline[3][:5])["nll"]) == 5
    # a folder of that name in the working folder is what a path means: it wins
    (tmp_path / "tiny").mkdir()
    with pytest.raises(FileNotFoundError, match="^tiny: not a backbone folder"):
        GPT.from_pretrained("tiny")
    with pytest.raises(FileNotFoundError, match=r"^nothing: no such backbone folder, nor the name of a bundled model "
                                                r"\(tiny\)$"):
        GPT.from_pretrained("nothing")


def test_a_backbone_folder_needs_its_tokenizer_named(backbone):  # noqa: F811
    from common.pretrained import paired_tokenizer

    with pytest.raises(UserError, match="give the tokenizer .* was trained with"):
        paired_tokenizer(backbone.source, None)
    assert paired_tokenizer(backbone.source, "some/folder") == Path("some/folder")


@pytest.mark.parametrize("damage", ["truncated", "a changed byte"])
def test_damaged_bundled_weights_are_refused_by_name(bundle, damage):
    from backbone.model import GPT

    weights = bundle / "backbone" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2:]
    else:
        data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"^{weights}: does not match the checksum in its config.json"):
        GPT.from_pretrained("tiny")


@needs_bundle
def test_the_bundled_model_fits_the_package_and_carries_its_card():
    from backbone.model import GPT
    from tokenizer.tokenizer import Tokenizer

    size = sum(f.stat().st_size for f in BUNDLED.rglob("*") if f.is_file())
    assert size <= 10 * 2**20
    model, tokenizer = GPT.from_pretrained("event-small"), Tokenizer.from_pretrained("event-small")
    assert tokenizer.vocab_size == 8192 and model.config.density_components > 0
    assert model.tokenizer_fingerprint == tokenizer.fingerprint
    card = (BUNDLED / "MODEL_CARD.md").read_text()
    for section in ("## Training data", "## Sizes", "## Held-out metrics", "## Known limits", "Licence"):
        assert section in card


@needs_bundle
@pytest.mark.e2e  # generates its sample with Pythia
def test_the_bundled_model_reproduces_its_recorded_scores():
    """The default scores of a fixed generated sample, against the means recorded when the model was
    packaged (benchmarks/bundle_model.py): equal to 1e-4 relative, float rounding across machines."""
    from benchmarks.bundle_model import check_values

    recorded = json.loads((BUNDLED / "metrics.json").read_text())["check"]
    again = check_values("event-small", "event-small")
    assert {k: again[k] for k in ("process", "events", "seed")} == {k: recorded[k] for k in ("process", "events", "seed")}
    for name, value in recorded["means"].items():
        assert again["means"][name] == pytest.approx(value, rel=1e-4), name


@needs_bundle
@pytest.mark.e2e  # a separate process
@pytest.mark.skipif(not REAL.is_file(), reason="shared real NanoAOD file not present")
def test_scoring_with_no_model_named_uses_the_bundled_one_and_says_so(tmp_path):
    from finetune.score_store import read_scores

    proc = subprocess.run([sys.executable, "-m", "finetune.anomaly", "score", "--input", str(REAL), "--out",
                           str(tmp_path / "scores.h5"), "--quiet"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "no --backbone named: using the bundled model event-small" in proc.stderr
    scores = read_scores(tmp_path / "scores.h5")
    assert len(scores["event"]) == 10 and np.isfinite(scores["density_nll"]).all()
    alone = subprocess.run([sys.executable, "-m", "finetune.anomaly", "score", "--tokenizer", "event-small",
                            "--input", str(REAL), "--out", str(tmp_path / "other.h5")], cwd=tmp_path,
                           capture_output=True, text=True)
    assert alone.returncode == 2 and "--tokenizer without --backbone" in alone.stderr


def test_commands_take_a_bundled_model_by_name(bundle, tmp_path, monkeypatch, caplog):
    """sample.py with --backbone NAME and no --tokenizer; the scoring default; a tokenizer named alone."""
    import argparse

    import common.pretrained
    import sample
    from common.cli import add_model_arguments, resolve_models
    from events.io import read_events

    assert sample.main(["--backbone", "tiny", "--events", "3", "--out", str(tmp_path / "s.h5"), "--process",
                        "ttbar", "--device", "cpu"]) == 0
    assert len(read_events(tmp_path / "s.h5")) == 3
    parser = argparse.ArgumentParser()
    add_model_arguments(parser, backbone="default")
    monkeypatch.setattr(common.pretrained, "DEFAULT_MODEL", "tiny")
    args = parser.parse_args([])
    with caplog.at_level("WARNING"):
        resolve_models(args)
    assert (args.backbone, args.tokenizer) == (bundle / "backbone", bundle / "tokenizer")
    assert "no --backbone named: using the bundled model tiny" in caplog.text
    with pytest.raises(UserError, match="--tokenizer without --backbone"):
        resolve_models(parser.parse_args(["--tokenizer", "tiny"]))
    tokenize = argparse.ArgumentParser()
    add_model_arguments(tokenize, backbone=None, tokenizer="required")
    args = tokenize.parse_args(["--tokenizer", "tiny"])
    resolve_models(args)
    assert args.tokenizer == bundle / "tokenizer"


def test_fine_tuning_takes_a_bundled_backbone_and_its_tokenizer(bundle):
    import argparse

    from finetune.classify import add_task_arguments, task_config

    parser = argparse.ArgumentParser()
    add_task_arguments(parser)
    args, overrides = parser.parse_known_args(["--backbone", "tiny", "--train", "a.h5"])
    cfg = task_config(parser, args, overrides)
    assert (cfg.backbone, cfg.tokenizer) == (str(bundle / "backbone"), str(bundle / "tokenizer"))


def test_a_backbone_that_is_neither_a_folder_nor_a_bundled_name_is_named_in_the_error(tmp_path, monkeypatch):
    from common.pretrained import bundled_models, paired_tokenizer

    monkeypatch.chdir(tmp_path)
    known = ", ".join(bundled_models()) or "none installed"
    with pytest.raises(UserError, match=f"^nowhere: no such backbone folder, nor the name of a bundled model "
                                        f"\\({known}\\)$"):
        paired_tokenizer("nowhere", None)
