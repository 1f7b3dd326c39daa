"""Training a classifier head (and, in full and scratch modes, its backbone), and predicting with it."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from backbone.data import TokenSequences, to_device
from common.errors import TrainingError
from common.schedule import warmup_cosine
from common.training import TrainingRun, param_groups
from finetune.config import TrainSection

VALIDATE_EVERY = 50  # steps between validations, rounded to whole epochs


def class_weights(y: np.ndarray, n_classes: int, device=None) -> torch.Tensor:
    """Inverse-frequency weights, normalized so that the average event weighs 1."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32, device=device)


def optimizer_for(model, cfg: TrainSection) -> torch.optim.Optimizer:
    """AdamW, decaying the weight matrices only; in full mode the backbone learns at lr * backbone_lr_scale,
    the head at lr."""
    head = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    groups = param_groups(model, cfg.weight_decay, head, lr=cfg.lr)
    if cfg.mode != "frozen":
        scale = cfg.backbone_lr_scale if cfg.mode == "full" else 1.0
        groups += param_groups(model, cfg.weight_decay, model.backbone.parameters(), lr=cfg.lr * scale)
    for g in groups:
        g["base_lr"] = g["lr"]
    return torch.optim.AdamW(groups)


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
    w = weights.cpu().numpy()[y[indices]]
    return float((w * nll).sum() / w.sum())


def fit(model, seqs: TokenSequences, y: np.ndarray, train_idx: np.ndarray, val_seqs: TokenSequences,
        y_val: np.ndarray, val_idx: np.ndarray, cfg: TrainSection, device, progress: bool = True,
        checkpoint: Path | None = None, resume: bool = False) -> dict:
    """Train with early stopping on the (class-weighted) validation loss; the best weights are kept.

    At least `cfg.min_steps` optimizer steps are made (small training sets get more epochs), and the
    validation loss is measured about every `VALIDATE_EVERY` steps, at epoch ends; `cfg.patience`
    counts validations without improvement. With a `checkpoint` folder, the state is saved at every
    validation and when a signal stops the run; `resume` continues from it exactly."""
    from tqdm import tqdm

    n_classes = model.head[-1].out_features
    weights = (class_weights(y[train_idx], n_classes, device) if cfg.class_weights
               else torch.ones(n_classes, device=device))
    optimizer = optimizer_for(model, cfg)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / steps_per_epoch))
    validate_every = max(1, round(VALIDATE_EVERY / steps_per_epoch))  # epochs
    total = steps_per_epoch * epochs
    state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_loss": float("inf"), "bad_evaluations": 0,
             "history": [], "loss": float("nan")}
    run = TrainingRun(checkpoint, model, optimizer, state)
    if resume:
        run.resume()
    bar = tqdm(total=total, initial=state["step"], desc=f"fine-tune ({cfg.mode})", unit="step", disable=not progress)
    with run:
        while state["epoch"] < epochs and state["bad_evaluations"] < cfg.patience:
            epoch = state["epoch"]
            model.train()
            rng = np.random.default_rng([cfg.seed, 3, epoch])
            for batch_idx in run.epoch(seqs.index_batches(rng, cfg.batch_size, train_idx, cfg.length_bucket)):
                # a factor of each group's own rate; at least one step of warm-up, at most a tenth of the steps
                factor = warmup_cosine(state["step"], total, cfg.warmup_steps, warmup_cap=total // 10 + 1)
                for g in optimizer.param_groups:
                    g["lr"] = g["base_lr"] * factor
                logits = model(*seqs.tensors(batch_idx, device))
                loss = F.cross_entropy(logits.float(), torch.from_numpy(y[batch_idx]).to(device),
                                       weight=weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                state["step"] += 1
                state["loss"] = loss.item()
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{state['loss']:.3f}")
                run.stop_point()
            if (epoch + 1) % validate_every and epoch + 1 < epochs:
                continue
            val = mean_loss(model, val_seqs, y_val, val_idx, weights, cfg.batch_size * 2, device)
            state["history"].append({"epoch": epoch, "step": state["step"], "train_loss": state["loss"],
                                     "val_loss": val})
            run.evaluated(val, min_improvement=1e-4)
    bar.close()
    if not run.restore_best():
        raise TrainingError(f"the validation loss was never finite ({state['history'][-1]['val_loss']}): check the "
                            "inputs and the learning rate")
    return {"best_val_loss": state["best_loss"], "epochs": state["epoch"], "steps": state["step"],
            "history": state["history"]}
