"""Tensors made on the default device inside model, training, scoring and sampling code.

CI has no GPU, so device mix-ups (a tensor built without `device=` beside a model on CUDA) are caught
on the CPU by moving the *default* device elsewhere: under `elsewhere()` every tensor that the
project's own code makes without an explicit device lands on meta, while the models and their inputs
live on the CPU, as a CUDA run has them on another device than the default. Mixing the two then fails
as it would on a GPU ("is not on the expected device", "Cannot copy out of meta tensor"). Libraries
(torch, vector-quantize-pytorch) keep the real default: they run on GPUs elsewhere, and some copy host
scalars into device buffers, which CUDA allows.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from tests.test_training import synthetic_events

REPO = Path(__file__).resolve().parent.parent
LIBRARIES = (str(REPO / ".venv"), "site-packages")


class ProjectTensorsElsewhere(TorchFunctionMode):
    """Tensor constructors called without a device from the project's code make meta tensors."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if kwargs.get("device") is None and func in _device_constructors():
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(str(REPO)) and not any(lib in caller for lib in LIBRARIES):
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


def elsewhere() -> ProjectTensorsElsewhere:
    return ProjectTensorsElsewhere()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A tiny tokenizer, its token store with features, and a conditional backbone with a density head
    built (not trained) on it: all that the code under test needs, made in a few seconds."""
    from backbone.config import PretrainConfig
    from backbone.data import TokenSequences
    from common.config import from_dict, load_config
    from tests.conftest import REPO, SMALL
    from tokenizer.config import TokenizerTrainConfig
    from tokenizer.store import TokenWriter
    from tokenizer.train import split, train_model

    folder = tmp_path_factory.mktemp("device")
    cfg = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/event.yaml",
                      SMALL + ["train.epochs=1", "train.batch_size=256"])
    events = synthetic_events(400)
    tokenizer, _ = train_model(cfg, cfg.model, *split(events, 0.2, 0), folder / "tok", progress=False)
    tokenizer.save_pretrained(folder / "tok")
    events.process_names = ("ttbar",)
    events.info["process"] = np.zeros(len(events), np.int16)
    with TokenWriter.for_tokenizer(folder / "tokens.h5", tokenizer, folder / "tok", features=True) as writer:
        writer.write(tokenizer.encode(events, features=True))
    # the type head and the pt-ordered density as the event configs have them: each has a buffer of its own
    cfg = from_dict(PretrainConfig, {"model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "density_components": 2,
                                               "type_head": True, "density_pt_order": True},
                                     "data": {"train": str(folder / "tokens.h5"), "conditional": True},
                                     "train": {"batch_size": 32, "device": "cpu"}, "out": str(folder / "run")})
    return tokenizer, TokenSequences.from_store(folder / "tokens.h5", True), cfg, events


def test_set_up_and_a_training_step(pipeline):
    from backbone.pretrain import build_model, losses

    tokenizer, data, cfg, _ = pipeline
    model = build_model(cfg, data, data, torch.device("cpu"))
    batch, features = data.tensors(np.arange(32), "cpu")
    with elsewhere():
        model = build_model(cfg, data, data, torch.device("cpu"))
        terms = losses(model, batch, data, 0.35, torch.Generator().manual_seed(0), torch.autocast("cpu", enabled=False),
                       process_dropout=0.5, features=features, density=True, group=True)
        (sum(terms[:3]) + terms.group).backward()
    assert all(t.device.type == "cpu" and torch.isfinite(t) for t in terms)


def saved_backbone(pipeline, folder, hybrid: bool = False):
    """The backbone of `pipeline` (with the hybrid input and feature logits, their basis widened by an MLP and
    the four-momentum terms, where `hybrid`), saved and loaded as users load it."""
    from dataclasses import replace

    from backbone.model import GPT
    from backbone.pretrain import build_model, save_backbone

    _, data, cfg, _ = pipeline
    cfg = replace(cfg, model=replace(cfg.model, hybrid=hybrid, feature_logits=hybrid, feature_logits_width=8 * hybrid,
                                     momentum_logits=hybrid))
    save_backbone(build_model(cfg, data, data, torch.device("cpu")), data, cfg, folder, {})
    return GPT.from_pretrained(folder)


@pytest.fixture(scope="module")
def backbone(pipeline, tmp_path_factory):
    return saved_backbone(pipeline, tmp_path_factory.mktemp("backbone"))


@pytest.fixture(scope="module")
def hybrid_backbone(pipeline, tmp_path_factory):
    """Sampling from it feeds each drawn object's features back as the next step's input."""
    return saved_backbone(pipeline, tmp_path_factory.mktemp("hybrid"), hybrid=True)


def test_every_score_method(pipeline, backbone):
    from finetune.model import Classifier
    from finetune.config import HeadSection
    from finetune.scorer import AnomalyScorer

    tokenizer, _, _, events = pipeline
    classifier = Classifier.from_backbone(backbone, 2, HeadSection(), "frozen")
    scorer = AnomalyScorer(backbone, tokenizer, ["density", "nll", "masked", "quantization", "calibrated", "head"],
                           classifier, n_masks=2, head_epochs=1, head_events=100)
    with elsewhere():
        scorer.fit(events[:100])  # the calibrated method's calibration is made here
        scores = scorer.score(events[100:200])
    assert set(scores) >= {"density_nll", "surprise", "nll", "masked", "quantization", "entropy", "head", "calibrated"}
    assert len(scores["nll"]) == 100


@pytest.mark.parametrize("decode", ["continuous", "centroid"])
@pytest.mark.parametrize("hybrid", [False, True])
def test_sampling(pipeline, backbone, hybrid_backbone, decode, hybrid):
    from backbone.sampling import sample_events

    tokenizer = pipeline[0]
    model = hybrid_backbone if hybrid else backbone
    with elsewhere():
        # the hybrid backbone samples guided (a second, unknown-process stream), the other one plain
        events = list(sample_events(model, tokenizer, 20, process="ttbar", batch_size=8, decode=decode,
                                    guidance=1.5 if hybrid else 1.0))
    assert sum(len(e) for e in events) == 20


def test_pretraining_run(pipeline, tmp_path):
    from backbone.pretrain import run
    from common.config import to_dict, from_dict
    from backbone.config import PretrainConfig

    _, _, cfg, _ = pipeline
    raw = to_dict(cfg)
    raw["train"].update(max_steps=2, eval_every=1, process_dropout=0.5)
    raw["out"] = str(tmp_path / "run")
    with elsewhere():
        result = run(from_dict(PretrainConfig, raw), progress=False)
    assert result["steps"] == 2


def test_tokenizer_training_and_tokenizing(tmp_path):
    from common.config import load_config
    from tests.conftest import REPO, SMALL
    from tokenizer.config import TokenizerTrainConfig
    from tokenizer.train import split, train_model

    cfg = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/event.yaml",
                      SMALL + ["train.epochs=1", "train.batch_size=256"])
    events = synthetic_events(300)
    with elsewhere():
        tokenizer, _ = train_model(cfg, cfg.model, *split(events, 0.2, 0), tmp_path, progress=False)
        tokens = tokenizer.encode(events, features=True)
        decoded = tokenizer.decode(tokens)
        tokenizer.encode_with_residuals(events)
    assert len(decoded) == len(events)


def test_likelihood_against_the_per_code_gaussian(pipeline, backbone):
    from backbone.likelihood import compare

    data = pipeline[1]
    with elsewhere():
        out = compare(backbone, data, data)
    assert out["objects"] == len(data.codes)
