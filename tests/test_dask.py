"""The data side on Dask, on a LocalCluster of 2 worker processes: the same events and scores as the
single-process path, a model loaded once per worker, nothing lost when a worker is killed mid-job,
and a rerun that skips what is complete. (The engine's own logic: tests/test_filejobs.py.)"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("distributed")

pytestmark = pytest.mark.e2e  # worker processes import torch: seconds each


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of 2 single-threaded worker processes, shared by the tests that take its address."""
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c, \
            Client(c) as client:
        yield c.scheduler_address, client


@pytest.fixture(scope="module")
def inputs(ttbar, tmp_path_factory):
    from events.io import write_events

    folder = tmp_path_factory.mktemp("dask_inputs")
    paths = [folder / f"data{i}.h5" for i in range(6)]
    for i, p in enumerate(paths):
        write_events(ttbar[150 * i:150 * (i + 1)], p)
    return paths


def _job(backbone):
    from finetune.score_files import ScoreJob

    bb, tok = backbone
    return ScoreJob(str(bb), str(tok), device="cpu", scorer={"n_masks": 4})


def _assert_same_scores(a: Path, b: Path):
    from finetune.score_store import read_scores

    x, y = read_scores(a), read_scores(b)
    assert x.keys() == y.keys()
    for k in x:
        if x[k].dtype.kind == "f":  # one torch thread per worker here, two in this process: last-bit sums
            np.testing.assert_allclose(x[k], y[k], rtol=1e-6, atol=1e-9, err_msg=k)
        else:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


@pytest.fixture(scope="module")
def separate(backbone, inputs, tmp_path_factory):
    """Each input scored by a call of its own, in this process: what every Dask job must reproduce."""
    from finetune.anomaly import main

    folder = tmp_path_factory.mktemp("separate")
    bb, tok = backbone
    for p in inputs:
        assert main(["score", "--backbone", str(bb), "--tokenizer", str(tok), "--input", str(p), "--out",
                     str(folder / f"{p.stem}.h5"), "--device", "cpu", "--quiet", "--n-masks", "4"]) == 0
    return folder


def test_generation_gives_the_same_events_on_every_engine(cluster):
    from events.model import Events
    from events.pythia import GenerateConfig, GenerateStats, generate

    config = GenerateConfig(block_size=40)
    runs = {}
    for engine in ({"workers": 1}, {"workers": 2}, {"scheduler": "local:2"}, {"scheduler": cluster[0]}):
        stats = GenerateStats()
        runs[str(engine)] = Events.concatenate(generate("wjets", 150, seed=5, config=config, stats=stats,
                                                        progress=False, **engine))
        assert stats.records == 150 and stats.workers == engine.get("workers", 2)
    one = runs["{'workers': 1}"]
    for name, events in runs.items():
        assert ak.to_list(events.objects) == ak.to_list(one.objects), name
        for k in one.info:
            np.testing.assert_array_equal(events.info[k], one.info[k], err_msg=f"{name}: {k}")


def test_three_files_on_a_local_cluster_score_as_three_calls_and_a_rerun_skips_them(backbone, inputs, separate,
                                                                                    tmp_path, capsys):
    from finetune.anomaly import main

    bb, tok = backbone
    args = ["score", "--backbone", str(bb), "--tokenizer", str(tok), "--input", *map(str, inputs[:3]), "--out",
            str(tmp_path / "scores"), "--device", "cpu", "--quiet", "--n-masks", "4", "--scheduler", "local:2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "3 of 3 files done" in printed and "Dask LocalCluster of 2 worker processes" in printed
    for p in inputs[:3]:
        _assert_same_scores(separate / f"{p.stem}.h5", tmp_path / "scores" / f"{p.stem}.scores.h5")
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "scores").iterdir()}
    assert main(args) == 0
    assert "already complete" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "scores").iterdir()} == stamps


def test_each_worker_loads_the_model_once(backbone, inputs, separate, cluster, tmp_path):
    from common.filejobs import run_file_job

    address, _ = cluster
    report = run_file_job(_job(backbone), [str(p) for p in inputs], tmp_path, single=False, scheduler=address,
                          progress=False)
    assert not report.failed and report.workers == 2
    workers = {r.worker for r in report.results}
    assert 1 <= len(workers) <= 2 and {r.loads for r in report.results} == {1}  # 6 files, one load per worker
    for p in inputs:
        _assert_same_scores(separate / f"{p.stem}.h5", tmp_path / f"{p.stem}.scores.h5")


def _kill_a_busy_worker(client, out: Path, n_files: int, killed: dict) -> None:
    """Once a first output exists, SIGKILL a worker that is running a task (the job is then mid-way)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = list(out.glob("*.scores.h5"))
        busy = [w for w, tasks in client.processing().items() if tasks]
        if done and busy and len(done) < n_files:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.update(pid=pid, done_before=len(done))
            return
        time.sleep(0.02)


def test_a_worker_killed_mid_job_loses_nothing(backbone, inputs, separate, cluster, tmp_path):
    from common.filejobs import run_file_job

    address, client = cluster
    client.wait_for_workers(2)
    killed: dict = {}
    killer = threading.Thread(target=_kill_a_busy_worker, args=(client, tmp_path, len(inputs), killed))
    killer.start()
    report = run_file_job(_job(backbone), [str(p) for p in inputs], tmp_path, single=False, scheduler=address,
                          redo=True, progress=False)
    killer.join()
    assert killed and killed["done_before"] < len(inputs), killed  # the kill landed mid-job
    assert not report.failed, [r.error for r in report.failed]
    assert sum(r.events for r in report.results) == 6 * 150
    print(f"killed worker {killed['pid']} after {killed['done_before']} of {len(inputs)} files; results from "
          f"{sorted({r.worker for r in report.results})}; {report.removed_temporaries} temporaries removed")
    for p in inputs:
        _assert_same_scores(separate / f"{p.stem}.h5", tmp_path / f"{p.stem}.scores.h5")
    assert not list(tmp_path.glob(".*.tmp"))  # what the killed writer left is gone


def test_a_combined_token_store_on_the_cluster_equals_the_one_made_here(backbone, inputs, cluster, tmp_path):
    from tokenizer.store import iter_tokens
    from tokenizer.tokenize import main

    address, _ = cluster
    tok = str(backbone[1])
    common = ["--tokenizer", tok, "--input", *map(str, inputs[:3]), "--quiet", "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "here.h5")]) == 0
    assert main([*common, "--out", str(tmp_path / "there.h5"), "--scheduler", address]) == 0
    here, there = (list(iter_tokens(tmp_path / f, 10_000))[0] for f in ("here.h5", "there.h5"))
    assert here.ids.tolist() == there.ids.tolist()
    for k in here.info:
        np.testing.assert_array_equal(here.info[k], there.info[k], err_msg=k)
    np.testing.assert_array_equal(there.info["input"], np.repeat([0, 1, 2], 150))


def test_local_workers_get_their_share_of_the_cores_and_the_default_malloc():
    """Dask's MALLOC_TRIM_THRESHOLD_=65536 made torch 2.2-2.6x slower in its workers (common.executors);
    each of N local workers gets cores/N threads, also after another cluster ran in this process."""
    from common.executors import open_executor

    for n in (1, 2):
        with open_executor(f"local:{n}") as executor:
            env = [executor.submit(os.getenv, k).result() for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")]
        assert env == [None, str(max(1, (os.cpu_count() or 1) // n))]
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_the_command_on_a_local_cluster_finishes_the_good_files_and_lists_the_bad_one(backbone, inputs, tmp_path):
    import subprocess
    import sys

    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    args = [sys.executable, "-m", "tokenizer.tokenize", "--tokenizer", str(backbone[1]), "--input",
            str(inputs[0]), str(broken), str(inputs[1]), "--out", str(tmp_path / "tokens"), "--device", "cpu",
            "--scheduler", "local:2"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "2 of 3 files done" in proc.stdout and "1 of 3 file(s) failed" in proc.stdout
    assert f"  {broken}: not a readable HDF5 file" in proc.stdout
    assert "Traceback" not in proc.stderr and "token stores: 100%" in proc.stderr  # the job's one bar
    assert sorted(p.name for p in (tmp_path / "tokens").iterdir()) == ["data0.tokens.h5", "data1.tokens.h5"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 1 and "0 of 3 files done, 2 skipped" in proc.stdout  # only the bad one retried
