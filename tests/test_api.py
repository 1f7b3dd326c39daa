"""The Python API: the README's example, the anomaly scorer in memory and over files, sampling, and
the one loading convention of the model kinds."""
import re
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import torch

from events.io import read_events, write_events
from tests.conftest import REPO


def readme_example() -> str | None:
    """The first ```python block of README.md that uses AnomalyScorer."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    return next((b for b in blocks if "AnomalyScorer" in b), None)


def test_the_readme_python_example_runs(backbone, ttbar, tmp_path, monkeypatch):
    code = readme_example()
    if code is None:
        pytest.skip("README.md has no ```python block using AnomalyScorer yet")
    import matplotlib

    matplotlib.use("Agg")  # the example plots; no display here
    bb, tok = backbone
    write_events(ttbar[:100], tmp_path / "data.root")
    code = code.replace("runs/demo/backbone", str(bb)).replace("runs/demo/tokenizer", str(tok)).replace(
        "data.root", str(tmp_path / "data.root"))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    scores = namespace["scores"]
    assert all(len(v) == 100 for v in scores.values()) and "flag" in scores


@pytest.fixture(scope="module")
def scored_file(backbone, ttbar, tmp_path_factory):
    """300 ttbar events as a file, and their score file written by the CLI (default methods)."""
    from finetune.score_store import read_scores

    folder = tmp_path_factory.mktemp("api")
    bb, tok = backbone
    write_events(ttbar[:300], folder / "data.h5")
    proc = subprocess.run([sys.executable, "-m", "finetune.anomaly", "score", "--backbone", str(bb), "--tokenizer",
                           str(tok), "--input", str(folder / "data.h5"), "--out", str(folder / "s.h5"), "--device",
                           "cpu", "--quiet", "--n-masks", "2", "--step-size", "128"], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    return folder / "data.h5", read_scores(folder / "s.h5")


@pytest.fixture(scope="module")
def scorer(backbone):
    from finetune import AnomalyScorer

    bb, tok = backbone
    return AnomalyScorer.from_pretrained(bb, tok, device="cpu", n_masks=2)


def test_scoring_events_in_memory_gives_the_rows_of_the_cli_score_file(scorer, scored_file):
    path, expected = scored_file
    scores = scorer.score(read_events(path))
    assert sorted(scores) == sorted(expected)  # the same columns
    for k, v in expected.items():
        if v.dtype.kind == "f":
            np.testing.assert_allclose(scores[k], v, rtol=1e-6, err_msg=k)
        else:
            assert scores[k].tolist() == v.tolist(), k


def test_one_event_alone_scores_as_in_the_whole_file(scorer, scored_file):
    path, expected = scored_file
    events = read_events(path)
    for i in (0, 137, 299):
        alone = scorer.score(events[i:i + 1])
        assert alone["event"].tolist() == [expected["event"][i]]
        for c in ("nll", "nll_per_token", "quantization", "density_nll", "surprise"):
            np.testing.assert_allclose(alone[c], expected[c][i:i + 1], rtol=1e-4, atol=1e-4, err_msg=c)


def test_the_weakly_supervised_head_scores_in_one_pass_whatever_the_chunks(backbone, data_files, tmp_path):
    """Heads trained on the first 150 events: those are scored out of fold, the others by the heads'
    mean; streamed in chunks that cut the sample, the file gets the same scores as the events in memory."""
    from finetune import AnomalyScorer
    from finetune.score_store import read_scores

    bb, tok = backbone
    head = AnomalyScorer.from_pretrained(bb, tok, ["nll"], device="cpu", head_events=150, head_epochs=2)
    assert head.fit(data_files[1]) is head and head.methods == ["nll", "head"]
    events = read_events(data_files[0])[:400]
    write_events(events, tmp_path / "data.h5")
    in_memory = head.score(events)
    head.score_file(tmp_path / "data.h5", tmp_path / "s.csv", step_size=64)
    streamed = read_scores(tmp_path / "s.csv")
    np.testing.assert_allclose(streamed["head"], in_memory["head"], rtol=1e-6, atol=1e-7)
    assert np.all((in_memory["head"] > 0) & (in_memory["head"] < 1)) and np.std(in_memory["head"][150:]) > 0


def test_scorer_refuses_what_a_method_needs(backbone, ttbar):
    from common.errors import UserError
    from finetune import AnomalyScorer

    bb, tok = backbone
    with pytest.raises(UserError, match="method entropy needs --classifier"):
        AnomalyScorer.from_pretrained(bb, tok, ["entropy"], device="cpu")
    with pytest.raises(UserError, match="unknown score method"):
        AnomalyScorer.from_pretrained(bb, tok, ["nosuch"], device="cpu")
    head = AnomalyScorer.from_pretrained(bb, tok, ["head"], device="cpu")
    with pytest.raises(UserError, match="method head needs --reference"):
        head.score(ttbar[:5])


def test_sampling_yields_events_and_the_same_seed_gives_the_same_events(backbone):
    from backbone.model import GPT
    from backbone.sampling import SamplingStats, sample_events
    from events.model import ObjectType as T
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    model, tokenizer = GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok)

    def draw(seed):
        stats = SamplingStats()
        batches = list(sample_events(model, tokenizer, 40, process="ttbar", seed=seed, batch_size=16, stats=stats))
        assert [len(b) for b in batches] == [16, 16, 8] and stats.decode == "continuous"
        return ak.to_list(ak.concatenate([b.objects for b in batches])), batches

    first, batches = draw(3)
    assert batches[2].info["event"].tolist() == list(range(32, 40)) and all((b.count(T.MET) == 1).all() for b in batches)
    assert draw(3)[0] == first
    assert draw(4)[0] != first


def test_models_save_and_load_with_what_they_were_trained_on(backbone, tmp_path):
    from backbone.model import GPT, check_pair
    from common.errors import ModelMismatchError
    from finetune import Classifier
    from finetune.config import HeadSection
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    tokenizer = Tokenizer.from_pretrained(tok)
    model = GPT.from_pretrained(bb)
    assert model.conditional and model.vocab.processes == ("ttbar",) and model.process_dropout > 0
    assert model.tokenizer_fingerprint == tokenizer.fingerprint and model.source == bb
    model.save_pretrained(tmp_path / "copy")
    again = GPT.from_pretrained(tmp_path / "copy")
    for name in ("vocab", "conditional", "tokenizer_fingerprint", "process_dropout"):
        assert getattr(again, name) == getattr(model, name), name
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    check_pair(again, tokenizer)

    classifier = Classifier.from_backbone(model, 2, HeadSection(), "frozen")
    assert classifier.backbone is not model  # the backbone given is copied, not trained in place
    classifier.save_pretrained(tmp_path / "cls", classes=["ttbar", "wjets"])
    loaded = Classifier.from_pretrained(tmp_path / "cls")
    assert loaded.classes == ("ttbar", "wjets") and loaded.source == tmp_path / "cls"
    for name in ("vocab", "conditional", "tokenizer_fingerprint"):
        assert getattr(loaded, name) == getattr(model, name), name
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in classifier.state_dict().items())
    check_pair(loaded, tokenizer)
    loaded.backbone.tokenizer_fingerprint = "0" * 64
    with pytest.raises(ModelMismatchError, match=f"backbone {tmp_path / 'cls'} was trained on tokens of tokenizer"):
        check_pair(loaded, tokenizer)


def test_the_process_token_conditions_what_is_sampled(backbone):
    """The same seed with the process named and with it left unknown (MASK): other events. If the
    process were not put in the prompt, both would be the same draw."""
    from backbone.model import GPT
    from backbone.sampling import sample_events
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    model, tokenizer = GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok)
    assert model.conditional and model.process_dropout > 0

    def draw(process):
        return ak.to_list(ak.concatenate([b.objects for b in sample_events(model, tokenizer, 32, process=process,
                                                                           seed=5, decode="centroid")]))

    named = draw("ttbar")
    assert named == draw("ttbar") and named != draw(None)
