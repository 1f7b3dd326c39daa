"""Token sequences, masking, and the pretraining loop (both objectives, exact resume)."""
import json
from contextlib import nullcontext
from dataclasses import replace

import awkward as ak
import numpy as np
import pytest
import torch

from backbone.data import TokenSequences
from backbone.masking import mask_tokens
from backbone.config import PretrainConfig
from backbone.pretrain import run
from backbone.vocab import Vocab
from common.config import from_dict, to_dict
from events.errors import EventDataError
from tokenizer.store import TokenWriter
from tokenizer.tokenizer import TokenBatch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and several threads on a shared 2-core machine fight for
    the cores (a 4-step run measured 14 s instead of 1 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def store(tmp_path):
    """A token store of 200 events with a learnable pattern: each event counts up from a random start."""
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 8, 200)
    ids = ak.Array([list((s + np.arange(n)) % 32) for s, n in zip(rng.integers(0, 32, 200), counts)])
    path = tmp_path / "tokens.h5"
    with TokenWriter(path, 32, "none") as writer:
        writer.write(TokenBatch(ids, {"event": np.arange(200), "process": (np.arange(200) % 2).astype(np.int16)},
                                ("ttbar", "wjets")))
    return path, ids


@pytest.fixture()
def density_store(store, tmp_path):
    """The same events with event-mode features: each code's log pt sits at its own value (spread
    0.05), phi follows the previous object's, the rest is noise; codes 0-30 are jets, 31 is MET."""
    from events.model import ObjectType as T

    _, ids = store
    rng = np.random.default_rng(2)
    flat = ak.to_numpy(ak.flatten(ids))
    n = len(flat)
    phi = np.cumsum(rng.normal(0.0, 0.1, n))
    x = np.stack([flat / 16 - 1 + rng.normal(0, 0.05, n), rng.normal(size=n), np.cos(phi) / 0.7, np.sin(phi) / 0.7,
                  rng.normal(size=n), rng.normal(size=n)], 1).astype(np.float32)
    path = tmp_path / "density.h5"
    with TokenWriter(path, 32, "none", "event", code_features=np.zeros((32, 6), np.float32),
                     code_types=np.array([int(T.JET)] * 31 + [int(T.MET)]),
                     feature_transform={"mode": "event", "mean": [0.0] * 6, "std": [1.0, 1.0, 0.7, 0.7, 1.0, 1.0]}
                     ) as writer:
        writer.write(TokenBatch(ids, {"event": np.arange(len(ids)), "process": np.zeros(len(ids), np.int16)},
                                ("ttbar",), ak.unflatten(x, ak.num(ids))))
    return path


def test_sequences_and_batches(store):
    path, ids = store
    data = TokenSequences.from_store(path, conditional=True)
    v = data.vocab
    assert v.size == 32 + 4 + 2
    assert data.sequence(3).tolist() == [v.bos, v.process_token("wjets"), *ak.to_list(ids[3]), v.eos]
    batch = data.batch(np.array([0, 1]))
    assert batch.shape == (2, max(len(data.sequence(0)), len(data.sequence(1))))
    assert (batch[0, len(data.sequence(0)):] == v.pad).all()
    seen = np.concatenate(list(data.index_batches(np.random.default_rng(1), 16)))
    assert np.array_equal(np.sort(seen), np.arange(200))  # every sequence once per epoch
    with pytest.raises(EventDataError, match="pair it with its own tokenizer"):
        TokenSequences.from_store(path, vocab=Vocab(64))


def test_events_without_objects_keep_their_feature_width():
    ids = ak.values_astype(ak.Array([[], [], [3]]), np.int32)
    features = ak.unflatten(np.ones((1, 6), np.float32), [0, 0, 1])
    chunks = [TokenBatch(ids[:2], {"process": np.zeros(2, np.int64)}, ("x",), features[:2]),
              TokenBatch(ids[2:], {"process": np.zeros(1, np.int64)}, ("x",), features[2:])]
    seqs = TokenSequences(chunks, 32)
    assert seqs.features.shape == (1, 6)
    assert TokenSequences(chunks[:1], 32).features.shape == (0, 6)
    assert seqs.batch_features(np.arange(3)).shape == (3, 3, 6)


def test_sequences_from_files_with_different_process_tables():
    from tokenizer.tokenizer import TokenBatch
    ids = ak.Array([[1, 2], [3], [4, 5, 6]])
    a = TokenBatch(ids[:2], {"event": np.arange(2), "process": np.array([0, 1])}, ("ttbar", "wjets"))
    b = TokenBatch(ids[2:], {"event": np.arange(1), "process": np.array([0])}, ("wjets",))
    data = TokenSequences([a, b], 8, conditional=True, vocab=Vocab(8, ("wjets",)))
    assert data.process_names == ("ttbar", "wjets")
    assert data.info["process"].tolist() == [0, 1, 1]
    v = data.vocab
    # ttbar is not in the backbone's vocabulary: unknown process, MASK
    assert [data.sequence(i)[1] for i in range(3)] == [v.mask, v.process_token("wjets"), v.process_token("wjets")]
    assert data.sequence(2).tolist() == [v.bos, v.process_token("wjets"), 4, 5, 6, v.eos]


def test_process_dropout_masks_the_process_token_and_its_target():
    from backbone.pretrain import losses
    from tokenizer.tokenizer import TokenBatch
    seqs = TokenSequences([TokenBatch(ak.Array([[1, 2, 3]] * 64), {"process": np.zeros(64, np.int64)}, ("ttbar",))],
                          8, conditional=True)
    seen = {}

    def model(idx, targets, causal=True, pad_mask=None, features=None):
        seen[causal] = (idx.clone(), targets.clone())
        return None, torch.zeros(())
    from contextlib import nullcontext
    losses(model, seqs.batch(np.arange(64)), seqs, 0.3, torch.Generator().manual_seed(0), nullcontext(),
           process_dropout=0.1)
    idx, targets = seen[True]
    dropped = idx[:, 1] == seqs.vocab.mask
    # the first draws of the step's generator, against the dropout rate (not the mask rate, 0.3)
    assert torch.equal(dropped, torch.rand(64, generator=torch.Generator().manual_seed(0)) < 0.1)
    assert 0 < int(dropped.sum()) < 16
    assert (targets[dropped, 0] == -100).all() and (targets[~dropped, 0] == seqs.vocab.process_token("ttbar")).all()
    assert torch.equal(seen[False][0][:, 1], idx[:, 1])  # the masked pass sees the same process tokens


def test_masking_only_codes_and_only_masked_positions_count():
    vocab = Vocab(32)
    idx = torch.tensor([[vocab.bos, 3, 4, 5, 6, vocab.eos, vocab.pad], [vocab.bos, 7, vocab.eos, vocab.pad,
                                                                        vocab.pad, vocab.pad, vocab.pad]])
    inputs, targets = mask_tokens(idx, vocab, 0.5, torch.Generator().manual_seed(0))
    masked = inputs == vocab.mask
    assert torch.equal(masked, targets != -100)
    assert torch.equal(targets[masked], idx[masked])
    assert (idx[masked] < 32).all()  # never BOS/EOS/PAD
    assert masked.sum(dim=1).min() >= 1  # at least one per sequence
    assert torch.equal(inputs[~masked], idx[~masked])
    big = torch.randint(0, 32, (200, 50))
    rate = (mask_tokens(big, vocab, 0.35, torch.Generator().manual_seed(1))[0] == vocab.mask).float().mean()
    assert 0.32 < rate < 0.38


def config(path, out, steps, **train):
    return from_dict(PretrainConfig, {
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 32}, "data": {"train": str(path), "conditional": True},
        "train": {"batch_size": 32, "lr": 0.003, "warmup_steps": 5, "max_steps": steps, "eval_every": 3,
                  "device": "cpu", **train}, "out": str(out)})


def test_pretraining_learns_both_objectives(store, tmp_path):
    result = run(config(store[0], tmp_path / "run", 400, eval_every=100), progress=False)
    first, last = result["history"][0], result["history"][-1]
    assert last["val_loss_next"] < first["val_loss_next"] and last["val_loss_masked"] < first["val_loss_masked"]
    assert result["val_loss_next"] < 1.5  # ideal about 1.0 nats (random start and length); uniform: 3.6
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / "config.json").is_file()


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resumed_pretraining_equals_uninterrupted(store, tmp_path, ema_decay):
    from safetensors.torch import load_file

    run(config(store[0], tmp_path / "straight", 9, ema_decay=ema_decay), progress=False)
    run(config(store[0], tmp_path / "resumed", 6, ema_decay=ema_decay), progress=False)
    resumed = run(config(store[0], tmp_path / "resumed", 9, ema_decay=ema_decay), resume=True, progress=False)
    assert [h["step"] for h in resumed["history"]] == [3, 6, 9]
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_an_ema_run_saves_and_evaluates_the_average_and_checkpoints_the_raw_weights(store, tmp_path):
    from safetensors.torch import load_file

    result = run(config(store[0], tmp_path / "ema", 30, ema_decay=0.9, eval_every=30), progress=False)
    saved = load_file(str(tmp_path / "ema" / "model.safetensors"))
    checkpoint = load_file(str(tmp_path / "ema" / "checkpoint" / "model.safetensors"))
    averaged = [k for k in saved if f"extra.average.{k}" in checkpoint]
    assert averaged and all(torch.equal(saved[k], checkpoint[f"extra.average.{k}"]) for k in averaged)
    assert not torch.equal(saved[averaged[0]], checkpoint[averaged[0]])
    last = result["history"][-1]
    assert result["val_loss_next"] == last["val_loss_next"] != last["raw_val_loss_next"]


def density(path, out, steps, **train):
    return from_dict(PretrainConfig, {**to_dict(config(path, out, steps, **train)),
                                      "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "density_components": 2}})


def test_density_head_learns_and_resumes_exactly(store, density_store, tmp_path):
    from safetensors.torch import load_file

    from common.cli import UserError

    with pytest.raises(UserError, match="tokenize --features"):  # a store without features
        run(density(store[0], tmp_path / "no_features", 3), progress=False)
    result = run(density(density_store, tmp_path / "learn", 300, eval_every=100), progress=False)
    first, last = result["history"][0], result["history"][-1]
    # log pt is known to 0.05 from the code once the head has learnt it: -log p of 5 features falls
    # from the noise level (about 5 x 1.4 nats) to well below it
    assert last["val_loss_density"] < first["val_loss_density"] - 1.0 and result["val_loss_density"] < 5.0
    run(density(density_store, tmp_path / "straight", 9), progress=False)
    run(density(density_store, tmp_path / "resumed", 6), progress=False)
    resumed = run(density(density_store, tmp_path / "resumed", 9), resume=True, progress=False)
    assert [h["step"] for h in resumed["history"]] == [3, 6, 9]
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert any(k.startswith("density.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_hybrid_pretraining_reads_features_and_keeps_the_code_table(store, tmp_path):
    from backbone.model import GPT
    from common.cli import UserError
    from tokenizer.store import iter_tokens

    def hybrid(path, out, steps):
        return from_dict(PretrainConfig, {**to_dict(config(path, out, steps)),
                                          "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "hybrid": True}})

    with pytest.raises(UserError, match="tokenize --features"):
        run(hybrid(store[0], tmp_path / "no_features", 3), progress=False)
    _, ids = store
    rng = np.random.default_rng(1)
    table = rng.normal(size=(32, 3)).astype(np.float32)
    feats = ak.unflatten(rng.normal(size=(int(ak.sum(ak.num(ids))), 3)).astype(np.float32), ak.num(ids))
    path = tmp_path / "features.h5"
    with TokenWriter(path, 32, "none", code_features=table) as writer:
        writer.write(TokenBatch(ids, {"process": np.zeros(len(ids), np.int16)}, ("ttbar",), feats))
    back = next(iter_tokens(path))
    assert ak.to_list(back.features) == ak.to_list(feats)
    data = TokenSequences.from_store(path, conditional=True)
    f = data.batch_features(np.array([4]))
    assert f.shape == (1, data.lengths[4], 3) and not f[0, :2].any() and not f[0, -1].any()  # BOS, process, EOS
    np.testing.assert_array_equal(f[0, 2:-1].numpy(), ak.to_numpy(feats[4]))
    run(hybrid(path, tmp_path / "hybrid", 20), progress=False)
    model = GPT.from_pretrained(tmp_path / "hybrid")
    np.testing.assert_array_equal(model.code_features[:32].numpy(), table)
    assert not model.code_features[32:].any()  # special and process tokens have no features


@pytest.mark.e2e  # separate processes (torchrun, worker pool or the CLI)
def test_ddp_with_two_processes_on_cpu(density_store, tmp_path):
    """With the density head (its parameters get gradients from one pass only, the masked pass none)."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO

    cfg = to_dict(density(density_store, tmp_path / "ddp", 40, eval_every=20))
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29517", "-m", "backbone.pretrain", "--config", str(tmp_path / "ddp.yaml"),
                           "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["processes"] == 2
    history = metrics["history"]
    assert history[-1]["val_loss_next"] < history[0]["val_loss_next"] or history[-1]["val_loss_next"] < 3.0
    assert history[-1]["val_loss_density"] < history[0]["val_loss_density"]
    assert (tmp_path / "ddp" / "model.safetensors").is_file()


# --- DDP, gradient accumulation, a separate validation store, exact resume mid-epoch ---------------

B = 4  # events per process (or micro-batch); the equal-length training store holds 2B of them


def write_store(path, ids, process, names=("ttbar", "wjets"), fingerprint=None):
    with TokenWriter(path, 32, "none", fingerprint=fingerprint) as writer:
        writer.write(TokenBatch(ak.Array(ids), {"event": np.arange(len(ids)), "process": np.asarray(process, np.int16)},
                                names))
    return path


@pytest.fixture()
def even_stores(tmp_path):
    """(train, val): 2B training events of 5 codes each (every sequence 8 tokens: BOS, process, 5 codes,
    EOS), so that every batch of a step has as many targets as any other and a mean over the whole
    step is the mean of the per-process (or per-micro-batch) means; and a validation store of 16
    other events, counting down, all of 6 codes (the validation loss is a mean of batch means weighted
    by events, so with equal lengths it does not depend on the batch size either)."""
    rng = np.random.default_rng(5)
    train = [list((s + np.arange(5)) % 32) for s in rng.integers(0, 32, 2 * B)]
    val = [list((s - np.arange(6)) % 32) for s in rng.integers(0, 32, 16)]
    return (write_store(tmp_path / "even.h5", train, np.arange(2 * B) % 2),
            write_store(tmp_path / "even_val.h5", val, np.arange(16) % 2))


def exact_config(train, val, out, **train_options):
    """A run whose update is one mean gradient over the step's events, however they are split: dropout
    0, no process dropout, and the masked loss weighted 0 (its masks are drawn from a generator seeded
    per process and micro-batch, so they cannot match a single batch's). With data.val the whole
    training store (2B events) is one step of batch 2B: every step sees every event, so a run of
    batch 2B, two processes of batch B and two micro-batches of B all see the same events per step."""
    cfg = to_dict(config(train, out, 4, **{"batch_size": 2 * B, "warmup_steps": 2, "eval_every": 2,
                                           "process_dropout": 0.0, "weight_masked": 0.0, **train_options}))
    cfg["data"]["val"] = str(val)
    return from_dict(PretrainConfig, cfg)


@pytest.fixture()
def grad_norms(monkeypatch):
    """The norm of each step's gradient (before clipping). AdamW's update hardly changes when every
    gradient is scaled by one factor (a sum over micro-batches instead of their mean), so the weights
    alone would not show such a bug; the norm does."""
    norms, clip = [], torch.nn.utils.clip_grad_norm_

    def recorded(*args, **kwargs):
        norm = clip(*args, **kwargs)
        norms.append(float(norm))
        return norm
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recorded)
    return norms


def assert_same_weights(a_folder, b_folder, atol):
    from safetensors.torch import load_file

    a, b = load_file(str(a_folder / "model.safetensors")), load_file(str(b_folder / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=lambda m: f"{k}: {m}")


def loop_state(folder):
    import json

    return json.loads((folder / "checkpoint" / "state.json").read_text())["loop"]


# Two processes (or two micro-batches) compute the same mean gradient as one batch up to float32
# rounding: the sums are taken in another order (per half, then DDP's all-reduce average, or the
# accumulated halves). After 4 AdamW steps at lr 0.003 the weights agree to about 1e-7 (measured); a
# step that used the wrong gradient (both ranks on rank 0's batch, no all-reduce, only the last
# micro-batch's gradient kept) moves them by about 1e-2 (measured). ATOL sits well between.
ATOL = 2e-6


@pytest.mark.e2e  # separate processes (torchrun, worker pool or the CLI)
def test_ddp_equals_one_process_with_the_same_total_batch(even_stores, drawn, grad_norms, tmp_path):
    import json
    import os
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO

    train, val = even_stores
    run(exact_config(train, val, tmp_path / "one"), progress=False)
    one_batches = list(drawn)
    assert [s for s, _ in one_batches] == [0, 1, 2, 3] and all(b == list(range(2 * B)) for _, b in one_batches)
    # two gloo processes of batch B, each logging the batches it takes
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(to_dict(exact_config(train, val, tmp_path / "ddp",
                                                                           batch_size=B))))
    (tmp_path / "logged.py").write_text(
        "import json, os, sys\n"
        "from common.training import TrainingRun\n"
        "epoch = TrainingRun.epoch\n"
        "def logged(self, batches):\n"
        "    for batch in epoch(self, batches):\n"
        "        with open(os.path.join(os.environ['DRAWN_DIR'], f'rank{self.rank}.jsonl'), 'a') as f:\n"
        "            f.write(json.dumps([self.state['step'], sorted(int(i) for i in batch)]) + '\\n')\n"
        "        yield batch\n"
        "TrainingRun.epoch = logged\n"
        "import torch\n"
        "clip = torch.nn.utils.clip_grad_norm_\n"
        "def recorded(*args, **kwargs):\n"
        "    norm = clip(*args, **kwargs)\n"
        "    with open(os.path.join(os.environ['DRAWN_DIR'], f'norms{os.environ[\"RANK\"]}.jsonl'), 'a') as f:\n"
        "        f.write(json.dumps(float(norm)) + '\\n')\n"
        "    return norm\n"
        "torch.nn.utils.clip_grad_norm_ = recorded\n"
        "import backbone.pretrain\n"
        "backbone.pretrain.plot_losses = lambda *args: None\n"
        "sys.exit(backbone.pretrain.main(sys.argv[1:]))\n")
    env = {**os.environ, "DRAWN_DIR": str(tmp_path), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(tmp_path / "logged.py"), "--config", str(tmp_path / "ddp.yaml"), "--quiet"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["processes"] == 2
    ranks = [[json.loads(line) for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert [s for s, _ in ranks[0]] == [s for s, _ in ranks[1]] == [0, 1, 2, 3]
    for (step, a), (_, b) in zip(*ranks):  # each rank B events of its own, together the step's batch
        assert len(a) == len(b) == B and not set(a) & set(b), (step, a, b)
        assert sorted(a + b) == one_batches[step][1]
    # every rank clips the same all-reduced gradient, the mean over the step's 2B events
    for r in (0, 1):
        norms = [json.loads(line) for line in (tmp_path / f"norms{r}.jsonl").read_text().splitlines()]
        assert norms == pytest.approx(grad_norms, rel=1e-5, abs=0), r
    assert_same_weights(tmp_path / "one", tmp_path / "ddp", ATOL)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["history"]
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["history"]
    assert [h["step"] for h in ddp] == [2, 4]
    # the same weights give the same next-token validation loss (the masked one is not comparable: the
    # evaluation draws its masks batch by batch, of train.batch_size, from one generator)
    assert [h["val_loss_next"] for h in ddp] == pytest.approx([h["val_loss_next"] for h in one], rel=1e-5, abs=0)


def test_grad_accum_equals_one_batch_of_both_micro_batches(even_stores, drawn, grad_norms, tmp_path):
    train, val = even_stores
    run(exact_config(train, val, tmp_path / "one"), progress=False)
    one_norms = grad_norms[:]
    del drawn[:], grad_norms[:]
    run(exact_config(train, val, tmp_path / "accum", batch_size=B, grad_accum=2), progress=False)
    # the gradient of each step is the mean over both micro-batches, not their sum
    assert len(grad_norms) == 4 and grad_norms == pytest.approx(one_norms, rel=1e-5, abs=0)
    # two micro-batches a step, of B events each, together the whole training store
    assert [s for s, _ in drawn] == [0, 0, 1, 1, 2, 2, 3, 3]
    for (_, a), (_, b) in zip(drawn[::2], drawn[1::2]):
        assert len(a) == len(b) == B and sorted(a + b) == list(range(2 * B))
    assert_same_weights(tmp_path / "one", tmp_path / "accum", ATOL)
    # every token of both micro-batches is counted: 4 steps of 2B sequences of 8 tokens
    assert loop_state(tmp_path / "accum")["tokens"] == loop_state(tmp_path / "one")["tokens"] == 4 * 2 * B * 8


def test_micro_batches_draw_their_own_masks_and_process_dropout(even_stores, drawn, monkeypatch, tmp_path):
    """The masks and the process dropout of a step's micro-batches come from generators of their own,
    as those of DDP ranks do: the same draws for both would mask the same positions (and drop the same
    rows' process) in every micro-batch of a step."""
    import backbone.pretrain

    train, val = even_stores
    masks = []

    def recorded(batch, vocab, rate, generator, uniform=None):
        inputs, targets = mask_tokens(batch, vocab, rate, generator, uniform)
        if torch.is_grad_enabled():  # training, not evaluation
            masks.append(inputs == vocab.mask)  # MASK at masked objects, and at dropped processes
        return inputs, targets
    monkeypatch.setattr(backbone.pretrain, "mask_tokens", recorded)
    run(exact_config(train, val, tmp_path / "accum", batch_size=B, grad_accum=2, process_dropout=0.5,
                     weight_masked=1.0), progress=False)
    assert len(masks) == 8 and all(m.shape == (B, 8) for m in masks)
    for step, (a, b) in enumerate(zip(masks[::2], masks[1::2])):
        assert not torch.equal(a, b), step  # different draws (about 7 of 20 objects masked in each)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_a_masked_weight_of_zero_skips_the_bidirectional_pass(even_stores, monkeypatch, tmp_path, weight):
    """train.weight_masked = 0 trains on next tokens alone without paying for the masked pass; any other
    weight runs it once a step. Validation still reports both losses."""
    from backbone.model import GPT

    train, val = even_stores
    passes, forward = [], GPT.forward

    def recorded(self, *args, causal=True, **kwargs):
        if torch.is_grad_enabled():  # training, not evaluation
            passes.append(causal)
        return forward(self, *args, causal=causal, **kwargs)
    monkeypatch.setattr(GPT, "forward", recorded)
    result = run(exact_config(train, val, tmp_path / "run", weight_masked=weight), progress=False)
    assert passes.count(True) == 4 and passes.count(False) == (4 if weight else 0)
    assert result["val_loss_masked"] > 0


def next_token_loss(model, events, process):
    """The mean next-token cross-entropy of `events` (lists of codes, of process names `process`),
    all in one batch, computed here from the model's logits: BOS, process, codes, EOS, padded on the
    right, every token after BOS a target except padding."""
    v = model.vocab
    seqs = [[v.bos, v.process_token(p), *codes, v.eos] for codes, p in zip(events, process)]
    idx = torch.full((len(seqs), max(map(len, seqs))), v.pad)
    for row, seq in enumerate(seqs):
        idx[row, :len(seq)] = torch.tensor(seq)
    targets = torch.where(idx[:, 1:] == v.pad, -100, idx[:, 1:])
    model.eval()
    with torch.no_grad():
        logits = model(idx[:, :-1])[0]
    return float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100))


def test_a_separate_validation_store_is_what_validation_reads(store, drawn, tmp_path):
    from backbone.model import GPT
    from backbone.pretrain import split_indices

    _, ids = store
    names = ("ttbar", "wjets")
    train = write_store(tmp_path / "train.h5", ak.to_list(ids), np.arange(200) % 2, fingerprint="tok-a")
    rng = np.random.default_rng(7)  # 24 other events, counting down: one validation batch of 32
    val_events = [list((s - np.arange(n)) % 32) for s, n in zip(rng.integers(0, 32, 24), rng.integers(1, 8, 24))]
    val_process = rng.integers(0, 2, 24)
    val = write_store(tmp_path / "val.h5", val_events, val_process, fingerprint="tok-a")
    cfg = to_dict(config(train, tmp_path / "run", 7, eval_every=7))
    cfg["data"]["val"] = str(val)
    result = run(from_dict(PretrainConfig, cfg), progress=False)
    # with a validation store, training takes the whole training store: 7 batches of 32 are its epoch
    assert sorted(i for _, batch in drawn for i in batch) == list(range(200))
    model = GPT.from_pretrained(tmp_path / "run")
    by_hand = next_token_loss(model, val_events, [names[p] for p in val_process])
    assert result["val_loss_next"] == pytest.approx(by_hand, rel=1e-5, abs=0)
    # the split that would be held out otherwise gives another loss
    held_out = split_indices(200, 0.05, 0)[1]
    other = next_token_loss(model, [ak.to_list(ids[int(i)]) for i in held_out], [names[i % 2] for i in held_out])
    assert abs(other - by_hand) > 0.05


def test_a_validation_store_of_another_tokenizer_is_refused(store, tmp_path):
    from common.cli import UserError

    _, ids = store
    train = write_store(tmp_path / "train.h5", ak.to_list(ids), np.arange(200) % 2, fingerprint="tok-a")
    val = write_store(tmp_path / "val.h5", ak.to_list(ids[:20]), np.arange(20) % 2, fingerprint="tok-b")
    cfg = to_dict(config(train, tmp_path / "run", 3))
    cfg["data"]["val"] = str(val)
    with pytest.raises(UserError, match="different tokenizers") as error:
        run(from_dict(PretrainConfig, cfg), progress=False)
    assert str(train) in str(error.value) and str(val) in str(error.value)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_resume_mid_epoch_with_dropout_is_exact(store, drawn, tmp_path):
    """Dropout draws from torch's global generator, which only the checkpoint can restore; and a stop
    in the middle of an epoch must resume with that epoch's next batch. The first run stops at step 4
    of 6-batch epochs (190 training events, batches of 32), inside the warm-up (5 steps), so that its
    4 steps have the learning rates of the longer run's first 4."""
    from safetensors.torch import load_file

    def cfg(out, steps):
        c = to_dict(config(store[0], out, steps))
        c["model"]["dropout"] = 0.1
        return from_dict(PretrainConfig, c)

    run(cfg(tmp_path / "straight", 9), progress=False)
    straight = drawn[:]
    del drawn[:]
    run(cfg(tmp_path / "resumed", 4), progress=False)
    state = loop_state(tmp_path / "resumed")
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (4, 0, 4)  # mid-epoch
    resumed = run(cfg(tmp_path / "resumed", 9), resume=True, progress=False)
    assert [h["step"] for h in resumed["history"]] == [3, 4, 6, 9]
    assert drawn == straight  # the same batches at the same steps, none twice
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_compiled_step_compiles_once_whatever_the_batch(density_store, tmp_path, monkeypatch):
    """20 steps of batches of other lengths and object counts, with the density head: one graph for the
    causal pass and one for the masked pass (torch.compile's eager backend: the graphs, not the code)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    import backbone.pretrain as pretrain

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compile_(model, backend="eager", **kw))
    torch._dynamo.reset()
    counters.clear()
    cfg = density(density_store, tmp_path / "run", 20, eval_every=10, batch_size=24, compile=True)
    data = TokenSequences.from_store(density_store, True)
    assert len(set(data.lengths)) > 5
    pretrain.run(cfg, progress=False)
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]
    torch._dynamo.reset()


def test_validation_losses_do_not_depend_on_the_batch_size(density_store, tmp_path):
    from backbone.pretrain import build_model, evaluate

    cfg = density(density_store, tmp_path / "run", 1)
    data = TokenSequences.from_store(density_store, True)
    model = build_model(cfg, data, data, torch.device("cpu"))
    rows = np.arange(0, 200, 3)
    a = evaluate(model, data, rows, cfg.train, "cpu", nullcontext())
    b = evaluate(model, data, rows, replace(cfg.train, batch_size=7), "cpu", nullcontext())
    for key in ("val_loss_next", "val_loss_masked", "val_loss_density"):
        assert a[key] == pytest.approx(b[key], rel=1e-5), key


def test_each_evaluation_is_logged_also_without_progress_bars(store, tmp_path, caplog):
    with caplog.at_level("INFO", logger="backbone.pretrain"):
        run(config(store[0], tmp_path / "run", 6), progress=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "backbone.pretrain"]
    assert [line.split(":")[0] for line in lines] == ["step 3/6", "step 6/6"]
    assert "validation loss next" in lines[0] and "tokens/s" in lines[0]


def test_the_pt_ordered_density_normalizes_each_jet_below_the_one_before(density_store, tmp_path):
    """`model.density_pt_order`: the density loss of each jet that follows a jet is its density over the
    head's mass below that jet's log pt (first jets and MET unbounded); finite gradients; saved and loaded."""
    from backbone.model import GPT
    from backbone.pretrain import build_model

    base = to_dict(density(density_store, tmp_path / "run", 1))
    data = TokenSequences.from_store(density_store, True)
    models = {}
    for on in (False, True):
        torch.manual_seed(0)
        cfg = from_dict(PretrainConfig, {**base, "model": {**base["model"], "density_pt_order": on}})
        models[on] = build_model(cfg, data, data, torch.device("cpu"))
    weights = models[False].state_dict()
    assert all(torch.equal(weights[k], v) for k, v in models[True].state_dict().items() if k in weights)
    assert models[True].density.code_group.tolist() == [0] * 31 + [4]  # codes 0-30 jets, 31 MET
    idx, f = data.tensors(np.arange(16))
    f[..., 0] = -0.3 * torch.arange(f.shape[1])  # log pt descending along every event
    hidden = models[False].hidden_states(idx[:, :-1], features=f[:, :-1])
    targets, tf = idx[:, 1:], f[:, 1:]
    off, on = (models[k].density_loss(hidden, targets, tf) for k in (False, True))
    mixture, _, _ = models[False].object_densities(hidden, targets, tf)
    is_object, is_jet = (targets >= 0) & (targets < 32), (targets >= 0) & (targets < 31)
    after_jet = torch.zeros_like(is_jet)
    after_jet[:, 1:] = is_jet[:, :-1]
    bounded = (is_jet & after_jet)[is_object]
    upper = (tf[..., 0] + 0.3)[is_object]  # the log pt of the object before
    log_below = torch.logsumexp(torch.log_softmax(mixture.logits, -1).double() + mixture.log_mass_below(upper), -1)
    assert 20 < bounded.sum() < len(bounded)
    torch.testing.assert_close(on, (off + (log_below * bounded).sum() / len(bounded)).float())
    ordered, z, mask = models[True].object_densities(hidden, targets, tf)  # what the scores read
    torch.testing.assert_close(-ordered.log_prob(z, mask).mean(), on)
    on.backward()
    assert all(torch.isfinite(p.grad).all() for p in models[True].density.parameters())

    run(from_dict(PretrainConfig, {**base, "out": str(tmp_path / "saved"),
                                   "model": {**base["model"], "density_pt_order": True}}), progress=False)
    loaded = GPT.from_pretrained(tmp_path / "saved")
    assert loaded.config.density_pt_order and loaded.density.code_group.tolist() == [0] * 31 + [4]


def test_the_order_bias_benchmark_counts_the_jets_after_a_jet(store, density_store, tmp_path, capsys):
    """benchmarks/density_order_bias.py on a 1-step backbone: it measures every jet that follows a jet
    (codes 0-30 jets, 31 MET in the store) and no other object, and refuses a backbone without a head."""
    import sys
    from pathlib import Path

    from common.errors import UserError

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import density_order_bias

    _, ids = store
    expected = sum(int(a < 31 and b < 31) for event in ids.tolist() for a, b in zip(event, event[1:]))
    run(density(density_store, tmp_path / "head", 1), progress=False)
    out = tmp_path / "bias.json"
    density_order_bias.main(["--backbone", str(tmp_path / "head"), "--store", str(density_store), "--out", str(out)])
    result = json.loads(out.read_text())["processes"]
    assert result["all"]["objects"] == result["ttbar"]["objects"] == expected > 0
    assert 0 <= result["all"]["leak"] <= 1
    run(config(density_store, tmp_path / "no_head", 1), progress=False)
    with pytest.raises(UserError, match="no density head"):
        density_order_bias.main(["--backbone", str(tmp_path / "no_head"), "--store", str(density_store)])


@pytest.mark.parametrize("type_head", [True, False])
def test_the_type_head_groups_codes_by_their_object_type(density_store, tmp_path, type_head):
    from backbone.pretrain import build_model

    base = to_dict(density(density_store, tmp_path / "run", 1))
    cfg = from_dict(PretrainConfig, {**base, "model": {**base["model"], "type_head": type_head}})
    data = TokenSequences.from_store(density_store, True)
    model = build_model(cfg, data, data, torch.device("cpu"))
    # codes 0-30 are jets and 31 is MET; then PAD, BOS, EOS and MASK; then the process token
    assert model.config.output_groups == ((0, 31, 32, 33, 34, 35, 36) if type_head else ())
    assert hasattr(model, "group_head") == type_head


@pytest.mark.parametrize("feature_logits", [True, False])
def test_feature_logits_are_built_on_the_hybrid_input_only(density_store, tmp_path, feature_logits):
    from backbone.pretrain import build_model
    from common.cli import UserError

    base = to_dict(density(density_store, tmp_path / "run", 1))
    data = TokenSequences.from_store(density_store, True)
    model = build_model(from_dict(PretrainConfig, {**base, "model": {**base["model"], "hybrid": True,
                                                                     "feature_logits": feature_logits,
                                                                     "feature_logits_width": 4 * feature_logits}}),
                        data, data, torch.device("cpu"))
    assert model.config.feature_logits == feature_logits == hasattr(model, "feature_tilt")
    assert model.config.feature_logits_width == 4 * feature_logits == (feature_logits and model.feature_basis[0].out_features)
    with pytest.raises(UserError, match="model.hybrid=true"):
        build_model(from_dict(PretrainConfig, {**base, "model": {**base["model"], "feature_logits": True}}),
                    data, data, torch.device("cpu"))


def kinematic_store(ids, path, mode):
    """`ids` with a code table of known kinematics: code c decodes to a massless object of pt 10 (c + 1) GeV
    at eta 0 and phi c (event mode; log pt normalized by mean 3 and std 0.5)."""
    from events.model import ObjectType as T

    c = np.arange(32)
    table = np.stack([(np.log(10.0 * (c + 1)) - 3) / 0.5, 0 * c, np.cos(c) / 0.7, np.sin(c) / 0.7, 0 * c, 0 * c], 1)
    names, kind = (6, T.JET) if mode == "event" else (4, T.CONSTITUENT)
    table = table[:, :names].astype(np.float32)
    transform = {"mode": mode, "mean": [3.0] + [0.0] * (names - 1), "std": [0.5, 1.0, 0.7, 0.7, 1.0, 1.0][:names]}
    flat = ak.to_numpy(ak.flatten(ids))
    with TokenWriter(path, 32, "none", mode, code_features=table, code_types=np.full(32, int(kind)),
                     feature_transform=transform) as writer:
        writer.write(TokenBatch(ids, {"event": np.arange(len(ids)), "process": np.zeros(len(ids), np.int16)},
                                ("ttbar",), ak.unflatten(table[flat], ak.num(ids))))
    return path


def test_momentum_logits_read_each_codes_kinematics_in_gev(store, tmp_path):
    """The momentum basis is built from what each code decodes to in GeV (the store's table through its
    normalization), not from the normalized features; it needs event-mode kinematics."""
    from backbone.pretrain import build_model
    from common.cli import UserError

    _, ids = store

    def built(mode):
        path = kinematic_store(ids, tmp_path / f"{mode}.h5", mode)
        base = to_dict(config(path, tmp_path / "run", 1))
        cfg = from_dict(PretrainConfig, {**base, "model": {**base["model"], "hybrid": True, "feature_logits": True,
                                                           "momentum_logits": True}})
        data = TokenSequences.from_store(path, True)
        return build_model(cfg, data, data, torch.device("cpu"))

    model = built("event")
    pt = 10.0 * np.arange(1, 33)  # at eta 0 and no mass, E = pt
    np.testing.assert_allclose(model.momentum_basis[:32, 0].numpy(), (pt - pt.mean()) / pt.std(ddof=1), atol=1e-5)
    px = pt * np.cos(np.arange(32))
    np.testing.assert_allclose(model.momentum_basis[:32, 1].numpy(), (px - px.mean()) / px.std(ddof=1), atol=1e-5)
    assert not model.momentum_basis[32:].any()
    with pytest.raises(UserError, match="momentum_logits needs each code's kinematics.*constituent"):
        built("constituent")


def test_the_group_loss_is_the_type_part_of_the_token_loss():
    """log p(group) read off the type head is the sum of the group's token probabilities, computed here
    from the normalized logits; targets of -100 are left out."""
    from backbone.config import GPTConfig
    from backbone.model import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=10, block_size=8,
                          output_groups=(0, 6, 7, 8, 9))).eval()
    idx = torch.randint(0, 10, (3, 5))
    targets = torch.tensor([[1, 6, 9, -100, 3], [7, 0, 5, 8, 2], [-100, -100, 4, 6, 9]])
    with torch.no_grad():
        logits, loss, group = model(idx, targets, type_loss=True)
    starts = (0, 6, 7, 8, 9, 10)
    by_hand = []
    for b, t in zip(*torch.nonzero(targets >= 0, as_tuple=True)):
        g = next(i for i in range(5) if starts[i] <= targets[b, t] < starts[i + 1])
        by_hand.append(-float(torch.logsumexp(logits[b, t, starts[g]:starts[g + 1]], 0)))
    assert float(group) == pytest.approx(np.mean(by_hand), rel=1e-5)
    assert 0 < float(group) < float(loss)
    plain = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=10, block_size=8))
    with pytest.raises(ValueError, match="no type head"):
        plain(idx, targets, type_loss=True)


def test_the_type_weight_scales_the_group_loss_in_the_step(density_store, grad_norms, tmp_path, weight=2.5):
    """With every other loss weighted 0 the first step's gradient is `weight` times that of the group
    loss: its norm scales with the weight (the same initial weights and batch in both runs)."""
    base = to_dict(config(density_store, tmp_path / "run", 1, weight_next=0.0, weight_masked=0.0,
                          weight_type=weight, process_dropout=0.0))
    result = run(from_dict(PretrainConfig, {**base, "model": {**base["model"], "type_head": True}}), progress=False)
    unit = tmp_path / "unit"
    run(from_dict(PretrainConfig, {**base, "out": str(unit), "train": {**base["train"], "weight_type": 1.0},
                                   "model": {**base["model"], "type_head": True}}), progress=False)
    assert grad_norms[0] == pytest.approx(weight * grad_norms[1], rel=1e-5) and grad_norms[1] > 0
    # validation reports the type part of the next-token loss
    assert 0 < result["history"][-1]["val_loss_type"] < result["val_loss_next"]


def test_a_type_weight_without_a_type_head_is_refused(density_store, tmp_path):
    from common.cli import UserError

    with pytest.raises(UserError, match="model.type_head=true"):
        run(config(density_store, tmp_path / "run", 1, weight_type=1.0), progress=False)


def test_slices_of_a_batch_combine_to_its_mean_over_every_target():
    from backbone.pretrain import Losses, combined

    t = torch.tensor
    parts = [Losses(t(2.0), t(1.0), t(-1.0), t(1), t(3), t(2), t(0.5)),
             Losses(t(4.0), t(float("nan")), t(-4.0), t(3), t(0), t(1), t(0.25))]
    # next (2 + 3 x 4) / 4; masked: the second slice has no masked target (its mean is NaN) and adds
    # nothing; density (2 x -1 - 4) / 3; group over the next-token targets (0.5 + 0.75) / 4
    both = combined(parts)
    assert [float(x) for x in both] == pytest.approx([3.5, 1.0, -2.0, 4, 3, 3, 0.3125])


def test_a_batch_run_in_length_slices_takes_the_same_step(store, density_store, grad_norms, monkeypatch, tmp_path):
    """data.length_split 3: each uniform batch (length_bucket 1) of 64 events runs as three slices sorted
    by length, each padded to its own longest event, and the step's gradient is the whole batch's (no
    masked loss or process dropout: their draws are per slice)."""
    from backbone.data import TokenSequences

    widths = []
    tensors = TokenSequences.tensors

    def recorded(self, indices, device="cpu", length=0):
        ids, features = tensors(self, indices, device, length)
        if torch.is_grad_enabled():  # training, not evaluation
            widths.append((len(indices), ids.shape[1]))
        return ids, features
    monkeypatch.setattr(TokenSequences, "tensors", recorded)
    base = to_dict(density(density_store, tmp_path / "one", 2, batch_size=64, process_dropout=0.0, weight_masked=0.0))
    base["data"]["length_bucket"] = 1
    run(from_dict(PretrainConfig, base), progress=False)
    whole, one_norms = widths[:], grad_norms[:]
    del widths[:], grad_norms[:]
    run(from_dict(PretrainConfig, {**base, "out": str(tmp_path / "split"), "data": {**base["data"], "length_split": 3}}),
        progress=False)
    assert [n for n, _ in whole] == [64] * 2 and [n for n, _ in widths] == [22, 21, 21] * 2
    for step, (_, width) in enumerate(whole):  # sorted slices: the shorter events pad less
        slices = [w for _, w in widths[3 * step:3 * step + 3]]
        assert slices == sorted(slices) and slices[-1] == width and slices[0] < width
    assert grad_norms == pytest.approx(one_norms, rel=1e-5, abs=0) and len(one_norms) == 2
    assert_same_weights(tmp_path / "one", tmp_path / "split", ATOL)
    assert loop_state(tmp_path / "split")["tokens"] == loop_state(tmp_path / "one")["tokens"]
    with pytest.raises(ValueError, match="length_split must be >= 1"):
        from_dict(PretrainConfig, {**base, "data": {**base["data"], "length_split": 0}})


@pytest.mark.parametrize("bucket", [50, 1])
def test_the_length_bucket_sets_how_training_batches_mix_lengths(store, drawn, tmp_path, bucket):
    """data.length_bucket 50 (the default): the 200 events of an epoch fit in one chunk, sorted by length, so
    the batches hold disjoint runs of lengths; 1: each batch a uniform draw, lengths mixed."""
    _, ids = store
    lengths = np.asarray(ak.num(ids))
    cfg = to_dict(config(store[0], tmp_path / "run", 6, eval_every=6))
    cfg["data"]["length_bucket"] = bucket
    run(from_dict(PretrainConfig, cfg), progress=False)
    # the first epoch: about 190 training events, five batches of 32 and a short one
    spans = sorted((lengths[batch].min(), lengths[batch].max()) for _, batch in drawn[:6])
    disjoint = all(hi <= lo for (_, hi), (lo, _) in zip(spans, spans[1:]))
    assert disjoint == (bucket == 50) and len(spans) == 6
    with pytest.raises(ValueError, match="length_bucket must be >= 1"):
        from_dict(PretrainConfig, {**cfg, "data": {**cfg["data"], "length_bucket": 0}})


def test_the_gradient_norm_benchmark_groups_the_sorted_batches_by_length(density_store, tmp_path):
    import sys

    sys.path.insert(0, "benchmarks")
    import batch_gradient_norms

    run(density(density_store, tmp_path / "head", 1), progress=False)
    out = tmp_path / "norms.json"
    batch_gradient_norms.main(["--backbone", str(tmp_path / "head"), "--store", str(density_store), "--batch-size", "32",
                               "--bucket", "6", "--uniform", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    # 200 events, sorted by length in one chunk of 6 batches: the short batches first, 6 in all
    assert sum(r["batches"] for r in result["sorted"].values()) == 6 and len(result["sorted"]) >= 3
    assert all(r["mean_norm"] > 0 for r in result["sorted"].values()) and len(result["uniform"]["norms"]) == 2
