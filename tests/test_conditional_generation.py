"""benchmarks/conditional_generation.py: where generated multiplicities go wrong, on hand-made events."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from common.errors import UserError
from events.model import Caps, Events, ObjectType as T, assemble, make_objects
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import conditional_generation as cg  # noqa: E402


def test_jet_hazards_are_the_chance_that_another_jet_follows_k_jets():
    """Events with 0, 1, 2, 2 and 4 jets (b-jets count as jets): P(n > k | n >= k) by hand is 4/5, 3/4,
    1/3, 1, 0, and undefined beyond four jets."""
    n_jets = [0, 1, 2, 2, 4]
    types = [T.BJET if i == 0 else T.JET for n in n_jets for i in range(n)]
    jets = make_objects(n_jets, type=types, pt=np.linspace(200, 20, len(types)))
    met = make_objects([1] * len(n_jets), type=T.MET, pt=np.full(len(n_jets), 10.0))
    objects, _ = assemble((jets, met), Caps())
    hazards = cg.jet_hazards(Events(objects, {}))
    assert hazards[:5] == [0.8, 0.75, 1 / 3, 1.0, 0.0]
    assert hazards[5:] == [None] * (cg.MAX_JETS - 5)


def test_teacher_forced_loss_is_that_of_the_guided_distribution(backbone):
    """At guidance 0 the guided distribution is the unknown-process model's: the loss equals a pass with
    MASK in the process slot, by hand; at guidance 1 it is the conditional model's: a pass with the
    process token, by hand."""
    import torch

    from backbone.data import TokenSequences
    from backbone.model import GPT
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    model, tokenizer, store = GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok), bb.parent / "tokens.h5"
    data = TokenSequences.from_store(store, True, model.vocab)
    rows = np.flatnonzero(data.process_tokens == model.vocab.process_token("ttbar"))

    def by_hand(process_slot: int) -> float:
        total, count = 0.0, 0
        with torch.no_grad():
            for i in rows:
                seq = data.batch(np.array([i]))
                seq[0, 1] = process_slot
                logits = model(seq[:, :-1])[0][0, 1:].float()  # the position after the process slot on
                targets = seq[0, 2:]
                keep = targets != model.vocab.pad
                total += float(torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum"))
                count += int(keep.sum())
        return total / count
    masked, given = by_hand(model.vocab.mask), by_hand(model.vocab.process_token("ttbar"))
    # the two passes must be told apart for the test to mean anything (the fixture's backbone reads the process)
    assert abs(given - masked) > 3e-4
    unknown, _ = cg.teacher_forced(model, tokenizer, store, "ttbar", guidance=0.0)
    conditional, _ = cg.teacher_forced(model, tokenizer, store, "ttbar", guidance=1.0)
    assert abs(unknown - masked) < 1e-4 and abs(conditional - given) < 1e-4


def test_the_benchmark_samples_with_the_guidance_and_nucleus_it_is_given(backbone, data_files, tmp_path, monkeypatch):
    """--guidance, --top-p and --decode reach the sampler and the saved results."""
    import json

    import backbone.sampling as sampling

    bb, tok = backbone
    seen, real = [], sampling.sample_events
    monkeypatch.setattr(sampling, "sample_events", lambda *a, **k: seen.append(k) or real(*a, **k))
    out = tmp_path / "cg.json"
    assert cg.main(["--backbone", str(bb), "--tokenizer", str(tok), "--store", str(bb.parent / "tokens.h5"),
                    "--real", data_files[0], "--events", "20", "--top-p", "0.5", "--guidance", "1.5",
                    "--decode", "centroid", "--out", str(out)]) == 0
    assert [(k["top_p"], k["guidance"], k["decode"]) for k in seen] == [(0.5, 1.5, "centroid")]
    saved = json.loads(out.read_text())
    assert (saved["top_p"], saved["guidance"], saved["decode"]) == (0.5, 1.5, "centroid") and saved["processes"]["ttbar"]["n_generated"] == 20
    # --seed reaches the sampler, through the process's own stream
    assert cg.main(["--backbone", str(bb), "--tokenizer", str(tok), "--store", str(bb.parent / "tokens.h5"),
                    "--real", data_files[0], "--events", "20", "--seed", "5", "--out", str(out)]) == 0
    assert seen[-1]["seed"] == cg.process_seed(5, "ttbar") == json.loads(out.read_text())["processes"]["ttbar"]["seed"]


def test_each_process_samples_from_a_stream_of_its_own():
    """One seed for every process drew them all with the same noise; each backbone keeps the same streams."""
    seeds = {p: cg.process_seed(1, p) for p in ("ttbar", "wjets", "ww")}
    assert len(set(seeds.values())) == 3 and seeds["ttbar"] == cg.process_seed(1, "ttbar") != cg.process_seed(2, "ttbar")


def test_the_exact_count_fit_w1_by_hand():
    """Token rows (jets, b-jets, leptons) (0,0,0) (1,0,0) (1,1,0) (2,0,1) with P 0.1 0.2 0.3 0.4; real events
    with (jets incl. b-jets, b-jets, leptons) (1,0,0) and (2,1,1).
    jets: model 0 / 1 / 2 / 3 with 0.1 / 0.2 / 0.3 + 0.4 / 0 (the third row has 2: a jet and a b-jet),
    CDF 0.1, 0.3, 1; real CDF 0, 0.5, 1: W1 0.1 + 0.2 = 0.3.
    b-jets: model P(1) 0.3, CDF(0) 0.7; real CDF(0) 0.5: W1 0.2. leptons: model CDF(0) 0.6, real 0.5: 0.1."""
    table = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [2, 0, 1]])
    flat = [T.JET, T.MET, T.JET, T.BJET, T.MUON, T.MET]
    real = Events(make_objects([2, 4], type=flat, pt=[50.0] * 6), {})
    got = cg.count_fit_w1(table, ("jet", "bjet", "electron+muon"), np.array([0.1, 0.2, 0.3, 0.4]), real)
    assert got == pytest.approx({"jets": 0.3, "b-jets": 0.2, "leptons": 0.1})
    assert cg.count_fit_w1(table[:, :1], ("constituent",), np.array([0.1, 0.2, 0.3, 0.4]), real) == {}


def test_pair_angles_of_the_leading_jets_and_the_mass_windows_by_hand():
    """Leading pairs (phi 0.5, -1.0; eta 1.0, 0.5) and (phi 1.0, -2.9, which wraps to 2 pi - 3.9; eta 0.1,
    -0.5); a one-jet event counts in neither. The top candidates, massless jets by hand: m(jj) 81.6 and
    48.0 GeV (one in the W window), m(bjj) 169.1 and 170.2 GeV (both in the top window)."""
    rows = [[(T.JET, 100.0, 1.0, 0.5), (T.BJET, 60.0, 0.5, -1.0), (T.JET, 50.0, 0.0, 1.0)],
            [(T.JET, 80.0, 0.1, 1.0), (T.BJET, 60.0, -0.5, -2.9), (T.JET, 30.0, 0.3, 0.0)], [(T.JET, 40.0, 0.0, 0.0)]]
    flat = [o for r in rows for o in r]
    objects = make_objects([len(r) for r in rows], type=[o[0] for o in flat], pt=[o[1] for o in flat],
                           eta=[o[2] for o in flat], phi=[o[3] for o in flat])
    got = cg.pair_angles(Events(objects, {}))
    assert got["dphi_j1j2"] == pytest.approx((1.5 + 2 * np.pi - 3.9) / 2, abs=1e-6)
    assert got["deta_j1j2"] == pytest.approx(0.55, abs=1e-6)
    assert got["w_window"] == 0.5 and got["top_window"] == 1.0


def test_count_fractions_by_hand():
    """Counts 0, 1, 1, 2, 5 and 7: fractions with 0, 1, 2 and at least 3 are 1/6, 2/6, 1/6 and 2/6."""
    assert cg.count_fractions(np.array([0, 1, 1, 2, 5, 7])) == pytest.approx([1 / 6, 2 / 6, 1 / 6, 2 / 6])
    assert cg.count_fractions(np.array([0, 1, 1, 2, 5, 7]), top=2) == pytest.approx([1 / 6, 2 / 6, 3 / 6])


def test_summary_gives_the_b_jet_and_lepton_count_shapes():
    """Three events: two b-jets and a muon; one b-jet and a jet; nothing but MET."""
    flat = [(T.BJET, 90.0), (T.BJET, 50.0), (T.MUON, 30.0), (T.BJET, 70.0), (T.JET, 40.0), (T.MET, 20.0)]
    objects = make_objects([3, 2, 1], type=[o[0] for o in flat], pt=[o[1] for o in flat])
    got = cg.summary(Events(objects, {}))
    assert got["bjet_fractions"] == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])
    assert got["lepton_fractions"] == pytest.approx([2 / 3, 1 / 3, 0.0, 0.0])
    assert got["mean_bjets"] == pytest.approx(1.0) and got["no_jet"] == pytest.approx(1 / 3)


def test_sampling_noise_draws_once_per_seed_as_it_is_told(backbone, data_files, tmp_path, monkeypatch):
    """benchmarks/sampling_noise.py: --process, --events, --seeds and --top-p reach the sampler, one draw a seed."""
    import json

    import backbone.sampling as sampling
    import sampling_noise

    bb, tok = backbone
    seen, real = [], sampling.sample_events
    monkeypatch.setattr(sampling, "sample_events", lambda *a, **k: seen.append((a[2], k)) or real(*a, **k))
    out = tmp_path / "noise.json"
    assert sampling_noise.main(["--backbone", str(bb), "--tokenizer", str(tok), "--real", data_files[0],
                                "--process", "ttbar", "--events", "30", "--seeds", "3", "4", "--top-p", "0.9",
                                "--out", str(out)]) == 0
    assert [(n, k["seed"], k["top_p"], k["process"]) for n, k in seen] == [(30, 3, 0.9, "ttbar"), (30, 4, 0.9, "ttbar")]
    saved = json.loads(out.read_text())
    assert [d["seed"] for d in saved["draws"]] == [3, 4] and saved["process"] == "ttbar" and "fit" not in saved
    with pytest.raises(UserError, match="no events of process 'wjets'"):  # data_files[0] holds ttbar only
        sampling_noise.main(["--backbone", str(bb), "--tokenizer", str(tok), "--real", data_files[0],
                             "--process", "wjets", "--out", str(out)])
