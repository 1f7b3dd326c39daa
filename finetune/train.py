"""Training a classifier head (and, in full and scratch modes, its backbone), and predicting with it."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from backbone.data import TokenSequences, to_device
from finetune.config import TrainSection

VALIDATE_EVERY = 50  # steps between validations, rounded to whole epochs


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, normalized so that the average event weighs 1."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def optimizer_for(model, cfg: TrainSection) -> torch.optim.Optimizer:
    """AdamW; in full mode the backbone learns at lr * backbone_lr_scale, the head at lr."""
    head = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    groups = [{"params": head, "lr": cfg.lr}]
    if cfg.mode != "frozen":
        scale = cfg.backbone_lr_scale if cfg.mode == "full" else 1.0
        groups.append({"params": list(model.backbone.parameters()), "lr": cfg.lr * scale})
    for g in groups:
        g["base_lr"] = g["lr"]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


@torch.no_grad()
def predict(model, seqs: TokenSequences, indices: np.ndarray | None = None, batch_size: int = 512,
            device="cpu") -> np.ndarray:
    """Class probabilities (N, C) of the events `indices` (default all), in that order."""
    model.eval()
    n = len(seqs) if indices is None else len(indices)
    out = np.empty((n, model.head[-1].out_features), dtype=np.float32)
    for rows, batch, features in seqs.sorted_batches(batch_size, indices):
        out[rows] = torch.softmax(model(*to_device(batch, features, device)).float(), dim=-1).cpu().numpy()
    return out


def mean_loss(model, seqs, y, indices, weights, batch_size, device) -> float:
    probs = predict(model, seqs, indices, batch_size, device)
    nll = -np.log(np.clip(probs[np.arange(len(indices)), y[indices]], 1e-12, None))
    w = weights.numpy()[y[indices]]
    return float((w * nll).sum() / w.sum())


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to zero at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min((step - warmup) / max(total - warmup, 1), 1.0)))


def fit(model, seqs: TokenSequences, y: np.ndarray, train_idx: np.ndarray, val_seqs: TokenSequences,
        y_val: np.ndarray, val_idx: np.ndarray, cfg: TrainSection, device, progress: bool = True,
        checkpoint: Path | None = None, resume: bool = False) -> dict:
    """Train with early stopping on the (class-weighted) validation loss; the best weights are kept.

    At least `cfg.min_steps` optimizer steps are made (small training sets get more epochs), and the
    validation loss is measured about every `VALIDATE_EVERY` steps, at epoch ends; `cfg.patience`
    counts validations without improvement. With a `checkpoint` folder, the state is saved at every
    validation and when a signal stops the run; `resume` continues from it exactly."""
    from tqdm import tqdm

    from common.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
    from common.interrupt import Interrupted, stop_on_signals

    n_classes = model.head[-1].out_features
    weights = class_weights(y[train_idx], n_classes) if cfg.class_weights else torch.ones(n_classes)
    optimizer = optimizer_for(model, cfg)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / steps_per_epoch))
    validate_every = max(1, round(VALIDATE_EVERY / steps_per_epoch))  # epochs
    total = steps_per_epoch * epochs
    warmup = min(cfg.warmup_steps, total // 10 + 1)
    state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best": float("inf"), "bad": 0, "history": [],
             "loss": float("nan")}
    best_state = None

    def save():
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, state, {f"best.{k}": v for k, v in (best_state or {}).items()})

    if resume and checkpoint is not None and checkpoint_exists(checkpoint):
        state, extra = load_checkpoint(checkpoint, model, optimizer)
        best_state = {k[len("best."):]: v.to(device) for k, v in extra.items() if k.startswith("best.")} or None
    bar = tqdm(total=total, initial=state["step"], desc=f"fine-tune ({cfg.mode})", unit="step", disable=not progress)
    with stop_on_signals() as stop:
        while state["epoch"] < epochs and state["bad"] < cfg.patience:
            epoch = state["epoch"]
            model.train()
            rng = np.random.default_rng([cfg.seed, 3, epoch])
            for i, batch_idx in enumerate(seqs.index_batches(rng, cfg.batch_size, train_idx)):
                if i < state["batch_in_epoch"]:
                    continue  # resuming mid-epoch: the same order, skip what was already used
                for g in optimizer.param_groups:
                    g["lr"] = g["base_lr"] * lr_factor(state["step"], warmup, total)
                logits = model(*seqs.tensors(batch_idx, device))
                loss = F.cross_entropy(logits.float(), torch.from_numpy(y[batch_idx]).to(device),
                                       weight=weights.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                state["step"] += 1
                state["batch_in_epoch"] = i + 1
                state["loss"] = loss.item()
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{state['loss']:.3f}")
                if stop.signum:
                    save()
                    raise Interrupted(stop.signum, f"fine-tuning checkpoint of step {state['step']} written to "
                                                   f"{checkpoint}; continue with --resume" if checkpoint else
                                                   f"fine-tuning stopped at step {state['step']} (no checkpoint)")
            state["epoch"], state["batch_in_epoch"] = epoch + 1, 0
            if (epoch + 1) % validate_every and epoch + 1 < epochs:
                continue
            val = mean_loss(model, val_seqs, y_val, val_idx, weights, cfg.batch_size * 2, device)
            state["history"].append({"epoch": epoch, "step": state["step"], "train_loss": state["loss"],
                                     "val_loss": val})
            if val < state["best"] - 1e-4:
                state["best"], state["bad"] = val, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                state["bad"] += 1
            save()
    bar.close()
    if best_state is None:
        from common.errors import TrainingError

        raise TrainingError(f"the validation loss was never finite ({state['history'][-1]['val_loss']}): check the "
                             "inputs and the learning rate")
    model.load_state_dict(best_state)
    return {"best_val_loss": state["best"], "epochs": state["epoch"], "steps": state["step"],
            "history": state["history"]}
