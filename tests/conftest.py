"""Shared fixtures: small generated samples (made once per session) and marker handling."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HZZ = REPO.parent / "shared" / "data" / "cms-hep-tutorial-hzz.root"


#: session fixtures built by Pythia generation and training: a test that uses one is end to end
GENERATED = {"ttbar", "wjets", "top_jets", "qcd_jets", "data_files", "trained", "backbone", "hybrid_backbone",
             "ordered_backbone"}


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end to end (generated samples, trained models, CLIs, signals); "
                                       "the fast tier is -m 'not e2e'")


def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get("RUN_SLOW") == "1"
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    for item in items:
        if GENERATED & set(getattr(item, "fixturenames", ())) or "slow" in item.keywords:
            item.add_marker(pytest.mark.e2e)
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: set RUN_SLOW=1"))
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture(scope="session")
def hzz_path() -> Path:
    if not HZZ.is_file():
        pytest.skip(f"{HZZ} not present (it ships in ../shared)")
    return HZZ


def _generate(process: str, n: int, seed: int = 11, workers: int = 2, block_size: int = 250):
    from events.model import Events
    from events.pythia import GenerateConfig, generate

    return Events.concatenate(generate(process, n, seed=seed, workers=workers,
                                       config=GenerateConfig(block_size=block_size), progress=False))


@pytest.fixture(scope="session")
def ttbar():
    return _generate("ttbar", 2000)


@pytest.fixture(scope="session")
def wjets():
    return _generate("wjets", 500)


@pytest.fixture(scope="session")
def top_jets():
    return _generate("top_jets", 300, block_size=200)


@pytest.fixture(scope="session")
def qcd_jets():
    return _generate("qcd_jets", 300, block_size=200)


#: a small tokenizer that trains in seconds (short-run codebook settings, see ModelConfig)
SMALL = ["model.codebook_size=256", "model.hidden=64", "model.depth=2", "model.decay=0.9",
         "model.dead_code_fraction=0.3", "train.batch_size=512", "train.epochs=20",
         "train.lr=0.003", "train.device=cpu", "compare_autoencoder=false", "information_loss=false"]


@pytest.fixture(scope="session")
def data_files(tmp_path_factory, ttbar, wjets):
    """The session's ttbar and W+jets samples as HDF5 files."""
    from events.io import write_events

    folder = tmp_path_factory.mktemp("tokdata")
    write_events(ttbar, folder / "ttbar.h5")
    write_events(wjets, folder / "wjets.h5")
    return [str(folder / "ttbar.h5"), str(folder / "wjets.h5")]


@pytest.fixture(scope="session")
def trained(tmp_path_factory, data_files):
    """A small event-mode tokenizer trained on them: (Tokenizer, metrics, folder)."""
    from common.config import load_config
    from tokenizer.config import TokenizerTrainConfig
    from tokenizer.tokenizer import Tokenizer
    from tokenizer.train import run

    out = tmp_path_factory.mktemp("tok")
    cfg = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/event.yaml",
                      SMALL + [f"data.files={data_files}", f"out={out}"])
    metrics = run(cfg, progress=False)
    return Tokenizer.from_pretrained(out), metrics, out


def _pretrain(trained, data_files, folder: Path, **model):
    """A tiny conditional backbone with a density head pretrained on the tokenized ttbar sample, with the
    `model` settings given: (backbone folder, tokenizer folder)."""
    from backbone.config import PretrainConfig
    from backbone.pretrain import run
    from common.config import from_dict
    from tokenizer.store import TokenWriter
    from tokenizer.tokenize import tokenize_into

    tokenizer, _, tok_folder = trained
    with TokenWriter.for_tokenizer(folder / "tokens.h5", tokenizer, tok_folder, features=True) as writer:
        tokenize_into(writer, tokenizer, data_files[0], features=True)
    cfg = from_dict(PretrainConfig, {"model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "density_components": 4,
                                               **model},
                                     "data": {"train": str(folder / "tokens.h5"), "conditional": True},
                                     "train": {"batch_size": 64, "max_steps": 300, "eval_every": 100, "lr": 0.003,
                                               "warmup_steps": 10, "device": "cpu"}, "out": str(folder / "run")})
    run(cfg, progress=False)
    return folder / "run", tok_folder


@pytest.fixture(scope="session")
def backbone(trained, data_files, tmp_path_factory):
    return _pretrain(trained, data_files, tmp_path_factory.mktemp("backbone"))


@pytest.fixture(scope="session")
def hybrid_backbone(trained, data_files, tmp_path_factory):
    """The same with the hybrid input (token store written with --features)."""
    return _pretrain(trained, data_files, tmp_path_factory.mktemp("hybrid"), hybrid=True)


@pytest.fixture(scope="session")
def ordered_backbone(trained, data_files, tmp_path_factory):
    """The hybrid with the density head trained on the pt-ordered density (as the event configs)."""
    return _pretrain(trained, data_files, tmp_path_factory.mktemp("ordered"), hybrid=True, density_pt_order=True)


@pytest.fixture()
def drawn(monkeypatch):
    """The event indices of every batch the training loop takes, with the step it is taken at."""
    from common.training import TrainingRun

    log, epoch = [], TrainingRun.epoch

    def logged(self, batches):
        for batch in epoch(self, batches):
            log.append((self.state["step"], sorted(int(i) for i in batch)))
            yield batch
    monkeypatch.setattr(TrainingRun, "epoch", logged)
    monkeypatch.setattr("backbone.pretrain.plot_losses", lambda *args: None)  # not under test: save the time
    return log
