"""benchmarks/process_cuts.py: the one-variable cuts a process classifier is compared with."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_each_cut_is_placed_in_its_better_direction():
    import numpy as np
    from process_cuts import cut_aucs

    y = np.array([0, 0, 1, 1])
    # class 1 against 0: 3 of the 4 pairs ordered (2 > 1, 4 > 1, 4 > 3); class 0 the reverse, 1/4 -> 3/4
    r = cut_aucs({"x": np.array([1.0, 3.0, 2.0, 4.0]), "perfect": np.array([4.0, 3.0, 2.0, 1.0])}, y, ["a", "b"])
    assert r["x"]["auc"] == {"a": 0.75, "b": 0.75} and r["x"]["mean_auc"] == 0.75
    assert r["perfect"]["auc"] == {"a": 1.0, "b": 1.0}


def test_the_cli_names_processes_after_their_files(data_files, tmp_path):
    from process_cuts import main

    files = []
    for f, name in zip(data_files, ("ttbar_s2.h5", "wjets_s2.h5")):
        (tmp_path / name).symlink_to(f)
        files.append(str(tmp_path / name))
    out = tmp_path / "cuts.json"
    main(["--test", *files, "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["classes"] == ["ttbar", "wjets"]
    # two classes: one against the rest is the same cut either way. W+jets has about 1.4 jets, ttbar 4.8
    jets = r["cuts"]["jets"]["auc"]
    assert jets["ttbar"] == pytest.approx(jets["wjets"]) and jets["ttbar"] > 0.9
