"""The events CLIs end to end, run as the README runs them."""
import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO


def run(*args, check=True):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def info(path):
    return json.loads(run("-m", "events.info", str(path), "--json").stdout)


def test_help_lists_processes():
    out = run("-m", "events.generate", "--help").stdout
    for name in ("wjets", "ww", "single_top_t", "single_top_s", "tw_proxy", "ttbar", "ttt_proxy", "tttt_proxy",
                 "top_jets", "qcd_jets"):
        assert name in out
    for module in ("events.info", "events.convert"):
        assert "usage" in run("-m", module, "--help").stdout


@pytest.mark.e2e  # separate processes (torchrun, worker pool or the CLI)
def test_generate_info_convert(tmp_path):
    h5, root, stats = tmp_path / "tt.h5", tmp_path / "tt.root", tmp_path / "stats.json"
    start = time.perf_counter()
    out = run("-m", "events.generate", "--process", "ttbar", "--events", "80", "--out", str(h5), "--seed", "3",
              "--workers", "2", "--block_size=40", "--stats", str(stats), "--quiet").stdout
    elapsed = time.perf_counter() - start
    assert "wrote 80 ttbar records" in out
    s = json.loads(stats.read_text())
    # the throughput is the events over the generation's own time (inside this command's) per worker
    workers = min(2, os.cpu_count() or 1)
    assert s["records"] == 80 and s["workers"] == workers and s["pythia_events"] >= 80
    assert 0 < s["seconds"] <= elapsed, (s["seconds"], elapsed)  # a part of this command's time
    # the rates from the rounded fields (seconds to 0.01 s, rates to 0.1 /s) within their rounding
    for key, cores in (("records_per_s", 1), ("records_per_s_per_core", workers)):
        lo, hi = (80 / (s["seconds"] + d) / cores for d in (0.005, -0.005))
        assert lo - 0.05 <= s[key] <= hi + 0.05, (key, s)
    # so at least the rate of the whole command, and no faster than Pythia can go (~100 ttbar/s/core here)
    assert 80 / elapsed / workers <= s["records_per_s_per_core"] < 5000, (s, elapsed)
    summary = info(h5)
    assert summary["events"] == 80 and summary["format"] == "hdf5"
    assert summary["processes"] == {"ttbar": 80} and summary["ntop"] == {"2t": 80}
    assert summary["objects"]["met"] == 80
    run("-m", "events.convert", str(h5), str(root))
    converted = info(root)
    assert converted["format"] == "nanoaod"
    assert converted["objects"] == summary["objects"] and converted["events"] == 80
    assert "Jet range" not in run("-m", "events.info", str(root)).stdout  # table, not JSON
    assert "pt range" in run("-m", "events.info", str(root)).stdout
    # several inputs concatenated in order, the first N of each: a mixed sample
    mixed = tmp_path / "mixed.h5"
    run("-m", "events.convert", str(h5), str(root), str(mixed), "--max-events", "30")
    from events.io import read_events
    both, first = read_events(mixed), read_events(h5)
    assert len(both) == 60 and both.info["event"].tolist() == first.info["event"][:30].tolist() * 2


def test_convert_reports_truncation(tmp_path, hzz_path):
    out = tmp_path / "hzz.h5"
    printed = run("-m", "events.convert", str(hzz_path), str(out), "--max-jets", "1").stdout
    summary = info(out)
    assert summary["events"] == 2421 and summary["truncated"]["objects"] > 0
    assert f"{summary['truncated']['objects']} objects beyond the caps" in printed


@pytest.mark.parametrize("args, message", [
    (("-m", "events.info", "missing.root"), "missing.root: no such file"),
    (("-m", "events.convert", "missing.root", "x.h5"), "missing.root: no such file"),
    (("-m", "events.info", "README.md", "--format", "nosuch"), "unknown format 'nosuch'"),
    (("-m", "events.generate", "--process", "ttbar", "--events", "5", "--out", "x.h5", "--reco.jet_ptmin=3"),
     "unknown key(s) jet_ptmin"),
    (("-m", "events.generate", "--process", "ttbar", "--events", "5", "--out", "x.txt"),
     "cannot tell the output format"),
])
def test_bad_input_is_one_line(args, message):
    proc = run(*args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_generate_rejects_unknown_process():
    proc = run("-m", "events.generate", "--process", "higgs", "--events", "5", "--out", "x.h5", check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
