"""benchmarks/decode_fidelity.py: the head's draws teacher forced as the backbone was trained."""
from __future__ import annotations

import sys

import awkward as ak
import numpy as np
import pytest
import torch

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import decode_fidelity as df  # noqa: E402


def _decoded(model, tokenizer, tokens, feedback=False):
    events, _ = df.head_decoded(model, tokenizer, tokens, model.vocab, model.conditional, feedback=feedback)
    return np.concatenate([ak.to_numpy(ak.flatten(events.objects[f])) for f in ("pt", "eta", "phi")])


def test_head_draws_read_the_real_features_of_the_objects_before(hybrid_backbone, ttbar):
    """The hybrid reads each earlier object's features: moving the first object's features moves the later
    draws (same seed). A pass that fed the codes' centroids instead would draw the same events."""
    from backbone.model import GPT
    from tokenizer.tokenizer import Tokenizer

    folder, tok = hybrid_backbone
    model, tokenizer = GPT.from_pretrained(folder).eval(), Tokenizer.from_pretrained(tok)
    tokens = tokenizer.encode(ttbar[:64], features=True)
    first = ak.local_index(tokens.features, axis=1) == 0
    other = type(tokens)(tokens.ids, tokens.info, tokens.process_names,
                         ak.where(first, tokens.features + 0.5, tokens.features))
    assert not np.allclose(_decoded(model, tokenizer, tokens), _decoded(model, tokenizer, other))
    # fed back, every object reads the features drawn before it: the real ones play no part
    np.testing.assert_array_equal(_decoded(model, tokenizer, tokens, True), _decoded(model, tokenizer, other, True))


def test_head_draws_keep_the_pt_order_bound(ordered_backbone, ttbar, monkeypatch):
    """Under the pt order each object's log pt is drawn below the real one of the object before it of its
    group: the draw is given that bound (finite where such an object precedes)."""
    from backbone.density import Mixture
    from backbone.model import GPT
    from tokenizer.tokenizer import Tokenizer

    folder, tok = ordered_backbone
    model, tokenizer = GPT.from_pretrained(folder).eval(), Tokenizer.from_pretrained(tok)
    bounds = []
    sample = Mixture.sample
    monkeypatch.setattr(Mixture, "sample", lambda self, generator=None, upper=None: (
        bounds.append(upper), sample(self, generator, upper))[1])
    df.head_decoded(model, tokenizer, tokenizer.encode(ttbar[:64], features=True), model.vocab, model.conditional)
    assert bounds and all(b is not None for b in bounds)
    assert any(torch.isfinite(b).any() for b in bounds)


def test_draws_fed_back_keep_the_pt_order_of_their_own_draws(ordered_backbone, ttbar):
    """Fed back, each object's log pt is bounded by the pt drawn for the object before it of its group, so
    the decoded jets come out in descending pt, as sampled events do; bounded by the real pt instead, two
    independent draws below about the same bound would cross."""
    from backbone.model import GPT
    from events.model import ObjectType as T
    from tokenizer.tokenizer import Tokenizer

    folder, tok = ordered_backbone
    model, tokenizer = GPT.from_pretrained(folder).eval(), Tokenizer.from_pretrained(tok)
    tokens = tokenizer.encode(ttbar[:200], features=True)

    def crossings(feedback):
        events, _ = df.head_decoded(model, tokenizer, tokens, model.vocab, model.conditional, feedback=feedback)
        jets = events.objects[events.objects["type"] == int(T.JET)]
        pt = jets.pt
        return int(ak.sum(pt[:, 1:] > pt[:, :-1]))

    assert crossings(True) == 0 < crossings(False)


def test_means_fed_back_are_the_same_whatever_the_seed_and_keep_the_pt_order(ordered_backbone, ttbar):
    """The head's means, each fed back, depend on the tokens alone (no draw), and each lies below its bound
    (a truncated mixture's mean), so the decoded jets come out in descending pt."""
    from backbone.model import GPT
    from events.model import ObjectType as T
    from tokenizer.tokenizer import Tokenizer

    folder, tok = ordered_backbone
    model, tokenizer = GPT.from_pretrained(folder).eval(), Tokenizer.from_pretrained(tok)
    tokens = tokenizer.encode(ttbar[:200], features=True)
    runs = [df.head_decoded(model, tokenizer, tokens, model.vocab, model.conditional, seed=seed, feedback=True,
                            mean=True)[0].objects for seed in (0, 1)]
    for field in ("pt", "eta", "phi", "mass"):
        np.testing.assert_array_equal(ak.to_numpy(ak.flatten(runs[0][field])), ak.to_numpy(ak.flatten(runs[1][field])))
    jets = runs[0][runs[0]["type"] == int(T.JET)]
    assert ak.sum(ak.num(jets) > 1) > 50 and int(ak.sum(jets.pt[:, 1:] > jets.pt[:, :-1])) == 0
    drawn = df.head_decoded(model, tokenizer, tokens, model.vocab, model.conditional, feedback=True)[0].objects
    assert not np.array_equal(ak.to_numpy(ak.flatten(drawn.pt)), ak.to_numpy(ak.flatten(runs[0].pt)))


def test_the_cli_compares_four_decodings_with_the_rest_of_the_file(ordered_backbone, data_files, tmp_path):
    """`--n` events are decoded, the rest of the file is the reference: its own mass windows are reported as
    the data's, beside those of the centroids, the head teacher forced, the head fed its own draws and the
    head's means fed back."""
    import json

    from conditional_generation import pair_angles
    from events.io import read_events

    folder, tok = ordered_backbone
    out = tmp_path / "fidelity.json"
    assert df.main(["--backbone", str(folder), "--tokenizer", str(tok), "--events", str(data_files[0]),
                    "--n", "150", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    events = read_events(data_files[0])
    assert (result["decoded"], result["reference"]) == (150, len(events) - 150)
    assert result["pairs"]["data"] == pair_angles(events[150:])
    assert set(result["pairs"]) == {"data", "centroid", "continuous", "fed_back", "mean"}
    assert result["fed_back"].keys() == result["centroid"].keys() and result["fed_back"] != result["continuous"]
    assert result["mean"].keys() == result["centroid"].keys() and result["mean"] != result["fed_back"]
    from common.cli import UserError

    args = ["--backbone", str(folder), "--tokenizer", str(tok), "--events", str(data_files[0]), "--out", str(out)]
    with pytest.raises(UserError, match=f"{len(events)} events, so --n {len(events)} leaves none as the reference"):
        df.main(args + ["--n", str(len(events))])
    with pytest.raises(SystemExit):
        df.main(args + ["--n", "0"])
