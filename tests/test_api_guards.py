"""The Python API keeps the CLIs' promises (docs/reliability.md): its writers refuse an output that is an
input, and sizes, paths and working points are checked with the CLIs' rules and messages."""
from __future__ import annotations

import pytest

from common.errors import UserError
from events.io import write_events
from tests.conftest import REPO


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


# --- b-tag working points: one rule wherever they enter (events.btag.check_working_point) ------------
@pytest.mark.parametrize("value, valid, expected", [
    ("medium", (0.0, 1.0), "medium"), ("0.5", (0.0, 1.0), 0.5), (0.25, (0.0, 1.0), 0.25),
    ("1.74", None, 1.74), (-3, None, -3.0),  # a tagger of another scale (no btag_valid): finite is enough
])
def test_a_working_point_is_a_named_point_or_a_number_inside_the_score_range(value, valid, expected):
    from events.btag import check_working_point

    assert check_working_point(value, valid) == expected


@pytest.mark.parametrize("value, valid, allowed", [
    ("nan", (0.0, 1.0), "a number in (0, 1)"), (float("nan"), None, "a finite number"), ("inf", None, "a finite number"),
    ("0", (0.0, 1.0), "a number in (0, 1)"), (1.0, (0.0, 1.0), "a number in (0, 1)"),
    ("-0.5", (0.0, 1.0), "a number in (0, 1)"), ("2.0", (0.0, 1.0), "a number in (0, 1)"),
    ("Medium", (0.0, 1.0), "a number in (0, 1)"), (True, None, "a finite number"), (None, None, "a finite number"),
])
def test_a_working_point_outside_the_rule_is_refused_naming_it(value, valid, allowed):
    import re

    from common.errors import ConfigError
    from events.btag import check_working_point

    with pytest.raises(ConfigError, match=re.escape(f"b-tag working point {value!r}: give loose, medium, tight or "
                                                    f"{allowed}")):
        check_working_point(value, valid)


REAL = REPO.parent / "shared" / "data" / "cms-opendata-2015-ttbar-nanoaod-rntuple.root"
needs_real = pytest.mark.skipif(not REAL.is_file(), reason="shared real NanoAOD file not present")


@needs_real
@pytest.mark.parametrize("wp", [0, -0.5, 2.0, "1"])
def test_reading_with_a_working_point_outside_the_taggers_range_is_refused(wp):
    """0 was a ZeroDivisionError in the calibration; -0.5 tagged every jet and 2.0 none, silently."""
    import re

    from events.errors import EventDataError
    from events.io import read_events
    from events.options import ReadOptions

    with pytest.raises(EventDataError, match=re.escape(f"{REAL}:Events: b-tag working point {wp!r}: give loose, "
                                                       "medium, tight or a number in (0, 1)")):
        read_events(REAL, options=ReadOptions(selection="reco", btag_wp=wp))


@pytest.mark.parametrize("wp", [float("nan"), "nan", "inf", "tightest"])
def test_read_options_refuse_a_working_point_that_is_no_number_or_point(wp):
    import re

    from common.errors import ConfigError
    from events.options import ReadOptions

    with pytest.raises(ConfigError, match=re.escape(f"b-tag working point {wp!r}: give loose, medium, tight or a "
                                                    "finite number")):
        ReadOptions(btag_wp=wp)


def test_branch_maps_and_configs_refuse_a_working_point_outside_the_rule(tmp_path):
    import re

    from common.config import from_dict
    from common.errors import ConfigError
    from events.pythia import GenerateConfig
    from events.schema import CONFIG_DIR, load_schema

    text = (CONFIG_DIR / "nanoaod.yaml").read_text()
    assert "btag_wp: medium" in text and "btag_valid: [0, 1]" in text
    for wp, message in [("1.5", "collection Jet: btag_wp 1.5: give loose, medium, tight or a number in (0, 1)"),
                        ("0", "collection Jet: btag_wp 0.0: give loose, medium, tight or a number in (0, 1)"),
                        (".nan", "collections[0].btag_wp: nan matches none of")]:  # the loader refuses nan first
        (tmp_path / "map.yaml").write_text(text.replace("btag_wp: medium", f"btag_wp: {wp}"))
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_schema(tmp_path / "map.yaml")
    with pytest.raises(ConfigError, match=re.escape("reco.btag_wp 1.5: give loose, medium, tight or a number in "
                                                    "(0, 1)")):
        from_dict(GenerateConfig, {"reco": {"btag_wp": 1.5}})
    assert load_schema("cms-hep-tutorial").collections[0].btag_wp == 1.74  # its tagger's scale has no range


# --- sizes, rates, seeds and devices given in Python: the CLIs' argument types (common.cli.checked) ---
@pytest.mark.parametrize("rule, value, message", [
    ("positive_int", 0, "n: expected an integer >= 1, got 0"),
    ("positive_int", -5, "n: expected an integer >= 1, got -5"),
    ("positive_int", 2.5, "n: expected an integer >= 1, got 2.5"),
    ("positive_int", True, "n: expected an integer >= 1, got True"),
    ("positive_int", "3", None), ("positive_int", 3, None),
    ("nonnegative_float", float("nan"), "n: expected a finite number, got nan"),
    ("positive_float", 0.0, "n: expected a number > 0, got 0.0"),
    ("positive_float", float("nan"), "n: expected a finite number, got nan"),
    ("fraction", 1.0, "n: expected a number in (0, 1), got 1.0"),
    ("kept_fraction", 0.0, "n: expected a number in (0, 1], got 0.0"),
    ("kept_fraction", 1.5, "n: expected a number in (0, 1], got 1.5"),
    ("kept_fraction", float("nan"), "n: expected a finite number, got nan"),
    ("device_name", "tpu", "n: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
])
def test_a_value_given_in_python_is_checked_by_the_command_lines_rule(rule, value, message):
    import re

    import common.cli

    check = getattr(common.cli, rule)
    if message is None:
        assert common.cli.checked(check, value, "n") == 3
        return
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        common.cli.checked(check, value, "n")


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "batch_size: expected an integer >= 1, got 0"),
    ({"batch_size": 2.5}, "batch_size: expected an integer >= 1, got 2.5"),
    ({"mask_rate": 1.5}, "mask_rate: expected a number in (0, 1), got 1.5"),
    ({"mask_rate": float("nan")}, "mask_rate: expected a finite number, got nan"),
    ({"n_masks": 0}, "n_masks: expected an integer >= 1, got 0"),
    ({"seed": -1}, "seed: expected an integer >= 0, got -1"),
    ({"device": "tpu"}, "device: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
    ({"head_mode": "half"}, "head_mode: expected frozen or full, got 'half'"),
])
def test_the_scorer_refuses_what_the_score_command_refuses(backbone, options, message):
    import re

    from finetune import AnomalyScorer

    bb, tok = backbone
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        AnomalyScorer.from_pretrained(bb, tok, ["nll"], **{"device": "cpu", **options})


def test_score_takes_events_and_score_file_a_checked_step_size(scorer, events_file, tmp_path):
    import re

    with pytest.raises(UserError, match=re.escape(f"score takes Events, got PosixPath '{events_file}': score a file "
                                                  "with score_file(path, out), or read it with events.read_events(path) "
                                                  "first")):
        scorer.score(events_file)
    for step in (0, -1, 2.5):  # -1 wrote a score file of no events; 0 and 2.5 were a ValueError and a TypeError
        with pytest.raises(UserError, match=f"^step_size: expected an integer >= 1, got {step}$"):
            scorer.score_file(events_file, tmp_path / "s.h5", step_size=step)
    assert not list(tmp_path.iterdir())


def test_one_method_named_as_text_is_that_method(backbone):
    from finetune import AnomalyScorer

    bb, tok = backbone
    assert AnomalyScorer.from_pretrained(bb, tok, "nll", device="cpu").methods == ["nll"]


def test_events_of_no_type_the_tokenizer_knows_are_refused_as_tokenize_refuses_them(scorer, ttbar):
    """Constituents given to an event-mode scorer were 'cannot reshape array of size 0 into shape (0,newaxis)'."""
    import awkward as ak

    from events.errors import EventDataError
    from events.model import Events, ObjectType

    events = ttbar[:5]
    objects = ak.with_field(events.objects, ak.full_like(events.objects["type"], int(ObjectType.CONSTITUENT)), "type")
    with pytest.raises(EventDataError, match=r"^events: object type\(s\) CONSTITUENT unknown to this event-mode "
                                             r"tokenizer \(it knows JET, BJET, ELECTRON, MUON, PHOTON, MET\)$"):
        scorer.score(Events(objects, events.info, events.process_names))


@pytest.mark.parametrize("options, message", [
    ({"n_events": -5}, "n_events: expected an integer >= 1, got -5"),  # was: no events, silently
    ({"n_events": 0}, "n_events: expected an integer >= 1, got 0"),
    ({"n_events": 2.5}, "n_events: expected an integer >= 1, got 2.5"),  # was: a TypeError
    ({"n_events": 3, "batch_size": 0}, "batch_size: expected an integer >= 1, got 0"),
    ({"n_events": 3, "temperature": float("nan")}, "temperature: expected a finite number, got nan"),
    ({"n_events": 3, "temperature": -1}, "temperature: expected a finite number >= 0, got -1"),
    ({"n_events": 3, "top_k": -3}, "top_k: expected an integer >= 0, got -3"),
    ({"n_events": 3, "top_p": 0}, "top_p: expected a number in (0, 1], got 0"),
    ({"n_events": 3, "seed": -1}, "seed: expected an integer >= 0, got -1"),
])
def test_sample_events_refuses_what_sample_py_refuses(backbone, options, message):
    import re

    from backbone.model import GPT
    from backbone.sampling import sample_events
    from tokenizer.tokenizer import Tokenizer

    bb, tok = backbone
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        sample_events(GPT.from_pretrained(bb), Tokenizer.from_pretrained(tok), process="ttbar", **options)


# --- damaged files and maps: one line naming the file and what is wrong ----------------------------
@needs_real
@pytest.mark.parametrize("keep", [100, 10_000, 45_000])
def test_a_truncated_root_file_says_so_in_one_line(tmp_path, keep):
    from events.errors import EventDataError
    from events.io import read_events

    (tmp_path / "t.root").write_bytes(REAL.read_bytes()[:keep])
    with pytest.raises(EventDataError, match=f"^{tmp_path / 't.root'}: truncated ROOT file \\({keep} of the 50467 "
                                             "bytes its header records\\)$"):
        read_events(tmp_path / "t.root")


def test_a_branch_map_without_a_required_key_names_it(tmp_path):
    from common.errors import ConfigError
    from events.schema import CONFIG_DIR, load_schema

    text = (CONFIG_DIR / "cms-hep-tutorial.yaml").read_text()
    (tmp_path / "map.yaml").write_text(text.replace("name: cms-hep-tutorial\n", ""))
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'map.yaml'}: missing key\\(s\\) name$"):
        load_schema(tmp_path / "map.yaml")
    (tmp_path / "map.yaml").write_text(text.replace("  - name: Jet\n    type: jet\n", "  - type: jet\n"))
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'map.yaml'}.collections\\[0\\]: missing key\\(s\\) name$"):
        load_schema(tmp_path / "map.yaml")


def test_a_truncated_score_file_names_the_file(tmp_path):
    import numpy as np

    from events.errors import EventDataError
    from finetune.score_store import ScoreWriter, read_object_scores, read_scores

    path = tmp_path / "s.h5"
    ids = {"run": np.ones(3, np.int64), "lumi": np.ones(3, np.int64), "event": np.arange(3)}
    with ScoreWriter(path, ("nll",)) as writer:
        writer.write(ids, np.zeros(3, np.int64), {"nll": np.array([1.5, 2.5, 3.5])})
    path.write_bytes(path.read_bytes()[:1000])
    for read in (read_scores, read_object_scores):
        with pytest.raises(EventDataError, match=f"^{path}: not a readable HDF5 file \\(.*truncated file"):
            read(path)


def test_an_event_id_that_is_not_a_whole_number_is_refused(tmp_path):
    """A flat tree's float event number 1.5 was read as event 1, silently."""
    import numpy as np

    from events.errors import EventDataError
    from events.io import read_events
    from tests.test_root import write_nanoaod

    assert read_events(write_nanoaod(tmp_path / "ok.root", event=np.array([1.0, 2.0, 3.0]))).info["event"].tolist() \
        == [1, 2, 3]
    path = write_nanoaod(tmp_path / "bad.root", event=np.array([1.0, 2.5, 3.0]))
    with pytest.raises(EventDataError, match=f"^{path}:Events: branch 'event' has 2.5 in entry 1; an event id is a "
                                             "whole number >= 0$"):
        read_events(path)


def test_a_model_is_not_saved_over_a_model_of_another_kind(backbone, trained, tmp_path):
    """A classifier saved into its backbone's folder replaced the backbone's config and weights."""
    import shutil

    from backbone.model import GPT
    from finetune import Classifier
    from finetune.config import HeadSection

    bb, _ = backbone
    tokenizer, _, tok = trained
    copy = tmp_path / "backbone"
    shutil.copytree(bb, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    classifier = Classifier.from_backbone(GPT.from_pretrained(copy), 2, HeadSection(), "frozen")
    with pytest.raises(UserError, match=f"^{copy}: holds a colliderfm backbone model; saving a colliderfm classifier "
                                        "here would replace it; choose another folder$"):
        classifier.save_pretrained(copy)
    with pytest.raises(UserError, match=f"^{copy}: holds a colliderfm backbone model; saving a colliderfm tokenizer "
                                        "here would replace it"):
        tokenizer.save_pretrained(copy)
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before
    with pytest.raises(UserError, match=f"^{tok}: holds a colliderfm tokenizer model; saving a colliderfm backbone "
                                        "here would replace it"):
        GPT.from_pretrained(copy).save_pretrained(tok)
    classifier.save_pretrained(tmp_path / "cls")
    classifier.save_pretrained(tmp_path / "cls")  # the same kind is saved again
    assert Classifier.from_pretrained(tmp_path / "cls").source == tmp_path / "cls"
