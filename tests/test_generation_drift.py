"""benchmarks/generation_drift.py end to end on the session's tiny hybrid backbone: the data's side of each
comparison by hand, the sampler given the nucleus and guidance asked for, and one-line errors."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import generation_drift as gd  # noqa: E402


def test_drift_study_compares_with_the_datas_own_numbers(hybrid_backbone, tmp_path, monkeypatch):
    import importlib

    from backbone.data import TokenSequences
    from backbone.model import GPT
    from events.model import ObjectType as T
    from tokenizer.tokenizer import Tokenizer

    sampler = importlib.import_module("backbone.generate")
    bb, tok = hybrid_backbone
    store = bb.parent / "tokens.h5"
    seen, real = [], sampler.generate
    monkeypatch.setattr(sampler, "generate", lambda *a, **k: seen.append(k) or real(*a, **k))
    out = tmp_path / "drift.json"
    assert gd.main(["--backbone", str(bb), "--tokenizer", str(tok), "--store", str(store), "--events", "40",
                    "--top-p", "0.6", "--guidance", "1.5", "--out", str(out)]) == 0
    result = json.loads(out.read_text())

    model, tokenizer = GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok)
    data = TokenSequences.from_store(store, True, model.vocab)
    types = tokenizer.code_types()
    jet_types = {int(T.JET), int(T.BJET)}
    first, jets = [], []
    for i in np.flatnonzero(data.process_tokens == model.vocab.process_token("ttbar"))[:40]:
        codes = data.codes[data.offsets[i]:data.offsets[i + 1]]
        first.append(codes[0])
        n = 0
        while n < len(codes) and int(types[codes[n]]) in jet_types:
            n += 1
        jets.append(n)
    jets = np.array(jets)
    assert result["events"] == 40
    assert result["completions"][0]["events"] == 40
    assert result["completions"][0]["data_jets"] == pytest.approx(jets.mean())
    rows = np.flatnonzero(data.process_tokens == model.vocab.process_token("ttbar"))[:40]
    with_two = jets[[data.offsets[i + 1] - data.offsets[i] >= 2 for i in rows]]
    assert result["completions"][2]["data_jets"] == pytest.approx(with_two.mean())
    assert result["jet_hazard"]["data"][1] == pytest.approx((jets[jets >= 1] > 1).mean())
    assert sum(b["data"] for b in result["first_code_mass"]) == pytest.approx(1.0)
    with torch.no_grad():  # the bins hold the model's probability that the first token is any code
        p = model(torch.tensor([[model.vocab.bos, model.vocab.process_token("ttbar")]]))[0][0, -1].softmax(-1)
    assert sum(b["model"] for b in result["first_code_mass"]) == pytest.approx(float(p[:model.vocab.n_codes].sum()))
    # one completion per prefix length and batch, each sampled as asked
    assert len(seen) == len(gd.PREFIXES) and {(k["top_p"], k["guidance"]) for k in seen} == {(0.6, 1.5)}
    assert all(k["prompt_features"] is not None for k in seen)


def test_drift_study_refuses_what_it_cannot_measure(hybrid_backbone, backbone, tmp_path):
    from common.errors import EventDataError, UserError

    bb, tok = hybrid_backbone
    store = bb.parent / "tokens.h5"
    with pytest.raises(UserError, match="not trained on process 'nosuch'"):
        gd.main(["--backbone", str(bb), "--tokenizer", str(tok), "--store", str(store), "--process", "nosuch"])
    plain, plain_tok = backbone
    with pytest.raises(UserError, match="needs a hybrid backbone"):
        gd.main(["--backbone", str(plain), "--tokenizer", str(plain_tok), "--store", str(store)])
    with pytest.raises(EventDataError, match="nope.h5: no such file$"):
        gd.main(["--backbone", str(bb), "--tokenizer", str(tok), "--store", str(tmp_path / "nope.h5")])
