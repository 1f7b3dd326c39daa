"""The built-in event source: Pythia 8 + FastJet, in parallel, reproducible from one seed.

Events are made in fixed-size blocks. Block b of a run with seed s always uses the same Pythia and
smearing seeds (derived from (s, b)), and blocks are written in order, so the same seed gives the
same events whatever the number of workers and wherever they run (common.executors: this process,
forked processes, or Dask). Event ids: run = seed, lumi = block, event = index of the record in the
output.
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from events.model import Caps, Events
from events.processes import Process, get_process
from events.reco import Particles, RecoConfig, reconstruct_events, reconstruct_jets


@dataclass(frozen=True)
class GenerateConfig:
    """Settings of a generation run beyond process, size and seed (YAML: configs/generate/)."""

    block_size: int = 500  # Pythia events per block; part of the seed contract: same value, same events
    ecm: float = 13000.0
    caps: Caps = field(default_factory=Caps)
    reco: RecoConfig = field(default_factory=RecoConfig)
    pythia: tuple[str, ...] = ()  # extra Pythia settings strings, applied after the process's own

    def __post_init__(self):
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")


def _seeds(seed: int, block: int) -> tuple[int, np.random.Generator]:
    state = np.random.SeedSequence([seed, block]).generate_state(2)
    return int(state[0] % 900_000_000) + 1, np.random.default_rng(state[1])


def generate_block(process: Process, seed: int, block: int, config: GenerateConfig) -> Events:
    """The records of one block (Pythia events reconstructed); run in worker processes."""
    import pythia8mc

    pythia_seed, rng = _seeds(seed, block)
    pythia = pythia8mc.Pythia("", False)
    for setting in (f"Beams:eCM = {config.ecm}", "Print:quiet = on", "Random:setSeed = on",
                    f"Random:seed = {pythia_seed}", *process.settings, *config.pythia):
        if not pythia.readString(setting):
            raise ValueError(f"Pythia rejected the setting {setting!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialize process {process.name}")
    batch = pythia.nextBatch(config.block_size)
    particles = Particles(batch.prt, pythia.particleData)
    weights = np.asarray([w[0] if len(w) else 1.0 for w in batch.info.weights.tolist()], dtype=np.float32)
    if process.mode == "jet":
        objects, n_truncated, info, source = reconstruct_jets(particles, config.reco, config.caps,
                                                              top_matched=process.ntop > 0)
        info["weight"] = weights[source]
    else:
        objects, n_truncated = reconstruct_events(particles, config.reco, config.caps, rng)
        info = {"weight": weights}
    n = len(objects)
    info.update(run=np.full(n, seed), lumi=np.full(n, block), n_truncated=n_truncated,
                process=np.zeros(n), ntop=np.full(n, process.ntop))
    return Events(objects, info, (process.name,))


@dataclass
class GenerateStats:
    """What a generation run did: records made, Pythia events used, wall time, workers."""

    records: int = 0
    pythia_events: int = 0
    seconds: float = 0.0
    workers: int = 1
    truncated_objects: int = 0

    @property
    def records_per_s_per_core(self) -> float:
        return self.records / max(self.seconds, 1e-9) / self.workers


def generate(process: str, n_events: int, *, seed: int = 1, workers: int = 1, scheduler: str = "none",
             config: GenerateConfig = GenerateConfig(), stats: GenerateStats | None = None,
             progress: bool = True) -> Iterator[Events]:
    """Stream `n_events` records of `process` in chunks (one per block), in a reproducible order.

    Blocks run on `workers` forked processes, or on the Dask `scheduler` (common.executors). `stats`,
    if given, is filled in as the run goes.
    """
    from tqdm import tqdm

    from common.executors import open_executor

    proc = get_process(process)
    if n_events < 1:
        raise ValueError(f"--events must be >= 1, got {n_events}")
    workers = max(1, min(workers, os.cpu_count() or 1))
    stats = stats if stats is not None else GenerateStats()
    start = time.perf_counter()
    pending: deque = deque()
    next_block = 0
    # records a block yields: block_size in event mode; in jet mode learnt from the blocks seen.
    # Blocks beyond what is needed are not submitted: they would only compete for the cores.
    per_block = float(config.block_size)
    with open_executor(scheduler, workers) as executor, \
            tqdm(total=n_events, unit="ev", desc=f"{process}", disable=not progress, smoothing=0.1) as bar:
        stats.workers = executor.workers
        while stats.records < n_events:
            in_flight, window = len(pending), 2 * executor.workers  # asked once per block: a Dask scheduler call
            while in_flight < window and \
                    (in_flight == 0 or stats.records + in_flight * per_block < n_events):
                pending.append(executor.submit(generate_block, proc, seed, next_block, config))
                next_block += 1
                in_flight += 1
            chunk = pending.popleft().result()
            stats.pythia_events += config.block_size
            blocks_done = stats.pythia_events / config.block_size
            per_block = max((stats.records + len(chunk)) / blocks_done, 1.0)
            chunk = chunk[: n_events - stats.records]
            chunk.info["event"] = np.arange(stats.records, stats.records + len(chunk))
            stats.records += len(chunk)
            stats.truncated_objects += int(chunk.info["n_truncated"].sum())
            stats.seconds = time.perf_counter() - start
            bar.update(len(chunk))
            if len(chunk):
                yield chunk
