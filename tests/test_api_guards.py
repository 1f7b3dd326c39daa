"""The Python API keeps the CLIs' promises (docs/reliability.md): its writers refuse an output that is an
input, and sizes, paths and working points are checked with the CLIs' rules and messages."""
from __future__ import annotations

import pytest

from common.errors import UserError
from events.io import write_events


@pytest.fixture(scope="module")
def events_file(ttbar, tmp_path_factory):
    path = tmp_path_factory.mktemp("api_guards") / "ttbar.h5"
    write_events(ttbar[:50], path)
    return path


@pytest.fixture(scope="module")
def scorer(backbone):
    from finetune import AnomalyScorer

    bb, tok = backbone
    return AnomalyScorer.from_pretrained(bb, tok, ["nll"], device="cpu")


def test_score_file_refuses_to_write_over_its_input_also_through_a_link(scorer, events_file, tmp_path):
    copy, link = tmp_path / "x.h5", tmp_path / "link.h5"
    copy.write_bytes(events_file.read_bytes())
    link.symlink_to(copy)
    before = copy.read_bytes()
    for out in (copy, link):
        with pytest.raises(UserError, match=f"^{out}: the score file is also an input \\({copy}\\); it would be "
                                            "overwritten$"):
            scorer.score_file(copy, out)
    assert copy.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["link.h5", "x.h5"]


def test_score_file_refuses_to_write_over_a_file_of_a_model_folder(backbone, events_file, tmp_path):
    import shutil

    from finetune import AnomalyScorer

    bb, tok = backbone
    model = tmp_path / "backbone"
    shutil.copytree(bb, model)
    (model / "old.h5").write_bytes(b"kept")
    scorer = AnomalyScorer.from_pretrained(model, tok, ["nll"], device="cpu")
    with pytest.raises(UserError, match=f"^{model / 'old.h5'}: the score file would overwrite a file of the input "
                                        f"folder {model}$"):
        scorer.score_file(events_file, model / "old.h5")
    assert (model / "old.h5").read_bytes() == b"kept"


def test_tokenizing_into_the_input_file_is_refused(trained, events_file, tmp_path):
    from tokenizer.store import TokenWriter
    from tokenizer.tokenize import tokenize_into

    tokenizer, _, folder = trained
    copy = tmp_path / "x.h5"
    copy.write_bytes(events_file.read_bytes())
    before = copy.read_bytes()
    with pytest.raises(UserError, match=f"^{copy}: the token store is also an input"):
        with TokenWriter.for_tokenizer(copy, tokenizer, folder) as writer:
            tokenize_into(writer, tokenizer, copy)
    assert copy.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.h5"]


@pytest.fixture
def score_csv(tmp_path):
    """A CSV score file of three events (header at line 1, rows at lines 2-4) and its text."""
    import numpy as np

    from finetune.score_store import ScoreWriter

    path = tmp_path / "s.csv"
    ids = {"run": np.ones(3, np.int64), "lumi": np.ones(3, np.int64), "event": np.arange(3)}
    with ScoreWriter(path, ("nll", "nll_per_token")) as writer:
        writer.write(ids, np.zeros(3, np.int64), {"nll": np.array([1.5, 2.5, 3.5]),
                                                  "nll_per_token": np.array([0.5, 0.25, 0.125])})
    return path, path.read_text().splitlines()


def test_a_score_csv_reads_back_as_written(score_csv):
    from finetune.score_store import read_scores

    path, lines = score_csv
    assert lines[0] == "run,lumi,event,process,flag,nll,nll_per_token" and lines[2] == "1,1,1,,0,2.5,0.25"
    scores = read_scores(path)
    assert scores["nll_per_token"].tolist() == [0.5, 0.25, 0.125] and scores["event"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("index, text, message", [
    (2, "1,1,1,,0,2.5", "line 3: 6 fields, the header has 7"),  # the second row's last field removed
    (2, "1,1,1,,0,2.5,0.25,9", "line 3: 8 fields, the header has 7"),
    (3, "1,1,2,,0,3.5,abc", "line 4, column nll_per_token: 'abc' is not a number"),
    (1, "1,1,x,,0,1.5,0.5", "line 2, column event: 'x' is not an integer >= 0"),
    (1, "1,1,-1,,0,1.5,0.5", "line 2, column event: '-1' is not an integer >= 0"),
    (3, "1,1,2,,0.5,3.5,0.125", "line 4, column flag: '0.5' is not an integer"),
])
def test_a_damaged_score_csv_is_an_error_naming_line_and_column(score_csv, index, text, message):
    from events.errors import EventDataError
    from finetune.score_store import read_scores

    path, lines = score_csv
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(EventDataError, match=f"^{path}, {message}$"):
        read_scores(path)
