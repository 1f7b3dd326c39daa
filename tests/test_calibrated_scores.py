"""The `calibrated` score: the density split exactly into composition and kinematics, empirical tail
probabilities against a reference, p-values uniform for every object count, per-object blame from
each type's own quantiles, and its options."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.errors import UserError
from finetune.calibration import Calibration, EmpiricalTail, class_of, multiplicity_classes
from tests.test_device_placement import backbone, pipeline  # noqa: F401 (fixtures: a tiny tokenizer and backbone)

JET, MUON = 1, 3


def test_empirical_tail_probabilities_by_hand():
    tail = EmpiricalTail.fit(np.array([3.0, 1.0, 4.0, 2.0]))
    # (1 + #{values >= x}) / (n + 1)
    np.testing.assert_allclose(np.exp(tail.log_p(np.array([0.0, 2.5, 4.0]))), [5 / 5, 3 / 5, 2 / 5])
    # beyond the largest: 1/(n + 1), decaying with the mean excess of the largest values (0, 1, 2, 3 over 1)
    assert tail.scale == 1.5
    np.testing.assert_allclose(tail.log_p(np.array([4.0 + 1.5])), [math.log(1 / 5) - 1])
    # the reference's own values leave themselves out: #{values >= x} / n
    np.testing.assert_allclose(np.exp(tail.log_p_own(np.array([1.0, 2.0, 3.0, 4.0]))), [1, 3 / 4, 2 / 4, 1 / 4])


def test_sparse_object_counts_are_pooled_into_classes():
    counts = np.repeat([1, 2, 3, 4, 5], [50, 300, 100, 30, 10])
    # 1 alone is too few: it takes 2; 3 holds 100; 4 and 5 (40) are too few: they join 3
    starts = multiplicity_classes(counts, 100)
    assert starts.tolist() == [1, 3]
    assert class_of(np.array([0, 1, 2, 3, 4, 5, 9]), starts).tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert multiplicity_classes(counts, 1).tolist() == [1, 2, 3, 4, 5]
    assert multiplicity_classes(counts, 10_000).tolist() == [1]


def synthetic_parts(n_events: int, rng: np.random.Generator) -> dict:
    """Events of 1-5 jets and muons whose per-object kinematic NLL has a per-type offset (a muon 6
    nats more than a jet) and grows with the object count, and whose composition NLL grows with the
    count and the muons: what the real model's terms do, and what a calibration must remove."""
    counts = rng.integers(1, 6, n_events)
    n_objects = int(counts.sum())
    types = np.where(rng.random(n_objects) < 0.3, MUON, JET)
    per_event = np.repeat(counts, counts)
    kinematics = np.where(types == MUON, 10.0, 4.0) + 0.5 * per_event + rng.gamma(2.0, 1.0, n_objects)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    muons = np.bincount(np.repeat(np.arange(n_events), counts), types == MUON, minlength=n_events)
    composition = 2.0 * counts + 3.0 * muons + rng.normal(0, 1, n_events)
    return {"composition": composition, "kinematics": kinematics, "type": types, "offsets": offsets}


def ks_distance(p: np.ndarray) -> float:
    """sup_t |ECDF(t) - t| of p-values p."""
    q, n = np.sort(p), len(p)
    return float(max(np.max(np.arange(1, n + 1) / n - q), np.max(q - np.arange(n) / n)))


def test_calibrated_p_values_are_uniform_for_every_object_count():
    """Held-out draws from the reference's distribution get uniform p-values exp(-calibrated) for each
    object count. The bound: the held-out p-values' ECDF strays from their distribution given the
    reference by a one-sample KS distance of m events, and that distribution from uniform by one of
    the n_c reference events of the class and its grid 1/(n_c + 1); each KS quantile exact for its
    size (scipy's kstwo), at 1e-3."""
    from scipy.stats import kstwo

    rng = np.random.default_rng(7)
    calibration = Calibration.fit(synthetic_parts(10_000, rng), min_events=500)
    assert calibration.starts.tolist() == [1, 2, 3, 4, 5]  # each count has about 2,000: a class of its own
    held_out = synthetic_parts(10_000, rng)
    p = np.exp(-calibration.score(held_out)["calibrated"])
    counts = np.diff(held_out["offsets"])
    for n, reference in zip(calibration.starts, calibration.class_events):
        mine = p[counts == n]
        bound = kstwo(len(mine)).isf(1e-3) + kstwo(reference).isf(1e-3) + 2 / (reference + 1)
        assert ks_distance(mine) < bound, (n, ks_distance(mine), bound)
    assert abs((p < 0.05).mean() - 0.05) < 0.01  # 500 expected of 10,000: 4.5 sigma is 0.01
    # the raw composition NLL is not: it follows the count
    assert np.corrcoef(held_out["composition"], counts)[0, 1] > 0.8
    assert abs(np.corrcoef(-np.log(p), counts)[0, 1]) < 0.05


def test_per_object_blame_comes_from_each_types_own_quantiles():
    """A muon at its type's median costs more nats than a jet at its type's 90th percentile, but it is the
    jet that is unusual: -log u is about ln 2 for the muon and ln 10 for the jet."""
    jets, muons = np.linspace(0, 10, 1001), np.linspace(10, 20, 1001)
    reference = {"kinematics": np.r_[jets, muons], "type": np.repeat([JET, MUON], 1001),
                 "composition": np.zeros(1001), "offsets": np.arange(0, 2003, 2)}
    calibration = Calibration.fit(reference, min_events=100)
    blame = calibration.object_surprise(np.array([15.0, 9.0]), np.array([MUON, JET]))
    np.testing.assert_allclose(blame, [math.log(1002 / 502), math.log(1002 / 102)])
    # a type the reference holds too few of is measured against every object
    assert calibration.object_surprise(np.array([9.0]), np.array([5]))[0] == pytest.approx(math.log(2003 / 1103))


def test_composition_and_kinematics_split_the_density_exactly(pipeline, backbone):  # noqa: F811
    """composition + the objects' kinematics = density_nll, and the composition is the softmax summed over
    each type's codes (and the end token), computed by hand for one event."""
    from finetune.scores import composition_kinematics, density_scores

    tokenizer, seqs = pipeline[0], pipeline[1]
    code_types = tokenizer.code_types()
    parts = composition_kinematics(backbone, seqs, "cpu", code_types, batch_size=64)
    kinematics = np.bincount(np.repeat(np.arange(len(seqs)), np.diff(seqs.offsets)), parts["kinematics"])
    density = density_scores(backbone, seqs, "cpu", batch_size=64)["density_nll"]
    np.testing.assert_allclose(parts["composition"] + kinematics, density, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(parts["type"], code_types[seqs.codes])

    idx, features = seqs.tensors(np.array([0]), "cpu")
    with torch.no_grad():
        hybrid = features[:, :-1] if backbone.config.n_features else None
        probs = torch.softmax(backbone(idx[:, :-1], features=hybrid)[0][0].double(), -1).numpy()
    targets = idx[0, 1:].numpy()
    vocab = seqs.vocab
    expected = 0.0
    for position, target in enumerate(targets):
        if target == vocab.eos:
            expected -= math.log(probs[position, vocab.eos])
        elif target < vocab.n_codes:
            same_type = np.flatnonzero(code_types == code_types[target])
            expected -= math.log(probs[position, same_type].sum())
    assert parts["composition"][0] == pytest.approx(expected, rel=1e-5)


def test_the_scorer_calibrates_on_its_reference_and_keeps_the_blame(pipeline, backbone):  # noqa: F811
    from finetune.scorer import AnomalyScorer

    tokenizer, events = pipeline[0], pipeline[3]
    scorer = AnomalyScorer(backbone, tokenizer, ["calibrated"], device="cpu")
    with pytest.raises(UserError, match="method calibrated needs --reference"):
        scorer.score(events[:5])
    assert scorer.fit(events[:300]).methods == ["calibrated"]  # no head added: a named method uses the reference
    scores = scorer.score(events[300:])
    for column in ("calibrated", "composition", "kinematics"):
        assert np.all(scores[column] >= 0) and np.std(scores[column]) > 0, column
    counts = np.asarray([len(o) for o in events[300:].objects])
    assert np.all(scores["worst_object"] < counts) and np.all(scores["worst_object"] >= 0)


def test_class_events_sets_the_multiplicity_classes(pipeline, backbone):  # noqa: F811
    from finetune.scorer import AnomalyScorer

    tokenizer, events = pipeline[0], pipeline[3]
    fine = AnomalyScorer(backbone, tokenizer, ["calibrated"], device="cpu", class_events=40).fit(events[:300])
    coarse = AnomalyScorer(backbone, tokenizer, ["calibrated"], device="cpu", class_events=300).fit(events[:300])
    assert len(fine.calibration.starts) > 1 and min(fine.calibration.class_events) >= 40
    assert coarse.calibration.class_events == [300]
    assert not np.allclose(fine.score(events[300:])["calibrated"], coarse.score(events[300:])["calibrated"])
    with pytest.raises(UserError, match="class_events"):
        AnomalyScorer(backbone, tokenizer, ["calibrated"], device="cpu", class_events=0)


def test_the_cli_scores_calibrated_with_class_events(pipeline, backbone, tmp_path):  # noqa: F811
    from events.io import write_events
    from finetune.anomaly import main
    from finetune.score_store import read_object_scores, read_scores

    tokenizer, events = pipeline[0], pipeline[3]
    write_events(events[:300], tmp_path / "reference.h5")
    write_events(events[300:], tmp_path / "data.h5")
    tables = {}
    for k in (40, 300):
        out = tmp_path / f"scores{k}.h5"
        assert main(["score", "--backbone", str(backbone.source), "--tokenizer", str(tokenizer.source), "--input",
                     str(tmp_path / "data.h5"), "--reference", str(tmp_path / "reference.h5"), "--method",
                     "calibrated", "--class-events", str(k), "--out", str(out), "--device", "cpu", "--quiet"]) == 0
        tables[k] = read_scores(out)
    assert {"calibrated", "composition", "kinematics", "worst_object"} <= set(tables[40]) and "head" not in tables[40]
    assert not np.allclose(tables[40]["calibrated"], tables[300]["calibrated"])
    blame = read_object_scores(tmp_path / "scores40.h5")["kinematics"]
    assert len(blame) == 100 and np.all(np.asarray([len(b) for b in blame]) == [len(o) for o in events[300:].objects])
