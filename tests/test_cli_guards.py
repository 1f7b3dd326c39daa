"""Every command refuses what would lose data or silently give wrong results, before any work: an output
that is an input, bad sizes, counts, rates and devices, non-finite numbers, folders where files are
expected; and a stopped command leaves no temporary file behind."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

from events.io import write_events
from tests.conftest import REPO


def run(*args, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def one_line_error(proc, *fragments):
    """Exit 2 with one error line (argparse adds its usage line before it) holding every fragment."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, (fragment, proc.stderr)


@pytest.fixture(scope="module")
def events_file(ttbar, tmp_path_factory):
    path = tmp_path_factory.mktemp("guards") / "ttbar.h5"
    write_events(ttbar[:200], path)
    return path


def _score(backbone, *args):
    bb, tok = backbone
    return ("-m", "finetune.anomaly", "score", "--backbone", bb, "--tokenizer", tok, "--device", "cpu", "--quiet", *args)


def _sample(backbone, *args):
    bb, tok = backbone
    return ("sample.py", "--backbone", bb, "--tokenizer", tok, "--device", "cpu", *args)


def test_output_equal_to_an_input_is_refused_and_the_input_kept(backbone, events_file, tmp_path):
    copy = tmp_path / "x.h5"
    copy.write_bytes(events_file.read_bytes())
    link = tmp_path / "link.h5"
    link.symlink_to(copy)
    before = copy.read_bytes()
    bb, tok = backbone
    for args in (_score(backbone, "--input", copy, "--out", copy),
                 _score(backbone, "--input", copy, "--out", link),
                 ("-m", "tokenizer.tokenize", "--tokenizer", tok, "--input", copy, "--out", copy),
                 ("-m", "events.convert", copy, link)):
        one_line_error(run(*args), "is also an input")
    assert copy.read_bytes() == before
    model = tmp_path / "backbone"
    shutil.copytree(bb, model)
    (model / "events.h5").write_bytes(before)
    one_line_error(run("sample.py", "--backbone", model, "--tokenizer", tok, "--device", "cpu", "--events", 5,
                       "--process", "ttbar", "--out", model / "events.h5"), "would overwrite a file of the input folder")
    assert (model / "events.h5").read_bytes() == before
    # a run folder that holds an input, or is the backbone it fine-tunes
    one_line_error(run("-m", "finetune.classify", "--backbone", bb, "--tokenizer", tok, "--train", copy,
                       "--out", bb), "would hold or overwrite the input")
    one_line_error(run("-m", "tokenizer.train", f"--data.files=['{copy}']", f"--out={tmp_path}"),
                   "would hold or overwrite the input")


@pytest.mark.parametrize("args, fragment", [
    (("-m", "events.convert", "{ev}", "{tmp}/o.h5", "--step-size", "-5"), "--step-size: expected an integer >= 1"),
    (("-m", "events.convert", "{ev}", "{tmp}/o.h5", "--step-size", "0"), "--step-size: expected an integer >= 1"),
    (("-m", "events.convert", "{ev}", "{tmp}/o.h5", "--max-jets", "-1"), "--max-jets: expected an integer >= 0"),
    (("-m", "events.info", "{ev}", "--step-size", "0"), "--step-size: expected an integer >= 1"),
    (("-m", "events.generate", "--process", "ttbar", "--events", "0", "--out", "{tmp}/g.h5"),
     "--events: expected an integer >= 1"),
    (("-m", "events.compare", "{ev}", "{ev}", "--draws", "0"), "--draws: expected an integer >= 1"),
    (("-m", "tokenizer.train", "--train.batch_size=0"), "batch_size must be >= 1"),
    (("-m", "tokenizer.train", "--train.lr=.nan"), "expected a finite number"),
    (("-m", "backbone.pretrain", "--train.mask_rate=1.5"), "mask_rate must be in [0, 1)"),
    (("-m", "backbone.pretrain", "--train.device=tpu"), "device must be auto, cpu, cuda or cuda:N"),
])
def test_bad_sizes_and_rates_are_refused_at_parse_time(events_file, tmp_path, args, fragment):
    args = [a.format(ev=events_file, tmp=tmp_path) for a in args]
    one_line_error(run(*args), fragment)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("extra, fragment", [
    (("--temperature", "nan"), "--temperature: expected a finite number"),
    (("--temperature", "inf"), "--temperature: expected a finite number"),
    (("--temperature", "-1"), "--temperature: expected a finite number >= 0"),
    (("--top-k", "-3"), "--top-k: expected an integer >= 0"),
    (("--top-p", "0"), "--top-p: expected a number in (0, 1]"),
    (("--top-p", "1.5"), "--top-p: expected a number in (0, 1]"),
    (("--device", "tpu"), "--device: expected auto, cpu, cuda or cuda:N"),
    (("--batch-size", "0"), "--batch-size: expected an integer >= 1"),
    (("--process", "nosuch"), "was not trained on process 'nosuch'"),
])
def test_sample_refuses_bad_arguments(backbone, tmp_path, extra, fragment):
    args = _sample(backbone, "--events", 5, "--out", tmp_path / "s.h5")
    if "--process" not in extra:
        args += ("--process", "ttbar")
    one_line_error(run(*args, *extra), fragment)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("extra, fragment", [
    (("--batch-size", "0"), "--batch-size: expected an integer >= 1"),
    (("--step-size", "-1"), "--step-size: expected an integer >= 1"),
    (("--n-masks", "0"), "--n-masks: expected an integer >= 1"),
    (("--mask-rate", "nan"), "--mask-rate: expected a finite number"),
    (("--mask-rate", "1"), "--mask-rate: expected a number in (0, 1)"),
])
def test_score_refuses_bad_arguments(backbone, events_file, tmp_path, extra, fragment):
    one_line_error(run(*_score(backbone, "--input", events_file, "--out", tmp_path / "s.h5"), *extra), fragment)
    assert not list(tmp_path.iterdir())


def test_folders_where_files_are_expected(backbone, events_file, tmp_path):
    (tmp_path / "dir.h5").mkdir()
    one_line_error(run("-m", "events.convert", events_file, tmp_path / "dir.h5"), "is a directory")
    one_line_error(run(*_sample(backbone, "--events", 5, "--process", "ttbar", "--out", tmp_path / "dir.h5")),
                   "is a directory")
    one_line_error(run("-m", "events.info", tmp_path), "is a directory, not a file")
    one_line_error(run("-m", "events.convert", tmp_path / "dir.h5", tmp_path / "o.h5"), "is a directory, not a file")
    one_line_error(run(*_score(backbone, "--input", tmp_path, "--out", tmp_path / "s.h5")), "is a directory")
    # a folder the file system refuses (root ignores permission bits, not /sys)
    one_line_error(run("-m", "events.convert", events_file, "/sys/colliderfm-guard.h5"), "colliderfm-guard.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.h5"]


def _stopped_leaves_nothing(args, out, tmp_path):
    """Start a command, SIGTERM it once its hidden temporary output exists; nothing must be left."""
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    start = time.time()
    while not list(out.parent.glob(f".{out.name}.*.tmp")):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - start < 240, "the temporary output never appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM; no partial output was left" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())


def test_sigterm_leaves_no_temporary_file(backbone, events_file, tmp_path):
    big = tmp_path.parent / f"{tmp_path.name}-input.h5"
    from events.io import read_events
    from events.model import Events

    ev = read_events(events_file)
    write_events(Events.concatenate([ev] * 30), big)
    _stopped_leaves_nothing(_score(backbone, "--input", big, "--out", tmp_path / "s.h5", "--step-size", "200"),
                            tmp_path / "s.h5", tmp_path)
    _stopped_leaves_nothing(_sample(backbone, "--events", 200000, "--process", "ttbar", "--batch-size", "64",
                                    "--out", tmp_path / "s.root"), tmp_path / "s.root", tmp_path)


def test_generate_refuses_a_folder_as_statistics_file_before_generating(tmp_path):
    proc = run("-m", "events.generate", "--process", "ttbar", "--events", "5", "--out", tmp_path / "g.h5",
               "--stats", tmp_path, "--quiet")
    one_line_error(proc, f"{tmp_path}: is a directory; give a file path for the statistics file")
    assert not (tmp_path / "g.h5").exists()


REAL = REPO.parent / "shared" / "data" / "cms-opendata-2015-ttbar-nanoaod-rntuple.root"


@pytest.mark.skipif(not REAL.is_file(), reason="shared real NanoAOD file not present")
@pytest.mark.parametrize("command, wp, fragment", [
    ("events.info", "nan", "argument --btag-wp: b-tag working point 'nan': give loose, medium, tight or a finite number"),
    ("events.convert", "nan", "argument --btag-wp: b-tag working point 'nan': give loose, medium, tight or a finite "
                              "number"),
    ("events.info", "0", "Events: b-tag working point '0': give loose, medium, tight or a number in (0, 1)"),
    ("events.info", "-0.5", "Events: b-tag working point '-0.5': give loose, medium, tight or a number in (0, 1)"),
    ("events.convert", "2.0", "Events: b-tag working point '2.0': give loose, medium, tight or a number in (0, 1)"),
])
def test_a_btag_working_point_outside_the_rule_is_refused(tmp_path, command, wp, fragment):
    """nan read every b-tag as NaN (or no b-jets), -0.5 tagged every jet and 2.0 none, all with exit 0; 0 was a
    ZeroDivisionError traceback."""
    out = (tmp_path / "o.h5",) if command == "events.convert" else ()
    one_line_error(run("-m", command, REAL, *out, "--selection", "reco", f"--btag-wp={wp}"), fragment)
    assert not list(tmp_path.iterdir())
