"""The machinery the three training loops share (common.schedule, common.training, the random generators
in checkpoints), and signals that land outside a step: in an evaluation, a checkpoint write, or after the
last step. Each loop must then write its checkpoint, stop with Interrupted, and resume exactly."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch

from common.checkpoint import load_checkpoint, save_checkpoint
from common.interrupt import Interrupted
from common.schedule import warmup_cosine
from common.training import TrainingRun, param_groups
from tests.conftest import REPO, SMALL
from tests.test_backbone_pretrain import config, store  # noqa: F401 (store: a fixture)


def test_warmup_cosine_by_hand():
    assert warmup_cosine(0, 110, 10, peak=2.0) == pytest.approx(0.2)  # a linear rise...
    assert warmup_cosine(9, 110, 10, peak=2.0) == 2.0  # ...to the peak
    assert warmup_cosine(10, 110, 10, floor=0.1, peak=2.0) == 2.0
    assert warmup_cosine(60, 110, 10, floor=0.1, peak=2.0) == pytest.approx(1.1)  # half-way down the cosine
    assert warmup_cosine(110, 110, 10, floor=0.1, peak=2.0) == pytest.approx(0.2)  # the floor at the end...
    assert warmup_cosine(500, 110, 10, floor=0.1, peak=2.0) == pytest.approx(0.2)  # ...and after it
    assert warmup_cosine(60, 110, 10) == pytest.approx(0.5)  # a factor to 0 by default
    assert warmup_cosine(0, 20, 100, warmup_cap=4) == 0.25  # a short run warms up over the cap only
    assert warmup_cosine(0, 20, 100, warmup_cap=0) == 1.0  # or not at all


def tiny_gpt():
    from backbone.config import GPTConfig
    from backbone.model import GPT

    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8, bias=True))


def test_weight_decay_only_on_weight_matrices():
    model = tiny_gpt()
    decay, rest = param_groups(model, 0.1, lr=0.01)
    name = {id(p): n for n, p in model.named_parameters()}
    assert {name[id(p)] for p in decay["params"]} == {"blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight",
                                                      "blocks.0.mlp.0.weight", "blocks.0.mlp.2.weight"}
    assert {"wte.weight", "wpe.weight", "blocks.0.ln1.weight", "blocks.0.attn.qkv.bias"} <= {
        name[id(p)] for p in rest["params"]}
    assert len(decay["params"]) + len(rest["params"]) == len(name)
    assert (decay["weight_decay"], rest["weight_decay"], decay["lr"], rest["lr"]) == (0.1, 0.0, 0.01, 0.01)
    # with no gradient, a step of AdamW only decays: the matrices shrink by lr * weight decay, the rest stays
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    torch.optim.AdamW(param_groups(model, 0.1), lr=0.5).step()
    for n, p in model.named_parameters():
        factor = 1 - 0.5 * 0.1 if n in {name[id(q)] for q in decay["params"]} else 1.0
        assert torch.allclose(p, before[n] * factor), n
    # a subset of the parameters (fine-tuning's head and backbone get their own learning rates)
    decay, rest = param_groups(model, 0.1, model.blocks[0].mlp.parameters())
    assert [p.dim() for p in decay["params"]] == [2, 2] and [p.dim() for p in rest["params"]] == [1, 1]


@pytest.fixture()
def sigterm_outside_a_loop_fails():
    """A SIGTERM that reaches no training loop's handler fails the test (instead of killing pytest)."""
    def outside(signum, frame):
        raise AssertionError("SIGTERM arrived where no training loop held its handler")

    old = signal.signal(signal.SIGTERM, outside)
    yield
    signal.signal(signal.SIGTERM, old)


def sends_sigterm(function, on_call: int, after: bool = False):
    """`function`, sending SIGTERM to this process at the start (or the end) of its `on_call`-th call: the
    signal lands while it runs, as in an evaluation or a checkpoint write, or right after it."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(None)
        if len(calls) == on_call and not after:
            os.kill(os.getpid(), signal.SIGTERM)
        result = function(*args, **kwargs)
        if len(calls) == on_call and after:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    return wrapped


def new_run(folder) -> TrainingRun:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return TrainingRun(folder, model, torch.optim.AdamW(model.parameters(), lr=0.1),
                       {"step": 0, "epoch": 0, "batch_in_epoch": 0, "evaluations": 0, "best_loss": float("inf"),
                        "bad_evaluations": 0})


def train(run: TrainingRun, resume: bool = False, evaluate=lambda: None) -> TrainingRun:
    """The shape of the trainers' loops, 3 epochs of 10 batches: a step per batch (with a random draw, as
    dropout or dead-code replacement make), then an evaluation, the best weights and a checkpoint."""
    if resume:
        run.resume()
    with run:
        while run.state["epoch"] < 3:
            for b in run.epoch(range(10)):
                loss = (run.model(torch.full((1, 3), float(b)) + torch.rand(1, 3)) ** 2).sum()
                run.optimizer.zero_grad()
                loss.backward()
                run.optimizer.step()
                run.state["step"] += 1
                run.stop_point()
            evaluate()
            run.state["evaluations"] += 1
            run.evaluated([3.0, 1.0, 2.0][run.state["epoch"] - 1])  # the best weights: the second epoch's
    return run


#: where the signal lands -> the loop state of the checkpoint the stopped run leaves
STOPS = {"in a step": {"step": 14, "epoch": 1, "batch_in_epoch": 4, "evaluations": 1},
         "in an evaluation": {"step": 20, "epoch": 2, "batch_in_epoch": 0, "evaluations": 2},
         "in a checkpoint write": {"step": 20, "epoch": 2, "batch_in_epoch": 0, "evaluations": 2},
         "after the last stop point": {"step": 30, "epoch": 3, "batch_in_epoch": 0, "evaluations": 3}}


@pytest.mark.parametrize("where", STOPS)
def test_a_signal_anywhere_in_the_loop_checkpoints_stops_and_resumes_exactly(tmp_path, monkeypatch, where,
                                                                             sigterm_outside_a_loop_fails):
    straight = train(new_run(tmp_path / "straight"))
    next_draw = torch.rand(3)
    stopped, evaluate = new_run(tmp_path / "stopped"), lambda: None
    if where == "in a step":
        stopped.model.register_forward_hook(sends_sigterm(lambda *args: None, 14))
    elif where == "in an evaluation":
        evaluate = sends_sigterm(evaluate, 2)
    elif where == "in a checkpoint write":
        monkeypatch.setattr("common.training.save_checkpoint", sends_sigterm(save_checkpoint, 2))
    else:  # 3 epochs of 10 steps and an evaluation: 33 stop points, then the end of the block
        monkeypatch.setattr(stopped, "stop_point", sends_sigterm(stopped.stop_point, 33, after=True))
    with pytest.raises(Interrupted, match="continue with --resume") as stop:
        train(stopped, evaluate=evaluate)
    assert stop.value.exit_code == 128 + signal.SIGTERM
    saved = json.loads((tmp_path / "stopped" / "state.json").read_text())["loop"]
    assert {k: saved[k] for k in STOPS[where]} == STOPS[where]
    monkeypatch.undo()
    resumed = train(new_run(tmp_path / "stopped"), resume=True)
    assert resumed.state == straight.state
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert all(torch.equal(v, resumed.best[k]) for k, v in straight.best.items())  # kept across the stop
    assert torch.equal(torch.rand(3), next_draw)  # and the generator


def test_ranks_share_an_epoch_and_resume_after_the_last_round():
    model = torch.nn.Linear(1, 1)

    def run(rank, state=None):
        return TrainingRun(None, model, torch.optim.AdamW(model.parameters()),
                           state or {"step": 0, "epoch": 0, "batch_in_epoch": 0}, rank, world=2)

    assert [list(run(rank).epoch(range(7))) for rank in (0, 1)] == [[0, 2, 4, 6], [1, 3, 5]]
    rank0 = run(0)
    batches = rank0.epoch(range(7))
    assert (next(batches), next(batches)) == (0, 2)
    assert rank0.state["batch_in_epoch"] == 4  # a stop now resumes every rank after the round of batches 2 and 3
    assert list(run(1, dict(rank0.state)).epoch(range(7))) == [5]
    assert list(batches) == [4, 6] and rank0.state == {"step": 0, "epoch": 1, "batch_in_epoch": 0}


def test_the_torch_generator_is_restored(tmp_path):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(tmp_path / "c", model, optimizer, {})
    expected = torch.rand(5)
    torch.rand(10)
    load_checkpoint(tmp_path / "c", model, optimizer)
    assert torch.equal(torch.rand(5), expected)


def test_every_cuda_generator_is_saved_and_restored(tmp_path, monkeypatch):
    """The CUDA branch, with two stand-in devices: each device's generator state is saved and restored."""
    states = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3, 4], dtype=torch.uint8)]
    restored = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.update({device: state}))
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(tmp_path / "c", model, optimizer, {})
    load_checkpoint(tmp_path / "c", model, optimizer)
    assert sorted(restored) == [0, 1] and all(torch.equal(restored[i], states[i]) for i in (0, 1))


@pytest.mark.gpu
def test_the_cuda_generator_is_restored(tmp_path):
    model = torch.nn.Linear(2, 1).cuda()
    optimizer = torch.optim.AdamW(model.parameters())
    torch.randn(3, device="cuda")
    save_checkpoint(tmp_path / "c", model, optimizer, {})
    expected = torch.randn(5, device="cuda")
    torch.randn(10, device="cuda")
    load_checkpoint(tmp_path / "c", model, optimizer)
    assert torch.equal(torch.randn(5, device="cuda"), expected)


def test_no_code_draws_from_the_global_numpy_or_python_generators():
    """Checkpoints restore torch's generators only: every numpy draw has its own seeded Generator."""
    import re

    sources = [p for d in ("backbone", "tokenizer", "finetune", "events", "common") for p in (REPO / d).rglob("*.py")]
    bad = re.compile(r"np\.random\.(?!default_rng|Generator|SeedSequence)\w+\(|^import random|^from random import")
    hits = [f"{p.relative_to(REPO)}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1)
            if bad.search(line)]
    assert not hits, hits


def test_library_warnings_reach_a_cli_user_on_stderr():
    code = ("import logging; from common.cli import run_cli; "
            "run_cli(lambda argv: logging.getLogger('common.checkpoint').warning('checkpoint x is corrupt'), 'prog')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "warning: checkpoint x is corrupt\n"


# --- the three trainers, stopped by a signal that lands in an evaluation (the last one included) ------
def same_model(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def stopped_loop_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "state.json").read_text())["loop"]


@pytest.mark.parametrize("evaluation", [2, 3])
def test_pretraining_stopped_in_an_evaluation_resumes_exactly(store, tmp_path, monkeypatch, evaluation,
                                                              sigterm_outside_a_loop_fails):
    import backbone.pretrain as pretrain
    from tests.test_reliability import same_weights

    straight = pretrain.run(config(store[0], tmp_path / "straight", 9), progress=False)  # evaluations at 3, 6, 9
    monkeypatch.setattr(pretrain, "evaluate", sends_sigterm(pretrain.evaluate, evaluation))
    with pytest.raises(Interrupted, match="continue with --resume"):
        pretrain.run(config(store[0], tmp_path / "stopped", 9), progress=False)
    assert stopped_loop_state(tmp_path / "stopped" / "checkpoint")["step"] == 3 * evaluation
    monkeypatch.undo()
    resumed = pretrain.run(config(store[0], tmp_path / "stopped", 9), resume=True, progress=False)
    assert resumed["history"] == straight["history"]
    same_weights(tmp_path / "straight", tmp_path / "stopped")


def synthetic_events(n: int, seed: int = 0):
    """Events of 1-5 jets (a fifth b-tagged), at most one muon, and MET, with smooth random kinematics."""
    from events.model import Caps, Events, ObjectType as T, assemble, make_objects

    rng = np.random.default_rng(seed)
    n_jets, n_muons = rng.integers(1, 6, n), rng.integers(0, 2, n)
    j, m = int(n_jets.sum()), int(n_muons.sum())

    def kinematics(k, scale):
        return {"pt": 20 + rng.exponential(scale, k), "eta": rng.normal(0, 1.5, k), "phi": rng.uniform(-np.pi, np.pi, k)}

    jets = make_objects(n_jets, type=np.where(rng.random(j) < 0.2, T.BJET, T.JET), mass=rng.exponential(8, j),
                        btag=rng.random(j), **kinematics(j, 40))
    muons = make_objects(n_muons, type=T.MUON, charge=rng.choice([-1, 1], m), **kinematics(m, 20))
    met = make_objects(np.ones(n, np.int64), type=T.MET, **kinematics(n, 30))
    return Events(assemble([jets, muons, met], Caps())[0], {"event": np.arange(n)})


@pytest.mark.parametrize("evaluation", [2, 3])
def test_tokenizer_training_stopped_in_an_evaluation_resumes_exactly(tmp_path, monkeypatch, evaluation,
                                                                     sigterm_outside_a_loop_fails):
    import tokenizer.train as train
    from common.config import load_config
    from tokenizer.config import TokenizerTrainConfig

    cfg = load_config(TokenizerTrainConfig, REPO / "configs/tokenizer/event.yaml",
                      SMALL + ["train.epochs=3", "train.batch_size=128"])
    events, val_events = train.split(synthetic_events(150), 0.2, 0)

    def fit(folder, resume=False):
        return train.train_model(cfg, cfg.model, events, val_events, folder, resume, progress=False)

    straight, history = fit(tmp_path / "straight")
    monkeypatch.setattr(train, "evaluate", sends_sigterm(train.evaluate, evaluation))  # one an epoch
    with pytest.raises(Interrupted, match="continue with --resume"):
        fit(tmp_path / "stopped")
    state = stopped_loop_state(tmp_path / "stopped" / "checkpoint")
    assert (state["epoch"], state["batch_in_epoch"], len(state["history"])) == (evaluation, 0, evaluation)
    monkeypatch.undo()
    resumed, resumed_history = fit(tmp_path / "stopped", resume=True)
    same_model(straight.model, resumed.model)
    assert ([{k: v for k, v in e.items() if k != "objects_per_s"} for e in history]
            == [{k: v for k, v in e.items() if k != "objects_per_s"} for e in resumed_history])


class TinyClassifier(torch.nn.Module):
    """What fine-tuning needs of a classifier: a backbone, a head ending in the class logits, and
    forward(ids, features)."""

    def __init__(self, vocab_size: int):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Embedding(vocab_size, 8)
        self.head = torch.nn.Sequential(torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))

    def forward(self, ids, features=None):
        return self.head(self.backbone(ids).mean(1))


@pytest.mark.parametrize("validation", [2, 3])
def test_fine_tuning_stopped_in_a_validation_resumes_exactly(tmp_path, monkeypatch, validation,
                                                            sigterm_outside_a_loop_fails):
    import finetune.train as finetune
    from backbone.data import TokenSequences
    from finetune.config import TrainSection
    from tokenizer.tokenizer import TokenBatch

    rng = np.random.default_rng(0)
    ids = ak.Array([rng.integers(0, 32, n).tolist() for n in rng.integers(1, 6, 120)])
    seqs = TokenSequences([TokenBatch(ids, {"process": np.zeros(120, np.int64)}, ("x",))], 32)
    y = (ak.to_numpy(ak.firsts(ids)) < 16).astype(np.int64)
    cfg = TrainSection(epochs=3, batch_size=2, patience=10, device="cpu")  # 50 steps: a validation an epoch

    def fit(folder, resume=False):
        model = TinyClassifier(seqs.vocab.size)
        result = finetune.fit(model, seqs, y, np.arange(100), seqs, y, np.arange(100, 120), cfg, "cpu",
                              progress=False, checkpoint=folder, resume=resume)
        return model, result

    straight, result = fit(tmp_path / "straight")
    assert len(result["history"]) == 3
    monkeypatch.setattr(finetune, "mean_loss", sends_sigterm(finetune.mean_loss, validation))
    with pytest.raises(Interrupted, match="continue with --resume"):
        fit(tmp_path / "stopped")
    assert len(stopped_loop_state(tmp_path / "stopped")["history"]) == validation
    monkeypatch.undo()
    resumed, resumed_result = fit(tmp_path / "stopped", resume=True)
    same_model(straight, resumed)
    assert resumed_result == result


def test_a_checkpoint_is_written_when_the_last_is_old_enough(tmp_path):
    """The loop above saves at each epoch end (3 times); with checkpoint_every_s a stop point also saves
    once that many seconds have passed since the last save (on a clock that reads the step: 1 s a step)."""
    saves = []

    def run(every):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "evaluations": 0, "best_loss": float("inf"),
                 "bad_evaluations": 0}
        r = TrainingRun(tmp_path / str(every), model, torch.optim.AdamW(model.parameters(), lr=0.1), state,
                        checkpoint_every_s=every, clock=lambda: state["step"])
        r.save = lambda original=r.save: (saves.append(r.state["step"]), original())
        return train(r)

    run(None)
    assert saves == [10, 20, 30]
    saves.clear()
    run(4)
    assert saves == [4, 8, 10, 14, 18, 20, 24, 28, 30]


def test_pretraining_writes_a_checkpoint_every_checkpoint_minutes(store, tmp_path, monkeypatch):
    import backbone.pretrain as pretrain

    steps = []
    save = TrainingRun.save
    monkeypatch.setattr(TrainingRun, "save", lambda self: (steps.append(self.state["step"]), save(self)))
    monkeypatch.setattr(pretrain, "plot_losses", lambda *args: None)
    pretrain.run(config(store[0], tmp_path / "default", 4, eval_every=100), progress=False)
    assert steps == [4]  # the final evaluation's
    steps.clear()
    pretrain.run(config(store[0], tmp_path / "every", 4, eval_every=100, checkpoint_minutes=0.0), progress=False)
    assert steps == [1, 2, 3, 4]


STALLED_FIRST_STEP = """
import sys, time
from pathlib import Path
import backbone.pretrain as pretrain
marker = Path(sys.argv[1])
def stalled(*args, **kwargs):  # a first step that never ends (a compilation, a stalled device)
    marker.touch()
    time.sleep(600)
pretrain.losses = stalled
from common.cli import run_cli
sys.argv = ["backbone.pretrain", *sys.argv[2:]]
run_cli(pretrain.main, "python -m backbone.pretrain")
"""


@pytest.mark.e2e  # separate processes
@pytest.mark.parametrize("signals", [1, 2], ids=["one SIGTERM: the watchdog", "a second SIGTERM: at once"])
def test_sigterm_in_a_stalled_first_step_exits_within_the_grace(store, tmp_path, signals):
    import time

    marker = tmp_path / "in_step"
    grace = 3.0 if signals == 1 else 300.0
    proc = subprocess.Popen([sys.executable, "-c", STALLED_FIRST_STEP, str(marker), "--config",
                             str(REPO / "configs/backbone/event-cpu.yaml"), f"--data.train={store[0]}",
                             f"--out={tmp_path / 'run'}", "--model.n_layer=1", "--model.n_embd=16",
                             "--model.n_head=2", "--model.density_components=0", "--model.hybrid=false",
                             "--model.feature_logits=false", "--data.multiplicity_token=false",
                             f"--train.stop_grace_s={grace}",
                             "--quiet"], cwd=REPO, stderr=subprocess.PIPE, text=True)
    start = time.time()
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() - start < 120
        time.sleep(0.05)
    sent = time.time()
    for _ in range(signals):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
    stderr = proc.communicate(timeout=60)[1]
    took = time.time() - sent
    if signals == 1:
        assert proc.returncode == 128 + signal.SIGTERM and grace <= took < grace + 10, (took, stderr[-2000:])
        assert "no safe point reached within 3 s of SIGTERM" in stderr
    else:  # the command's own handler of a signal outside a training loop
        assert proc.returncode == 128 + signal.SIGTERM and took < 10, (took, stderr[-2000:])
        assert "no safe point" not in stderr
    assert "stopping at the next safe point (at most" in stderr


def test_a_weight_average_by_hand(tmp_path):
    from common.averaging import WeightAverage

    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model, 0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update(0)  # the decay is capped at 1/10 on the first step: 0 + 0.9 (1 - 0)
    assert average.average["weight"].item() == pytest.approx(0.9)
    with torch.no_grad():
        model.weight.fill_(3.0)
    average.update(100)  # 0.9 + 0.5 (3 - 0.9)
    assert average.average["weight"].item() == pytest.approx(1.95)
    with average.applied():
        assert model.weight.item() == pytest.approx(1.95)
    assert model.weight.item() == 3.0
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, 1.0)


def test_a_weight_average_is_checkpointed_and_starts_at_the_weights_of_a_run_without_one(tmp_path):
    from common.averaging import WeightAverage

    plain = new_run(tmp_path)
    with torch.no_grad():
        plain.model.weight.fill_(2.0)
    plain.save()
    resumed = new_run(tmp_path)
    resumed.average = WeightAverage(resumed.model, 0.9)
    assert resumed.resume() and torch.equal(resumed.average.average["weight"], torch.full((1, 3), 2.0))
    with torch.no_grad():
        resumed.average.average["weight"].fill_(5.0)
    resumed.save()
    again = new_run(tmp_path)
    again.average = WeightAverage(again.model, 0.9)
    assert again.resume() and torch.equal(again.average.average["weight"], torch.full((1, 3), 5.0))
    assert torch.equal(again.model.weight, torch.full((1, 3), 2.0))  # the raw weights, as saved
