"""benchmarks/pair_completion.py: events completed from their first real objects, against a pairless floor."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import pair_completion  # noqa: E402


def test_the_share_placed_sits_between_the_floor_and_the_data():
    """(completed - floor) / (data - data floor), per window, by hand."""
    share = pair_completion.placed({"w_window": 0.3, "top_window": 0.25}, {"w_window": 0.2, "top_window": 0.2},
                                   {"w_window": 0.4, "top_window": 0.3}, {"w_window": 0.2, "top_window": 0.1})
    assert share == pytest.approx({"w_window": 0.5, "top_window": 0.25})


def test_turning_keeps_each_objects_own_kinematics_and_the_given_ones():
    mean = np.array([3.7, 0.0, 0.1, -0.1, 1.5, 0.2])
    std = np.array([0.7, 1.1, 0.7, 0.7, 1.0, 0.3])
    phi = np.array([0.3, -2.0, 1.0, 2.5])
    raw = np.stack([np.log([50, 40, 30, 20]), [0.1, -1.0, 2.0, 0.5], np.cos(phi), np.sin(phi), [2, 2, 1, 0],
                    [0.9, 0.1, 0.0, 0.5]], 1)
    x = ((raw - mean) / std).astype(np.float32)
    first = np.array([True, True, False, False])
    out = pair_completion.turned(x, first, mean, std, np.random.default_rng(0))
    np.testing.assert_array_equal(out[first], x[first])
    np.testing.assert_array_equal(out[:, [0, 1, 4, 5]], x[:, [0, 1, 4, 5]])
    back = out * std + mean
    np.testing.assert_allclose(back[:, 2] ** 2 + back[:, 3] ** 2, 1.0, rtol=1e-5)  # still a direction
    assert not np.allclose(np.arctan2(back[~first, 3], back[~first, 2]), phi[~first], atol=1e-3)


@pytest.fixture(scope="module")
def store(ordered_backbone, data_files):
    """(backbone, tokenizer, the ttbar events as its sequences, the events)."""
    from backbone.data import TokenSequences
    from backbone.model import GPT
    from events.io import read_events
    from tokenizer.tokenizer import Tokenizer

    folder, tok_folder = ordered_backbone
    backbone, tokenizer = GPT.from_pretrained(folder).eval(), Tokenizer.from_pretrained(tok_folder)
    events = read_events(data_files[0])[:40]
    tokens = tokenizer.encode(events, features=True)
    seqs = TokenSequences([tokens], backbone.vocab.n_codes, True, backbone.vocab)
    seqs.process_tokens[:] = backbone.vocab.process_token("ttbar")
    return backbone, tokenizer, seqs, events


@pytest.mark.parametrize("given", [2, 3])
def test_completion_keeps_the_given_objects_and_completes_the_rest(store, given):
    """The first `given` objects are the event's own (codes and real features); what follows differs from
    the data in some event; an event given whole comes back unchanged (after its MET only the end may come)."""
    backbone, tokenizer, seqs, _ = store
    n_objects = np.diff(seqs.offsets)
    rows = np.flatnonzero(n_objects >= given)
    codes, features = pair_completion.complete(backbone, tokenizer, seqs, rows, given, torch.Generator().manual_seed(0), 16)
    assert len(codes) == len(rows)
    changed = False
    for row, c, x in zip(rows, codes, features):
        a, b = seqs.offsets[row], seqs.offsets[row + 1]
        np.testing.assert_array_equal(c[:given], seqs.codes[a:a + given])
        np.testing.assert_allclose(x[:given], seqs.features[a:a + given])
        changed |= len(c) != b - a or not np.array_equal(c, seqs.codes[a:b])
    assert changed
    whole = np.flatnonzero(n_objects == given)
    if len(whole):
        codes, features = pair_completion.complete(backbone, tokenizer, seqs, whole, given, torch.Generator(), 16)
        for row, c, x in zip(whole, codes, features):
            a, b = seqs.offsets[row], seqs.offsets[row + 1]
            np.testing.assert_array_equal(c, seqs.codes[a:b])
            np.testing.assert_allclose(x, seqs.features[a:b])


def test_cli_measures_the_data_it_was_given(ordered_backbone, data_files, tmp_path):
    """The data's windows, read at their real features, are the events' own (events.physics on the file);
    each share placed is computed from the windows recorded beside it; another --seed draws other completions; --given picks the prefixes;
    a process the backbone does not know is refused by name."""
    from common.errors import UserError
    from conditional_generation import pair_angles
    from events.io import read_events

    folder, tok_folder = ordered_backbone
    out = tmp_path / "pairs.json"
    args = ["--backbone", str(folder), "--tokenizer", str(tok_folder), "--events", data_files[0], "--n", "30",
            "--out", str(out)]
    assert pair_completion.main(args) == 0
    result = json.loads(out.read_text())
    assert [p["given"] for p in result["prefixes"]] == list(pair_completion.PREFIXES)
    scratch = result["prefixes"][0]
    assert scratch["events"] == 30 and result["completed"] == 30
    truth = pair_angles(read_events(data_files[0])[:30])
    for k in pair_completion.WINDOWS:
        assert scratch["mean"]["data"][k] == pytest.approx(truth[k])
    for entry in result["prefixes"]:
        for view in ("centroid", "mean"):
            e = entry[view]
            assert e["placed"] == pytest.approx(pair_completion.placed(e["completed"], e["completed_floor"], e["data"],
                                                                       e["data_floor"]), nan_ok=True)
    assert pair_completion.main(args[:-2] + ["--seed", "2", "--given", "scratch", "2",
                                             "--out", str(tmp_path / "seed2.json")]) == 0
    other = json.loads((tmp_path / "seed2.json").read_text())["prefixes"]
    assert [p["given"] for p in other] == ["scratch", 2]
    same = [p for p in result["prefixes"] if p["given"] in ("scratch", 2)]
    assert [p["mean"]["completed_floor"] for p in other] != [p["mean"]["completed_floor"] for p in same]
    with pytest.raises(UserError, match="process 'wjets'"):
        pair_completion.main(args[:-2] + ["--process", "wjets", "--out", str(tmp_path / "no.json")])
    assert not (tmp_path / "no.json").exists()
