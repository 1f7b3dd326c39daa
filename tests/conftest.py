"""Shared fixtures: small generated samples (made once per session) and marker handling."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HZZ = REPO.parent / "shared" / "data" / "cms-hep-tutorial-hzz.root"


def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get("RUN_SLOW") == "1"
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    for item in items:
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
