"""The VQ-VAE tokenizer: round trips, exact types, code ranges, save/load, exact resume, bad input."""
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import torch

from common.config import load_config
from common.errors import ModelFileError
from events.errors import EventDataError
from events.model import Events, ObjectType as T
from tests.conftest import REPO, SMALL
from tokenizer.config import TokenizerTrainConfig
from tokenizer.features import FeatureTransform, flat_objects
from tokenizer.metrics import codebook_usage, resolution
from tokenizer.model import split_codebook
from tokenizer.store import iter_tokens
from tokenizer.tokenizer import TokenBatch, Tokenizer
from tokenizer.train import train_model

def test_round_trip_within_measured_resolution(trained, ttbar):
    tok, metrics, _ = trained
    events = ttbar[:300]
    decoded = tok.decode(tok.encode(events))
    a, b = ak.flatten(events.objects), ak.flatten(decoded.objects)
    assert ak.to_list(a["type"]) == ak.to_list(b["type"])  # exact, by construction
    assert ak.to_list(ak.num(events.objects)) == ak.to_list(ak.num(decoded.objects))
    rel = np.abs(ak.to_numpy(b.pt) - ak.to_numpy(a.pt)) / ak.to_numpy(a.pt)
    assert np.mean(rel < 3 * metrics["pt_rel_resolution"]) > 0.9
    np.testing.assert_array_equal(decoded.info["event"], events.info["event"])
    assert metrics["type_accuracy"] == 1.0 and metrics["codebook_usage"] > 0.6
    # MET keeps eta = mass = 0 and jets keep charge 0 by definition
    met = decoded.of_type(T.MET)
    assert ak.all(met.eta == 0) and ak.all(met.mass == 0)
    assert ak.all(decoded.of_type(T.JET, T.BJET).charge == 0)


#: what the session's small tokenizer must reach on ttbar, fixed (it measures 0.26 in pt and phi and
#: 0.46 in eta): decoding a neighbouring code instead gives about 1.0 in pt and 2 rad in phi
LIMITS = {"pt_rel_resolution": 0.4, "eta_resolution": 0.65, "phi_resolution": 0.4}


def test_round_trip_within_fixed_limits_and_exact_charge(trained, ttbar):
    tok, _, _ = trained
    events = ttbar[:300]
    decoded = tok.decode(tok.encode(events))
    r = resolution(events, decoded)
    for name, limit in LIMITS.items():
        assert r[name] < limit, (name, r[name])
    leptons, back = events.of_type(T.ELECTRON, T.MUON), decoded.of_type(T.ELECTRON, T.MUON)
    assert ak.count(leptons.charge) > 100 and set(ak.flatten(back.charge).tolist()) == {-1, 1}
    assert ak.to_list(back.charge) == ak.to_list(leptons.charge)


def test_codes_in_range_and_in_their_type_block(trained, ttbar):
    tok, _, _ = trained
    tokens = tok.encode(ttbar[:300])
    ids = ak.to_numpy(ak.flatten(tokens.ids))
    types = ak.to_numpy(ak.flatten(ttbar[:300].objects["type"]))
    assert tok.vocab_size == 256 and ids.min() >= 0 and ids.max() < 256
    for t in np.unique(types):
        lo, n = tok.model.offsets[int(t)], tok.model.codes_per_type[int(t)]
        assert np.all((ids[types == t] >= lo) & (ids[types == t] < lo + n))


def test_save_load_gives_identical_tokens(trained, ttbar, tmp_path):
    tok, _, _ = trained
    tok.save_pretrained(tmp_path / "copy")
    again = Tokenizer.from_pretrained(tmp_path / "copy")
    a, b = tok.encode(ttbar[:200]), again.encode(ttbar[:200])
    assert ak.to_list(a.ids) == ak.to_list(b.ids)
    for (k, v), (k2, v2) in zip(tok.model.state_dict().items(), again.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_resumed_training_equals_uninterrupted(tmp_path, ttbar, wjets):
    cfg = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/event.yaml",
                      SMALL + ["train.epochs=4", "train.patience=10"])
    train, val = ttbar[:400], ttbar[400:500]
    straight, _ = train_model(cfg, cfg.model, train, val, tmp_path / "straight", progress=False)
    train_model(cfg, cfg.model, train, val, tmp_path / "resumed", progress=False, max_epochs=2)
    resumed, history = train_model(cfg, cfg.model, train, val, tmp_path / "resumed", resume=True, progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for (k, v), (_, w) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(v, w), k
    # checkpoints hold no pickle: safetensors and JSON only
    assert {p.suffix for p in (tmp_path / "resumed" / "checkpoint").iterdir()} == {".safetensors", ".json"}


def test_refuses_events_it_cannot_represent(trained, top_jets):
    tok, _, _ = trained
    with pytest.raises(EventDataError, match="CONSTITUENT unknown to this event-mode tokenizer"):
        tok.encode(top_jets[:5])
    bad = TokenBatch(ak.Array([[1, 99999]]), {"event": np.array([0])})
    with pytest.raises(EventDataError, match="token id 99999 outside this tokenizer's codes"):
        tok.decode(bad)


def test_weights_that_do_not_match_config(trained, tmp_path):
    tok, _, _ = trained
    tok.save_pretrained(tmp_path / "t")
    config = (tmp_path / "t" / "config.json").read_text().replace('"hidden": 64', '"hidden": 32')
    (tmp_path / "t" / "config.json").write_text(config)
    with pytest.raises(ModelFileError, match="weights do not match"):
        Tokenizer.from_pretrained(tmp_path / "t")
    with pytest.raises(FileNotFoundError, match="not a tokenizer folder"):
        Tokenizer.from_pretrained(tmp_path)


def test_tokenize_cli_streams_in_order(trained, data_files, tmp_path):
    tok, _, folder = trained
    out = tmp_path / "tokens.h5"
    proc = subprocess.run([sys.executable, "-m", "tokenizer.tokenize", "--tokenizer", str(folder), "--input",
                           data_files[0], "--out", str(out), "--step-size", "700", "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from events.io import read_events

    events = read_events(data_files[0])
    stored = list(iter_tokens(out, step_size=1000))
    ids = ak.concatenate([s.ids for s in stored])
    assert ak.to_list(ids) == ak.to_list(tok.encode(events).ids)
    np.testing.assert_array_equal(np.concatenate([s.info["event"] for s in stored]), events.info["event"])
    assert stored[0].process_names == ("ttbar",)


def test_feature_transform_inverts(ttbar):
    obj = flat_objects(ttbar.objects)
    transform = FeatureTransform.fit("event", obj)
    back = transform.inverse(transform.transform(obj).astype(np.float64))
    for key in ("pt", "eta", "phi", "mass", "btag"):
        np.testing.assert_allclose(back[key], obj[key], rtol=1e-5, atol=1e-5, err_msg=key)
    x = transform.transform(obj)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-3)


def test_split_codebook_by_sqrt_frequency():
    sizes = split_codebook({0: 9000, 1: 100, 2: 900}, total=100, minimum=10)
    # free codes 70 shared as sqrt counts 95 : 10 : 30 -> 49, 5, 15 (+1 rounding to the largest)
    assert sizes == {0: 60, 1: 15, 2: 25} and sum(sizes.values()) == 100
    with pytest.raises(ValueError):
        split_codebook({0: 1, 1: 1}, total=10, minimum=6)


def test_usage_and_perplexity_by_hand():
    usage = codebook_usage(np.array([0, 0, 1, 1]), 4)
    assert usage["codebook_usage"] == 0.5 and usage["perplexity"] == pytest.approx(2.0)


def test_resolution_by_hand():
    from events.model import make_objects

    a = Events(make_objects([2], type=[0, 5], pt=[100, 50], eta=[1.0, 0], phi=[0.5, 1.0]), {})
    b = Events(make_objects([2], type=[0, 5], pt=[110, 50], eta=[1.2, 0], phi=[0.4, 1.0]), {})
    r = resolution(a, b)
    assert r["type_accuracy"] == 1.0 and r["n_objects"] == 2
    assert r["eta_resolution"] == 0.0  # one object with eta (MET excluded): zero spread


def test_set_encoder_is_permutation_equivariant_and_per_event():
    from tokenizer.config import ModelConfig
    from tokenizer.tokenizer import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder="transformer", quantizer="none", hidden=32, depth=2, heads=4), 6,
                        [0, 1, 5], {0: 4, 1: 4, 5: 4}, {}).eval()
    x, charge = torch.randn(5, 6), torch.zeros(5, dtype=torch.long)
    types, counts = torch.tensor([0, 1, 5, 0, 5]), torch.tensor([3, 2])
    with torch.no_grad():
        z = model.encode_latent(x, charge, types, counts)
        perm = torch.tensor([2, 0, 1, 3, 4])  # shuffle the objects of event 0
        zp = model.encode_latent(x[perm], charge, types[perm], counts)
        torch.testing.assert_close(zp, z[perm], rtol=1e-5, atol=1e-5)
        other = x.clone()
        other[3:] += 1.0  # change event 1 only
        z2 = model.encode_latent(other, charge, types, counts)
        torch.testing.assert_close(z2[:3], z[:3], rtol=0, atol=1e-6)
        assert not torch.allclose(z2[3:], z[3:])
        # in context: the same object encodes differently next to other objects
        z_alone = model.encode_latent(x[:1], charge[:1], types[:1], torch.tensor([1]))
        assert not torch.allclose(z_alone[0], z[0])
    with pytest.raises(ValueError, match="needs the objects per event"):
        model.encode_latent(x, charge, types)


def test_set_encoder_trains_and_round_trips(tmp_path, ttbar):
    cfg = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/event.yaml",
                      SMALL + ["train.epochs=3", "model.encoder=transformer", "model.heads=4"])
    tok, history = train_model(cfg, cfg.model, ttbar[:300], ttbar[300:400], tmp_path / "set", progress=False)
    assert len(history) == 3 and history[-1]["val_loss"] < history[0]["val_loss"]
    tok.save_pretrained(tmp_path / "saved")
    again = Tokenizer.from_pretrained(tmp_path / "saved")
    a, b = tok.encode(ttbar[:50], batch_size=64), again.encode(ttbar[:50], batch_size=100000)
    assert ak.to_list(a.ids) == ak.to_list(b.ids)  # whole events per batch: batch size changes nothing
    decoded = again.decode(a)
    assert ak.to_list(decoded.objects["type"]) == ak.to_list(ttbar[:50].objects["type"])


def fuzz_objects():
    from hypothesis import strategies as st

    finite = dict(allow_nan=False, allow_infinity=False, width=32)
    obj = st.tuples(st.sampled_from([T.JET, T.BJET, T.ELECTRON, T.MUON, T.MET]), st.floats(0, 1e5, **finite),
                    st.floats(-10, 10, **finite), st.floats(-10, 10, **finite), st.floats(0, 1e4, **finite),
                    st.floats(0, 1, **finite), st.integers(-1, 1))
    return st.lists(st.lists(obj, max_size=7), min_size=1, max_size=6)


def events_of(rows):
    from events.model import make_objects

    flat = [o for r in rows for o in r]
    cols = list(zip(*flat)) if flat else [[]] * 7
    objects = make_objects([len(r) for r in rows], type=[int(t) for t in cols[0]], pt=cols[1], eta=cols[2],
                           phi=cols[3], mass=cols[4], btag=cols[5], charge=cols[6])
    return Events(objects, {"event": np.arange(len(rows)) * 3 + 5})


def test_fuzzed_events_encode_one_valid_token_per_object(trained):
    from hypothesis import given, settings

    tok = trained[0]

    @settings(max_examples=40, deadline=None)
    @given(fuzz_objects())
    def check(rows):
        events = events_of(rows)
        tokens = tok.encode(events, features=True)
        assert ak.num(tokens.ids).tolist() == [len(r) for r in rows]  # every object, in order
        flat = ak.to_numpy(ak.flatten(tokens.ids))
        assert ((flat >= 0) & (flat < tok.vocab_size)).all()
        assert np.isfinite(ak.to_numpy(ak.flatten(tokens.features, axis=1))).all()
        back = tok.decode(tokens)
        assert ak.to_list(back.objects["type"]) == ak.to_list(events.objects["type"])  # type exact
        for name in ("pt", "eta", "phi", "mass"):
            assert np.isfinite(ak.to_numpy(ak.flatten(back.objects[name]))).all()
        assert back.info["event"].tolist() == events.info["event"].tolist()

    check()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_objects_are_refused_naming_the_event(trained, value):
    events = events_of([[(T.JET, 50.0, 0.1, 0.2, 5.0, 0.5, 0)], [(T.JET, 40.0, value, 0.2, 5.0, 0.5, 0)]])
    with pytest.raises(EventDataError, match="non-finite object eta in event 8"):
        trained[0].encode(events, source="file.root")


def test_a_leading_jet_frame_tokenizer_is_blind_to_where_events_point(tmp_path, ttbar, trained):
    """azimuth: leading_jet trains on events turned to their leading jet (its feature means are theirs),
    gives an event and the same event turned by any angle the same codes (an absolute tokenizer does not),
    keeps the angle in the tokens' info and turns decoded events back by it."""
    from dataclasses import replace

    from events.azimuth import leading_azimuth, rotate_azimuth

    with pytest.raises(ValueError, match="constituents"):
        replace(TokenizerTrainConfig().model, mode="constituent", azimuth="leading_jet")
    cfg = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/event.yaml",
                      SMALL + ["train.epochs=2", "model.azimuth=leading_jet"])
    tok, _ = train_model(cfg, cfg.model, ttbar[:400], ttbar[400:500], tmp_path / "tok", progress=False)
    turned = rotate_azimuth(ttbar[:400], leading_azimuth(ttbar[:400]))
    np.testing.assert_allclose(tok.transform.mean, FeatureTransform.fit("event", flat_objects(turned.objects)).mean,
                               rtol=1e-6)
    # phi on a 1/16 grid within +-1.5 and a turn of 0.75: every difference is exact in float32
    grid = np.random.default_rng(0)
    rows = [[(T.JET, 120.0 - 10 * i, 0.3 * i - 1.0, grid.integers(-24, 25) / 16, 8.0, 0.2, 0) for i in range(k)]
            + [(T.MET, 40.0, 0.0, grid.integers(-24, 25) / 16, 0.0, 0.0, 0)] for k in range(1, 6)]
    events = events_of(rows)
    again = rotate_azimuth(events, np.full(len(events), 0.75))
    tokens = tok.encode(events)
    assert ak.to_list(tok.encode(again).ids) == ak.to_list(tokens.ids)
    assert ak.to_list(trained[0].encode(again).ids) != ak.to_list(trained[0].encode(events).ids)
    np.testing.assert_array_equal(tokens.info["azimuth"], leading_azimuth(events).astype(np.float32))
    back = tok.decode(tokens)
    assert set(back.info) == set(events.info)
    unturned = tok.decode(TokenBatch(tokens.ids, {"event": tokens.info["event"]}))
    expected = rotate_azimuth(unturned, -tokens.info["azimuth"])
    assert ak.to_list(back.objects) == ak.to_list(expected.objects)
    assert ak.to_list(back.objects) != ak.to_list(unturned.objects)
