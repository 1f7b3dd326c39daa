"""Token sequences, masking, and the pretraining loop (both objectives, exact resume)."""
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


def test_resumed_pretraining_equals_uninterrupted(store, tmp_path):
    from safetensors.torch import load_file

    run(config(store[0], tmp_path / "straight", 9), progress=False)
    run(config(store[0], tmp_path / "resumed", 6), progress=False)
    resumed = run(config(store[0], tmp_path / "resumed", 9), resume=True, progress=False)
    assert [h["step"] for h in resumed["history"]] == [3, 6, 9]
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


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


def test_ddp_with_two_processes_on_cpu(density_store, tmp_path):
    """With the density head (its parameters get gradients from one pass only, the masked pass none)."""
    import json
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO

    cfg = to_dict(density(density_store, tmp_path / "ddp", 40, eval_every=20))
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29517", "-m", "backbone.pretrain", "--config", str(tmp_path / "ddp.yaml"),
                           "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["processes"] == 2
    history = metrics["history"]
    assert history[-1]["val_loss_next"] < history[0]["val_loss_next"] or history[-1]["val_loss_next"] < 3.0
    assert history[-1]["val_loss_density"] < history[0]["val_loss_density"]
    assert (tmp_path / "ddp" / "model.safetensors").is_file()
