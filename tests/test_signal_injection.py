"""benchmarks/signal_injection.py: the injection's fractions and disjoint samples, on synthetic rows."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import signal_injection as si  # noqa: E402


def pool(counts: dict[str, int]) -> np.ndarray:
    return np.array([p for p, n in counts.items() for _ in range(n)], dtype=object)


def test_injected_count_makes_the_fraction_of_the_data():
    assert si.injected_count(990, 0.01) == 10  # 10 / (990 + 10)
    assert si.injected_count(9700, 0.03) == 300
    assert si.injected_count(20000, 0.001) == 20


def test_mix_split_keeps_the_proportions_and_refuses_a_short_pool():
    processes = pool({"a": 600, "b": 300})
    assert si.mix_split(processes, 300, {"a": 2, "b": 1}) == {"a": 200, "b": 100}
    with pytest.raises(SystemExit, match="too few"):
        si.mix_split(processes, 600, {"a": 1, "b": 1})  # b would need 600 for data and reference


@pytest.mark.parametrize("fraction", [0.01, 0.03])
def test_split_honours_the_fraction_and_keeps_every_sample_disjoint(fraction):
    processes = pool({"a": 1000, "b": 500})
    counts = {"a": 400, "b": 200}
    split = si.split_events(processes, counts, 200, fraction, 0.03, seed=3)
    assert len(split.injected) == si.injected_count(600, fraction)
    assert len(split.injected) / (len(split.data) + len(split.injected)) == pytest.approx(fraction, rel=0.05)
    assert not set(split.data) & set(split.reference)  # SM rows in both: never
    assert not set(split.injected) & set(split.test_signal)
    for rows in (split.data, split.reference):
        assert (processes[rows] == "a").sum() == 400 and (processes[rows] == "b").sum() == 200
    # the tested signal is what the largest fraction leaves, the same at every fraction of a seed
    assert len(split.test_signal) == 200 - si.injected_count(600, 0.03)
    other = si.split_events(processes, counts, 200, 0.001, 0.03, seed=3)
    np.testing.assert_array_equal(np.sort(other.test_signal), np.sort(split.test_signal))
    assert set(other.injected) <= set(split.injected)
    moved = si.split_events(processes, counts, 200, fraction, 0.03, seed=4)
    assert not np.array_equal(np.sort(moved.test_signal), np.sort(split.test_signal))


def test_the_held_out_test_sample_is_fixed_and_never_drawn_again():
    processes = pool({"a": 900, "b": 450})
    counts = si.mix_split(processes, 450, {"a": 2, "b": 1}, samples=3)
    test = si.held_out(processes, counts)
    np.testing.assert_array_equal(test, si.held_out(processes, counts))
    assert (processes[test] == "a").sum() == 300 and (processes[test] == "b").sum() == 150
    rest = processes.copy()
    rest[test] = ""  # as run() leaves them out of the pool
    for seed in (0, 1):
        split = si.split_events(rest, counts, 100, 0.01, 0.03, seed)
        assert not set(test) & (set(split.data) | set(split.reference))
    with pytest.raises(SystemExit, match="too few"):
        si.mix_split(processes, 453, {"a": 2, "b": 1}, samples=3)  # a: 3 x 302 > 900


def test_split_refuses_an_injection_that_leaves_no_signal_to_test():
    with pytest.raises(SystemExit, match="none would be left"):
        si.split_events(pool({"a": 1000}), {"a": 400}, 12, 0.03, 0.03, seed=0)  # 12 injected of 12
    with pytest.raises(ValueError, match="fractions"):
        si.split_events(pool({"a": 1000}), {"a": 400}, 100, 0.05, 0.03, seed=0)


def test_summary_goal_and_table_from_rows():
    def row(method, seed, sic):
        return {"signal": "x", "fraction": 0.01, "seed": seed, "method": method, "auc": 0.5 + sic / 100,
                "sic_0.01": sic, "sic_0.001": sic, "sic_0.01_boot": 0.1, "sic_0.001_boot": 0.2}

    sic = {**{m: 1.0 for m in si.UNSUPERVISED}, **{r: 2.0 for r in si.REFERENCES}, "HT": 3.0, "bdt_sm": 9.0,
           "bdt_generated": 1.0}
    rows = [row(m, seed, v + seed) for seed in (0, 1) for m, v in sic.items()]
    summary = si.summarize(rows)
    assert summary["x"]["0.01"]["bdt_sm"]["sic_0.01"] == [9.5, 0.5]  # mean and half range of 9 and 10
    assert summary["x"]["0.01"]["HT"]["sic_0.01"] == [3.5, 0.5]
    goal = si.goal(summary)["x"]["sic_0.01"]
    assert (goal["best_weak"], goal["best_cut"], goal["ratio"]) == ("bdt_sm", "HT", pytest.approx(9.5 / 3.5))
    table = si.markdown({"summary": summary, "injected": {"x": {"0.01": 10}}, "goal": si.goal(summary)})
    assert "| x | 1.0% (10) | 3.5 ± 0.5 (HT) |" in table and "2.71x" in table
    assert "| x | 1.0%" not in si.markdown({"summary": summary, "injected": {"x": {"0.01": 10}}, "goal": {}},
                                           fractions=(0.03,))


def test_bdt_scores_find_a_shifted_class_out_of_fold():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (400, 2)), rng.normal(2, 1, (400, 2))]
    y = np.r_[np.zeros(400), np.ones(400)]
    test = np.array([[-2.0, -2.0], [4.0, 4.0]])
    p = si.bdt_scores(x, y, test, seed=0, folds=2)
    assert p[0] < 0.2 < 0.8 < p[1]
