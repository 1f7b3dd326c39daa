"""What the training loops (tokenizer, backbone pretraining, fine-tuning) share: AdamW parameter groups,
and `TrainingRun`, the state of a loop that a signal can stop and `--resume` continue exactly."""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Iterable, Iterator

import torch

from common.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from common.interrupt import GRACE_S, Interrupted, StopFlag, stop_on_signals

log = logging.getLogger(__name__)


def param_groups(model: torch.nn.Module, weight_decay: float, parameters: Iterable[torch.nn.Parameter] | None = None,
                 **options) -> list[dict]:
    """AdamW groups of `parameters` (default: all of `model`'s): weight decay on the matrices (weights of
    two or more dimensions) only, as in nanoGPT; biases, norms and embeddings are not pulled towards 0.
    `options` (e.g. lr) go into both groups."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    params = list(model.parameters() if parameters is None else parameters)
    decay = [p for p in params if p.dim() >= 2 and id(p) not in embeddings]
    rest = [p for p in params if p.dim() < 2 or id(p) in embeddings]
    groups = [{"params": decay, "weight_decay": weight_decay, **options},
              {"params": rest, "weight_decay": 0.0, **options}]
    return [g for g in groups if g["params"]]


class TrainingRun:
    """A training loop's state: its `state` dict (JSON: at least `step`, `epoch` and `batch_in_epoch`, and
    for `evaluated`, `best_loss` and `bad_evaluations`), the model, the optimizer and the best weights so
    far, saved together to the checkpoint `folder` (None: never saved; rank > 0 of a DDP run never writes).

    Used as a context around the whole loop (steps, evaluations, checkpoint writes), it holds the
    SIGTERM/SIGINT handlers: a signal is honoured at the next `stop_point()` (after a step or an
    evaluation), or at the end of the block, by writing the checkpoint and raising `Interrupted`; a
    run with no safe point within `grace_s` of the signal is ended there (common.interrupt).
    `checkpoint_every_s`: a `stop_point()` also writes the checkpoint when the last one is that old,
    so that a kill loses at most that much work (None: only when the loop saves). A weight `average`
    (common.averaging) is saved and restored with the rest."""

    def __init__(self, folder: str | Path | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 state: dict, rank: int = 0, world: int = 1, *, grace_s: float | None = GRACE_S,
                 checkpoint_every_s: float | None = None, clock=time.monotonic, average=None):
        self.folder = None if folder is None else Path(folder)
        self.model, self.optimizer, self.state, self.average = model, optimizer, state, average
        self.rank, self.world = rank, world
        self.best: dict[str, torch.Tensor] | None = None
        self.signum = 0
        self._changed = True  # since the last save or load: a stop must write the checkpoint
        self._flag = StopFlag()  # raised by a signal only while the run is entered as a context
        self._signals = contextlib.ExitStack()
        self.grace_s, self.checkpoint_every_s, self.clock = grace_s, checkpoint_every_s, clock
        self._saved_at = clock()

    def resume(self) -> bool:
        """Restore the checkpoint, if there is one, into the model, the optimizer, the RNGs and `state`
        (updated in place); whether there was one."""
        if self.folder is None or not checkpoint_exists(self.folder):
            return False
        state, extra = load_checkpoint(self.folder, self.model, self.optimizer)
        self.state.clear()
        self.state.update(state)
        device = next(self.model.parameters()).device
        self.best = {k[len("best."):]: v.to(device) for k, v in extra.items() if k.startswith("best.")} or None
        average = {k[len("average."):]: v for k, v in extra.items() if k.startswith("average.")}
        if self.average is not None:
            if average:
                self.average.load(average)
            else:  # a checkpoint of a run without one: the average starts at the resumed weights
                log.warning("%s holds no weight average: it starts at the resumed weights", self.folder)
                self.average.load({k: p.detach() for k, p in self.average.parameters.items()})
        self._changed = False
        return True

    def save(self) -> None:
        if self.folder is not None and self.rank == 0:
            extra = {f"best.{k}": v for k, v in (self.best or {}).items()}
            if self.average is not None:
                extra.update({f"average.{k}": v for k, v in self.average.average.items()})
            save_checkpoint(self.folder, self.model, self.optimizer, self.state, extra)
        self._changed = False
        self._saved_at = self.clock()

    def evaluated(self, loss: float, min_improvement: float = 0.0) -> None:
        """After an evaluation: keep the weights as the best if `loss` beats the best so far by more than
        `min_improvement`, else count an evaluation without improvement (for early stopping); then write
        the checkpoint, and stop if a signal asked to."""
        if loss < self.state["best_loss"] - min_improvement:
            self.state["best_loss"], self.state["bad_evaluations"] = loss, 0
            self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.state["bad_evaluations"] += 1
        self.save()
        self.stop_point()

    def restore_best(self) -> bool:
        """Load the best weights into the model; whether there were any."""
        if self.best:
            self.model.load_state_dict(self.best)
        return bool(self.best)

    def epoch(self, batches: Iterable) -> Iterator:
        """One epoch of `batches` (drawn in the same order on every rank and after a resume): those a
        stopped run already used are skipped, each rank takes every `world`-th, and `state` counts them;
        at the end, `state["epoch"]` moves on."""
        done = self.state["batch_in_epoch"]
        for i, batch in enumerate(batches):
            if i < done:
                continue
            # every rank resumes after the last round of batches any rank took
            self.state["batch_in_epoch"] = (i // self.world + 1) * self.world
            if i % self.world == self.rank:
                self._changed = True
                yield batch
        self.state["epoch"] += 1
        self.state["batch_in_epoch"] = 0
        self._changed = True

    def stop_requested(self) -> bool:
        """Whether a signal asked any rank to stop (under DDP every rank must ask at the same point)."""
        signum = self._flag.signum
        if self.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([signum], device=next(self.model.parameters()).device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag)
        self.signum = signum
        return bool(signum)

    def stop(self) -> None:
        """Write the checkpoint (unless nothing changed since the last one) and raise `Interrupted`."""
        if self._changed:
            self.save()
        step = self.state["step"]
        raise Interrupted(self.signum, f"checkpoint of step {step} written to {self.folder}; continue with --resume"
                          if self.folder is not None else f"stopped at step {step}, with no checkpoint to resume from")

    def stop_point(self) -> None:
        """A safe point to stop at: if a signal came, write the checkpoint and raise `Interrupted`; else
        write it if `checkpoint_every_s` have passed since the last."""
        if self.stop_requested():
            self.stop()
        if (self._changed and self.checkpoint_every_s is not None
                and self.clock() - self._saved_at >= self.checkpoint_every_s):
            self.save()

    def __enter__(self) -> "TrainingRun":
        self._flag = self._signals.enter_context(stop_on_signals(self.grace_s))
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._signals.close()
        if kind is None:  # a signal that came after the last stop point still stops the run
            self.stop_point()
