"""The built-in configs ship with the package and are found from any working folder: `configs/...`
paths (the CLIs' defaults), the readers' branch maps and the b-tag working points."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from common.config import CONFIG_ROOT, ConfigError, config_path, load_config
from events.io import read_events
from tests.conftest import REPO
from tests.test_root import write_nanoaod
from tokenizer.config import TokenizerTrainConfig

BUILTIN = sorted(p.relative_to(REPO) for p in (REPO / "configs").rglob("*.yaml"))


def run_elsewhere(folder, *args):
    """`python ARGS` with `folder` (not the repository) as the working folder."""
    return subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=300)


def test_the_built_in_configs_are_the_source_trees():
    assert CONFIG_ROOT == REPO / "configs" and BUILTIN


@pytest.mark.parametrize("name", [str(p) for p in BUILTIN])
def test_every_built_in_config_is_found_from_another_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_path(name) == REPO / name


def test_load_config_of_a_built_in_config_from_another_folder(tmp_path, monkeypatch):
    expected = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/event.yaml", ["--train.epochs=2"])
    monkeypatch.chdir(tmp_path)
    assert load_config(TokenizerTrainConfig, "configs/tokenizer/event.yaml", ["--train.epochs=2"]) == expected


def test_a_config_in_the_working_folder_comes_first(tmp_path, monkeypatch):
    (tmp_path / "configs" / "tokenizer").mkdir(parents=True)
    (tmp_path / "configs" / "tokenizer" / "event.yaml").write_text("out: mine\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(TokenizerTrainConfig, "configs/tokenizer/event.yaml").out == "mine"


def test_a_missing_config_is_named_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_path("my.yaml") == Path("my.yaml")
    with pytest.raises(ConfigError, match=r"^configs/tokenizer/nosuch\.yaml: config file not found"):
        load_config(TokenizerTrainConfig, "configs/tokenizer/nosuch.yaml")


def test_nanoaod_is_read_with_the_built_in_branch_map_from_another_folder(tmp_path, monkeypatch):
    path = tmp_path / "nano.root"
    write_nanoaod(path)
    monkeypatch.chdir(tmp_path)
    events = read_events(path.name)  # format detected with the built-in schemas, b-tag working points
    assert len(events) == 3


@pytest.mark.e2e
def test_clis_run_from_another_folder_with_default_config_paths(tmp_path):
    write_nanoaod(tmp_path / "nano.root")
    convert = run_elsewhere(tmp_path, "-m", "events.convert", "nano.root", "nano.h5")
    assert convert.returncode == 0, convert.stderr
    assert len(read_events(tmp_path / "nano.h5")) == 3
    # the default --config (configs/tokenizer/event.yaml) is found: the error is about the data, not the config
    train = run_elsewhere(tmp_path, "-m", "tokenizer.train")
    assert train.returncode == 2 and "config file not found" not in train.stderr, train.stderr
    assert "no input files" in train.stderr


@pytest.mark.slow
def test_the_wheel_holds_every_built_in_config(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("common", "events", "tokenizer", "backbone", "finetune", "configs", "models"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("colliderfm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {str(p) for p in BUILTIN} <= names and "configs/__init__.py" in names
    bundled = {str(p.relative_to(REPO)) for p in (REPO / "models").rglob("*") if p.is_file()}
    assert bundled and bundled <= names
    # installed into a folder of its own and used from another, with no checkout on the path: the bundled
    # model loads by name, from the installed copy
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    code = ("from finetune import AnomalyScorer; s = AnomalyScorer.from_pretrained('event-small', device='cpu'); "
            "print(s.backbone.source); print(s.tokenizer.source)")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [str(site / "models/event-small/backbone"), str(site / "models/event-small/tokenizer")]
