"""Jobs over many files (common.filejobs, common.executors): inputs expanded in order, one output per
input or one combined, reruns that skip what is complete, failures reported at the end; the engine on
a toy job (fast tier), then the real tokenize and score commands in this process."""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from common.errors import ColliderFMError, UserError
from common.executors import open_executor, scheduler_spec, worker_cache
from common.filejobs import expand_inputs, is_single_output, plan, print_report, remove_stale_temporaries, run_file_job


@dataclass(frozen=True)
class Doubling:
    """A toy job: each input holds numbers, one per line; its output holds them doubled, with the signature."""

    factor: int = 2
    suffix = ".out.json"
    what = "toy output"

    def settings(self):
        return {"factor": self.factor}

    def check(self, inputs, out, combined):
        if self.factor == 0:
            raise UserError("factor 0 would zero every value")

    def signature_of(self, output):
        try:
            return json.loads(Path(output).read_text())["job"]
        except (OSError, ValueError, KeyError):
            return None

    def load(self):
        return worker_cache(("doubling", self.factor), lambda: self.factor)

    def run(self, input, output, signature, empty_ok):
        values = [int(line) * self.load() for line in Path(input).read_text().split()]  # ValueError on junk
        if not values and not empty_ok:
            raise UserError(f"{input}: holds no events")
        Path(output).write_text(json.dumps({"values": values, "job": signature}))
        return len(values), f"doubled {len(values)}"

    def combine(self, parts, inputs, out, signature):
        rows = [(i, v) for i, p in enumerate(parts) for v in json.loads(Path(p).read_text())["values"]]
        Path(out).write_text(json.dumps({"rows": rows, "inputs": inputs, "job": signature}))
        return len(rows), f"combined {len(rows)}"


def _inputs(folder: Path, contents: dict[str, str]) -> list[str]:
    folder.mkdir(exist_ok=True)
    for name, text in contents.items():
        (folder / name).write_text(text)
    return [str(folder / n) for n in contents]


def test_inputs_expand_globs_in_order_and_refuse_what_would_shrink_the_job(tmp_path):
    files = _inputs(tmp_path / "in", {"b.txt": "1", "a.txt": "2", "c.dat": "3"})
    assert expand_inputs([str(tmp_path / "in" / "*.txt"), files[2]]) == [files[1], files[0], files[2]]
    with pytest.raises(UserError, match="matches no file"):
        expand_inputs([str(tmp_path / "in" / "*.root")])
    (tmp_path / "link.txt").symlink_to(files[0])
    with pytest.raises(UserError, match="given twice"):
        expand_inputs([files[0], str(tmp_path / "link.txt")])
    os.link(files[0], tmp_path / "hard.txt")
    with pytest.raises(UserError, match=f"^{tmp_path / 'hard.txt'}: given twice among the inputs \\(also as {files[0]}"):
        expand_inputs([files[0], str(tmp_path / "hard.txt")])
    (tmp_path / "in" / "sub").mkdir()  # a glob matching a folder: refused now, not one failure at the end
    with pytest.raises(UserError, match=f"^{tmp_path / 'in' / 'sub'}: is a directory, not a file"):
        expand_inputs([str(tmp_path / "in" / "*")])
    bracket = _inputs(tmp_path / "in", {"run[1].txt": "4"})[0]  # a name, not a pattern, when it exists
    assert expand_inputs([bracket]) == [bracket]
    with pytest.raises(UserError, match="an input name is empty"):
        expand_inputs([bracket, " "])
    url = "root://eos.cms//store/data/a.root"
    assert expand_inputs([url]) == [url]  # verbatim: the // after the host is part of the name
    with pytest.raises(UserError, match="wildcards are not expanded in URLs"):
        expand_inputs(["root://eos.cms//store/data/*.root"])


def test_a_list_file_holds_one_input_per_line_never_an_option(tmp_path, monkeypatch):
    files = _inputs(tmp_path / "in", {"a.txt": "1", "b.txt": "2"})
    listing = tmp_path / "files.txt"
    listing.write_text(f"# inputs of run 7\n\n  {files[0]}  \n{tmp_path / 'in' / 'b*'}\t\n--out=elsewhere\n")
    assert expand_inputs([f"@{listing}"]) == [*files, "--out=elsewhere"]  # the last: a (missing) file's name
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    with pytest.raises(UserError, match=f"^@{tmp_path / 'empty.txt'}: lists no input$"):
        expand_inputs([f"@{tmp_path / 'empty.txt'}"])
    with pytest.raises(UserError, match=f"@{tmp_path / 'none.txt'}: cannot read the list of inputs"):
        expand_inputs([f"@{tmp_path / 'none.txt'}"])
    from tokenizer.tokenize import build_parser

    args = build_parser().parse_args(["--tokenizer", "t", "--input", f"@{listing}", "--out", "o"])
    assert args.input == [f"@{listing}"] and str(args.out) == "o"  # the list is not read as arguments


def test_outputs_are_named_after_inputs_and_a_clash_is_refused(tmp_path):
    job = Doubling()
    xa, yb = _inputs(tmp_path / "x", {"a.txt": "1"}) + _inputs(tmp_path / "y", {"b.txt": "2"})
    ya, = _inputs(tmp_path / "y", {"a.txt": "3"})
    tasks, parts = plan(job, [xa, yb, str(tmp_path / "missing.txt")], tmp_path / "out", single=False)
    assert [t.output.name for t in tasks] == ["a.out.json", "b.out.json", "missing.out.json"] and parts is None
    with pytest.raises(UserError, match="would both write"):
        plan(job, [xa, ya], tmp_path / "out", single=False)
    tasks, parts = plan(job, [xa, ya], tmp_path / "all.json", single=True)  # parts: numbered
    assert parts == tmp_path / "all.json.parts" and tasks[0].output != tasks[1].output


def test_a_job_runs_once_resumes_after_a_failure_and_redoes_only_what_changed(tmp_path, capsys):
    files = _inputs(tmp_path / "in", {"a.txt": "1 2", "b.txt": "x", "c.txt": "5"})
    out = tmp_path / "out"
    report = run_file_job(Doubling(), [*files, str(tmp_path / "gone.txt")], out, single=False, progress=False)
    assert print_report(report, out) == 1  # failed: nonzero exit, the others complete
    printed = capsys.readouterr().out
    assert "2 of 4 file(s) failed" in printed and f"{files[1]}: ValueError" in printed
    assert f"{tmp_path / 'gone.txt'}: FileNotFoundError" in printed
    assert json.loads((out / "a.out.json").read_text())["values"] == [2, 4]
    assert not (out / "b.out.json").exists()
    first = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    Path(files[1]).write_text("7")  # fixed: the rerun does only that file
    report = run_file_job(Doubling(), files, out, single=False, progress=False)
    assert [r.skipped for r in report.results] == [True, False, True] and print_report(report, out) == 0
    assert {p: out.joinpath(p).stat().st_mtime_ns for p in first} == first
    assert json.loads((out / "b.out.json").read_text())["values"] == [14]

    report = run_file_job(Doubling(factor=3), files, out, single=False, progress=False)  # other settings
    assert not any(r.skipped for r in report.results)
    assert json.loads((out / "a.out.json").read_text())["values"] == [3, 6]
    report = run_file_job(Doubling(factor=3), files, out, single=False, redo=True, progress=False)
    assert not any(r.skipped for r in report.results)


def test_a_combined_output_is_written_once_every_part_is_complete(tmp_path, capsys):
    files = _inputs(tmp_path / "in", {"a.txt": "1 2", "b.txt": "x", "c.txt": "5"})
    out = tmp_path / "all.json"
    assert print_report(run_file_job(Doubling(), files, out, single=True, progress=False), out) == 1
    printed = capsys.readouterr().out
    assert not out.exists() and f"(parts kept in {out}.parts)" in printed and "outputs in" not in printed
    Path(files[1]).write_text("3")
    report = run_file_job(Doubling(), files, out, single=True, progress=False)
    assert [r.skipped for r in report.results] == [True, False, True]
    assert json.loads(out.read_text())["rows"] == [[0, 2], [0, 4], [1, 6], [2, 10]]
    assert not Path(f"{out}.parts").exists()
    report = run_file_job(Doubling(), files, out, single=True, progress=False)
    assert all(r.skipped for r in report.results) and report.executor == ""  # nothing started
    print_report(report, out)
    assert "already complete" in capsys.readouterr().out


def test_an_input_without_events_is_an_error_alone_and_no_rows_among_others(tmp_path):
    files = _inputs(tmp_path / "in", {"a.txt": "1", "empty.txt": "", "c.txt": "5"})
    with pytest.raises(ColliderFMError, match="empty.txt: holds no events"):  # alone: most likely the wrong file
        print_report(run_file_job(Doubling(), files[1:2], tmp_path / "one.json", single=True, progress=False),
                     tmp_path / "one.json")
    out = tmp_path / "all.json"
    assert print_report(run_file_job(Doubling(), files, out, single=True, progress=False), out) == 0
    assert json.loads(out.read_text())["rows"] == [[0, 2], [2, 10]]
    assert print_report(run_file_job(Doubling(), files, tmp_path / "f", single=False, progress=False), out) == 0
    assert json.loads((tmp_path / "f" / "empty.out.json").read_text())["values"] == []


def test_parts_an_earlier_job_left_are_removed_and_other_files_kept(tmp_path, capsys):
    files = _inputs(tmp_path / "in", {"a.txt": "1", "b.txt": "2"})
    out = tmp_path / "all.json"
    parts = tmp_path / "all.json.parts"
    parts.mkdir()
    for stale in ("000002.c.out.json", ".000003.d.out.json.4242.0.tmp"):  # of a job with other inputs
        (parts / stale).write_text("{}")
    assert print_report(run_file_job(Doubling(), files, out, single=True, progress=False), out) == 0
    assert json.loads(out.read_text())["rows"] == [[0, 2], [1, 4]] and not parts.exists()
    parts.mkdir()
    (parts / "notes.txt").write_text("mine")
    assert print_report(run_file_job(Doubling(), files, out, single=True, redo=True, progress=False), out) == 0
    assert [p.name for p in parts.iterdir()] == ["notes.txt"]
    assert capsys.readouterr().out.endswith(f"combined 2; {parts} kept: it also holds notes.txt, not parts of a job\n")
    (parts / "notes.txt").unlink()
    (parts / "000000.a.out.json").write_text("{}")  # a run killed after its merge, before removing its parts
    report = run_file_job(Doubling(), files, out, single=True, progress=False)
    assert all(r.skipped for r in report.results) and not parts.exists()


def test_a_merge_killed_before_leaves_no_temporary_once_the_rerun_merged(tmp_path, capsys):
    files = _inputs(tmp_path / "in", {"a.txt": "1", "b.txt": "2"})
    out = tmp_path / "all.json"
    (tmp_path / ".all.json.4242.0.tmp").write_text("half a merge")  # SIGKILL while merging, in an earlier run
    assert print_report(run_file_job(Doubling(), files, out, single=True, progress=False), out) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.json", "in"]
    assert "removed 1 temporary file(s) left by interrupted writers" in capsys.readouterr().out


@dataclass(frozen=True)
class Unloadable(Doubling):
    def load(self):
        raise AssertionError("the model was loaded")


def test_bad_settings_and_a_file_in_place_of_the_part_folder_are_refused_before_models_load(tmp_path):
    files = _inputs(tmp_path / "in", {"a.txt": "1", "b.txt": "2"})
    with pytest.raises(UserError, match="^factor 0 would zero every value$"):
        run_file_job(Doubling(factor=0), files, tmp_path / "out", single=False, progress=False)
    assert not (tmp_path / "out").exists()
    (tmp_path / "all.json.parts").write_text("")
    with pytest.raises(UserError, match=f"^{tmp_path}/all.json.parts: the folder of the parts of {tmp_path}/all.json "
                                        f"is an existing file$"):
        run_file_job(Unloadable(), files, tmp_path / "all.json", single=True, progress=False)


def _fake_models(folder: Path) -> list[str]:
    """Model folders that name a model but hold none: a command that loads one fails."""
    for name in ("backbone", "tokenizer"):
        (folder / name).mkdir()
        (folder / name / "config.json").write_text("{}")
    return ["--backbone", str(folder / "backbone"), "--tokenizer", str(folder / "tokenizer")]


@pytest.mark.parametrize("option, message", [
    (["--era", "bogus"], "--era bogus: unknown era; known: auto, 2015, 2016preVFP"),
    (["--selection", "bogus"], "--selection bogus: no branch map of format auto has this selection (they have: reco;"),
    (["--format", "hdf5", "--selection", "reco"], "--selection reco: no branch map of format hdf5 has this selection"),
    (["--format", "bogus"], "unknown format 'bogus'"),
])
def test_reading_settings_are_refused_once_before_any_file(tmp_path, option, message):
    from finetune.anomaly import main as anomaly
    from tokenizer.tokenize import main as tokenize

    models, inputs = _fake_models(tmp_path), [str(tmp_path / "a.root"), str(tmp_path / "b.h5")]
    for command in (["score", *models], ["--tokenizer", models[3]]):
        main = anomaly if command[0] == "score" else tokenize
        with pytest.raises(ColliderFMError) as err:
            main([*command, "--input", *inputs, "--out", str(tmp_path / "out"), *option])
        assert str(err.value).startswith(message) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("wp", ["nan", "tightest"])
def test_a_working_point_no_tagger_takes_is_refused_with_the_arguments(tmp_path, capsys, wp):
    from finetune.anomaly import main as anomaly
    from tokenizer.tokenize import main as tokenize

    models, inputs = _fake_models(tmp_path), [str(tmp_path / "a.root"), str(tmp_path / "b.h5")]
    for main, command in ((anomaly, ["score", *models]), (tokenize, ["--tokenizer", models[3]])):
        with pytest.raises(SystemExit) as err:
            main([*command, "--input", *inputs, "--out", str(tmp_path / "out"), "--btag-wp", wp])
        assert err.value.code == 2 and not (tmp_path / "out").exists()
        assert f"argument --btag-wp: b-tag working point '{wp}': give loose, medium, tight or a finite number" \
            in capsys.readouterr().err


def test_outputs_a_command_cannot_write_are_refused_before_any_file(tmp_path):
    from finetune.anomaly import main as anomaly
    from tokenizer.tokenize import main as tokenize

    models = _fake_models(tmp_path)
    comma = str(tmp_path / "run,7.root")
    with pytest.raises(ColliderFMError, match=f"^{tmp_path}/all.csv: an input name holds a comma or newline; write "
                                              f"the scores as .h5$"):
        anomaly(["score", *models, "--input", comma, str(tmp_path / "b.root"), "--out", str(tmp_path / "all.csv")])
    assert not (tmp_path / "all.csv.parts").exists()
    with pytest.raises(UserError, match=rf"^{tmp_path}/tok.csv: cannot write .csv here; give a file ending in .h5, "
                                        rf".hdf5 \(one combined output\) or a folder"):
        tokenize(["--tokenizer", models[3], "--input", comma, "--out", str(tmp_path / "tok.csv")])
    assert not (tmp_path / "tok.csv").exists()
    (tmp_path / "tok.csv").mkdir()  # an existing folder of that name is a folder
    assert is_single_output(tmp_path / "tok.csv", (".h5", ".hdf5")) is False


def test_an_unreachable_scheduler_is_refused_at_once_and_makes_no_folder(tmp_path):
    pytest.importorskip("distributed")
    import socket

    from tokenizer.tokenize import main as tokenize

    models = _fake_models(tmp_path)
    files = _inputs(tmp_path / "in", {"a.h5": "", "b.h5": ""})
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address, why in ((f"tcp://127.0.0.1:{port}", f"cannot connect to 127.0.0.1 port {port} (Connection refused)"),
                         ("tcp://no-such-host.invalid:8786", "cannot resolve the host 'no-such-host.invalid'")):
        with pytest.raises(UserError, match=f"^--scheduler {address}: {re.escape(why)}"):
            tokenize(["--tokenizer", models[3], "--input", *files, "--out", str(tmp_path / "out"),
                      "--scheduler", address])
        assert not (tmp_path / "out").exists()


@dataclass(frozen=True)
class OvertakenDoubling(Doubling):
    """The same, but a twin of each task (Dask rescheduled it, thinking this worker lost) finishes first."""

    def run(self, input, output, signature, empty_ok):
        from common.atomic import atomic_path

        with atomic_path(output, keep_theirs=True) as tmp:
            values = [int(line) * self.factor for line in Path(input).read_text().split()]
            tmp.write_text(json.dumps({"values": values, "job": signature}))
            Path(output).write_text(json.dumps({"values": values, "job": signature}))  # the twin
        return len(values), "unreachable"


def test_a_task_whose_twin_finished_first_is_done_and_keeps_no_copy(tmp_path):
    files = _inputs(tmp_path / "in", {"a.txt": "1 2"})
    report = run_file_job(OvertakenDoubling(), files, tmp_path / "out", single=False, progress=False)
    assert not report.failed and report.results[0].skipped
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.out.json"]


def test_one_input_that_fails_is_the_command_error(tmp_path):
    files = _inputs(tmp_path / "in", {"bad.txt": "x"})
    report = run_file_job(Doubling(), files, tmp_path / "one.json", single=True, progress=False)
    with pytest.raises(ColliderFMError, match="ValueError: invalid literal"):
        print_report(report, tmp_path / "one.json")


def test_an_output_may_not_replace_an_input_or_a_model(tmp_path):
    files = _inputs(tmp_path / "in", {"a.txt": "1"})
    with pytest.raises(UserError, match="is also an input"):
        run_file_job(Doubling(), files, files[0], single=True, progress=False)
    with pytest.raises(UserError, match="would hold or overwrite the input"):
        run_file_job(Doubling(), files, tmp_path / "in", single=False, progress=False)


def test_temporaries_of_killed_writers_are_removed_beside_complete_outputs_only(tmp_path):
    (tmp_path / "a.h5").write_text("done")
    for name in (".a.h5.123.0.tmp", ".a.h5.77.3.tmp", ".b.h5.5.0.tmp", ".a.h5.notes"):
        (tmp_path / name).write_text("")
    assert remove_stale_temporaries([tmp_path / "a.h5", tmp_path / "b.h5"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.h5.notes", ".b.h5.5.0.tmp", "a.h5"]


def test_scheduler_values_and_engines(monkeypatch):
    for good in ("none", "local", "local:3", "tcp://10.0.0.1:8786", "scheduler.cluster:8786"):
        assert scheduler_spec(good) == good
    for bad in ("local:0", "local:x", "dask", "tcp://host"):
        with pytest.raises(Exception, match="expected none, local"):
            scheduler_spec(bad)
    with pytest.raises(UserError, match="not both"):
        with open_executor("local:2", workers=2):
            pass
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the dask extra were not installed
    with pytest.raises(UserError, match=r"needs Dask: pip install 'colliderfm\[dask\]'"):
        with open_executor("local:2"):
            pass


def test_a_model_is_made_once_per_process_and_key():
    made = []
    for key in ("a", "a", "b", "a"):
        worker_cache(("test", key), lambda: made.append(key) or key)
    assert made == ["a", "b"]
    for key in ("c", "d", "a"):  # two kept: "a" was evicted
        worker_cache(("test", key), lambda: made.append(key) or key, keep=2)
    assert made == ["a", "b", "c", "d", "a"]


def test_the_default_install_needs_no_dask():
    code = ("import sys; import events.generate, events.pythia, tokenizer.tokenize, finetune.anomaly, "
            "common.filejobs, demo; from common.executors import open_executor\n"
            "with open_executor('none', 2): pass\n"
            "assert not {'dask', 'distributed'} & set(sys.modules), sorted(m for m in sys.modules if 'dask' in m)")
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- the real commands, in this process ------------------------------------------------------------------
def _score_args(backbone, *args):
    bb, tok = backbone
    return ["score", "--backbone", str(bb), "--tokenizer", str(tok), "--device", "cpu", "--quiet",
            "--n-masks", "2", *map(str, args)]


@pytest.fixture(scope="module")
def event_files(ttbar, tmp_path_factory):
    """Three small event files (two HDF5, one ROOT) and a corrupt one."""
    from events.io import write_events

    folder = tmp_path_factory.mktemp("many")
    paths = [folder / "f0.h5", folder / "f1.h5", folder / "f2.root"]
    for i, p in enumerate(paths):
        write_events(ttbar[100 * i:100 * i + 60 + 20 * i], p)
    (folder / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    return paths, folder / "broken.h5"


def test_scoring_many_files_keeps_each_file_as_a_call_of_its_own(backbone, event_files, tmp_path, capsys):
    from finetune.anomaly import main
    from finetune.score_store import read_scores

    paths, broken = event_files
    for p in paths:
        assert main(_score_args(backbone, "--input", p, "--out", tmp_path / f"{p.stem}.h5")) == 0
    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(map(str, [paths[0], broken, *paths[1:]])) + "\n")
    assert main(_score_args(backbone, "--input", f"@{listing}", "--out", tmp_path / "folder")) == 1
    printed = capsys.readouterr().out
    assert "1 of 4 file(s) failed" in printed and str(broken) in printed
    for p in paths:
        alone, in_job = read_scores(tmp_path / f"{p.stem}.h5"), read_scores(tmp_path / "folder" / f"{p.stem}.scores.h5")
        assert alone.keys() == in_job.keys()
        for k in alone:
            np.testing.assert_array_equal(alone[k], in_job[k], err_msg=k)
    # the same files combined: one CSV, each row's input named, rows in input order
    assert main(_score_args(backbone, "--input", *paths, "--out", tmp_path / "all.csv")) == 0
    combined = read_scores(tmp_path / "all.csv")
    for p in paths:
        rows = combined["input"] == str(p)
        alone = read_scores(tmp_path / f"{p.stem}.h5")
        np.testing.assert_array_equal(combined["event"][rows], alone["event"])
        np.testing.assert_allclose(combined["masked"][rows], alone["masked"], rtol=1e-7)
    assert combined["input"].tolist() == sorted(combined["input"].tolist(), key=[str(p) for p in paths].index)


def test_tokenizing_many_files_into_one_store_records_each_events_input(backbone, event_files, tmp_path):
    from events.io import read_events
    from tokenizer.store import iter_tokens
    from tokenizer.tokenize import main
    from tokenizer.tokenizer import Tokenizer

    paths, _ = event_files
    tok_folder = backbone[1]
    assert main(["--tokenizer", str(tok_folder), "--input", *map(str, paths), "--out", str(tmp_path / "t.h5"),
                 "--quiet", "--device", "cpu"]) == 0
    stored = list(iter_tokens(tmp_path / "t.h5"))[0]
    tokenizer = Tokenizer.from_pretrained(tok_folder)
    expected = [tokenizer.encode(read_events(p)) for p in paths]
    assert stored.ids.tolist() == sum((e.ids.tolist() for e in expected), [])
    np.testing.assert_array_equal(stored.info["input"], np.repeat([0, 1, 2], [len(e) for e in expected]))
    import h5py

    with h5py.File(tmp_path / "t.h5") as f:
        assert json.loads(f.attrs["inputs"]) == [str(p) for p in paths]
    before = os.stat(tmp_path / "t.h5").st_mtime_ns
    assert main(["--tokenizer", str(tok_folder), "--input", *map(str, paths), "--out", str(tmp_path / "t.h5"),
                 "--quiet", "--device", "cpu"]) == 0
    assert os.stat(tmp_path / "t.h5").st_mtime_ns == before  # complete: skipped


def test_the_head_method_needs_a_reference_and_a_reference_alone_adds_no_method(backbone, event_files, tmp_path):
    from finetune.anomaly import main
    from finetune.score_store import read_scores

    paths, _ = event_files
    with pytest.raises(UserError, match="method head needs --reference"):  # before any file is scored
        main(_score_args(backbone, "--input", *paths, "--out", tmp_path / "none", "--method", "head"))
    assert not (tmp_path / "none").exists()
    assert main(_score_args(backbone, "--input", paths[0], "--out", tmp_path / "s.h5", "--method", "nll",
                            "--reference", paths[1])) == 0
    assert "head" not in read_scores(tmp_path / "s.h5")


def test_an_input_without_events_adds_no_rows_to_a_job_of_several(backbone, event_files, ttbar, tmp_path):
    from events.io import write_events
    from finetune.anomaly import main as anomaly
    from finetune.score_store import read_scores
    from tokenizer.store import iter_tokens
    from tokenizer.tokenize import main as tokenize

    paths, _ = event_files
    empty = [tmp_path / "zero.h5", tmp_path / "zero_nano.root"]
    write_events(ttbar[:0], empty[0])
    write_events(ttbar[:0], empty[1], "nanoaod")
    inputs = [empty[0], paths[0], empty[1]]
    assert tokenize(["--tokenizer", str(backbone[1]), "--quiet", "--device", "cpu", "--input", *map(str, inputs),
                     "--out", str(tmp_path / "t.h5")]) == 0
    stored, = iter_tokens(tmp_path / "t.h5")
    assert stored.info["input"].tolist() == [1] * 60
    assert anomaly(_score_args(backbone, "--method", "nll", "--input", *inputs, "--out", tmp_path / "s.csv")) == 0
    assert read_scores(tmp_path / "s.csv")["input"].tolist() == [str(paths[0])] * 60
    assert anomaly(_score_args(backbone, "--method", "nll", "--input", *inputs, "--out", tmp_path / "folder")) == 0
    assert [len(read_scores(tmp_path / "folder" / f"{p.stem}.scores.h5")["event"]) for p in inputs] == [0, 60, 0]
