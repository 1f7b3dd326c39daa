"""python -m backbone.pretrain: next-token and masked-token pretraining of the GPT on token sequences.

Each step runs both objectives on the same weights: a causal pass (next-token prediction, right
padding, no mask: flash attention) and a bidirectional pass on the same batch with a fraction of the
object tokens masked (masked-token prediction, key-padding mask). The run folder gets config.json +
model.safetensors (the backbone: with train.ema_decay, the weights' moving average), checkpoint/ (the
raw weights and the average: exact resume with --resume), metrics.json.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from backbone.config import PretrainConfig, TrainSection
from backbone.data import TokenSequences
from backbone.masking import counter_uniform, mask_tokens
from backbone.model import GPT
from backbone.plots import plot_losses
from common.averaging import WeightAverage
from common.cli import UserError, check_output_folder, run_cli, training_parser
from common.config import load_config, to_dict

log = logging.getLogger(__name__)


#: compiled steps see sequences padded to a multiple of this (at most the block size): a few shapes,
#: each compiled once, instead of one per batch's longest event
LENGTH_BUCKET = 32


def static_length(data: TokenSequences, rows: np.ndarray, block: int) -> int:
    """The padded length of a compiled step's batch of events `rows`."""
    longest = int(data.lengths[rows].max())
    return min(block, -(-longest // LENGTH_BUCKET) * LENGTH_BUCKET)


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    is_val = np.random.default_rng([seed, 11]).random(n) < fraction
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class Losses(NamedTuple):
    """The mean losses of a batch, and how many targets each averages over (tensors: no host sync)."""

    next: torch.Tensor
    masked: torch.Tensor
    density: torch.Tensor
    n_next: torch.Tensor
    n_masked: torch.Tensor
    n_density: torch.Tensor
    #: the next-token targets' mean -log p(group) (a part of `next`; None unless asked for), over n_next
    group: torch.Tensor | None = None


def length_slices(data: TokenSequences, rows: np.ndarray, n: int) -> list[np.ndarray]:
    """The events `rows` sorted by length and cut into `n` slices (at most one per event)."""
    return [piece for piece in np.array_split(rows[np.argsort(data.lengths[rows], kind="stable")], n) if len(piece)]


def combined(parts: list[Losses]) -> Losses:
    """The losses of one batch run as slices `parts`: each term the mean over all its targets."""
    def mean(name: str, count: str) -> torch.Tensor:
        n = torch.stack([getattr(p, count) for p in parts])
        values = torch.stack([getattr(p, name) for p in parts])
        # a slice without targets of a term (a mean of nothing) adds nothing
        return torch.where(n > 0, values, torch.zeros_like(values)).mul(n).sum() / n.sum().clamp(min=1)

    if len(parts) == 1:
        return parts[0]
    totals = [sum(getattr(p, c) for p in parts) for c in ("n_next", "n_masked", "n_density")]
    return Losses(mean("next", "n_next"), mean("masked", "n_masked"), mean("density", "n_density"), *totals,
                  None if parts[0].group is None else mean("group", "n_next"))


def weighted_loss(terms: Losses, tc: TrainSection) -> torch.Tensor:
    """The loss a training step minimizes: the terms weighted as `tc` says (the group loss where asked for)."""
    loss = tc.weight_next * terms.next + tc.weight_masked * terms.masked + tc.weight_density * terms.density
    return loss + tc.weight_type * terms.group if tc.weight_type > 0 else loss


def losses(model, batch: torch.Tensor, data: TokenSequences, rate: float, generator: torch.Generator | None, autocast,
           wrapped=None, process_dropout: float = 0.0, features: torch.Tensor | None = None, density: bool = False,
           uniform: torch.Tensor | None = None, masked: bool = True, group: bool = False) -> Losses:
    """The next-token, masked-token and density losses (0 without a head) of one batch (B, T), with
    its objects' `features` (B, T, F) for a hybrid model or a `density` head (trained on the causal
    pass: each object's features given its token and the objects before it). Masks and process
    dropout are drawn from `generator`, or the masks given as `uniform` draws (B, T). Without
    `masked` the bidirectional pass is skipped and its loss is 0 (a run that weights it 0). With `group`
    (a model with a type head) the next-token targets' group loss is returned too. Under DDP,
    `wrapped` (the DDP module) runs the last pass: DDP prepares one backward per forward call
    through it, and the gradients of both passes, summed in one backward, are all-reduced once."""
    vocab = data.vocab
    if data.conditional and process_dropout > 0:
        drop = torch.rand(len(batch), generator=generator, device=generator.device) < process_dropout
        drop = drop.to(batch.device)
        batch = batch.clone()
        batch[:, 1] = torch.where(drop, vocab.mask, batch[:, 1])
    pad = batch == vocab.pad
    # an unknown process (MASK) is context, never a target
    ignore = pad | (batch == vocab.mask) if data.conditional else pad
    targets = torch.where(ignore[:, 1:], torch.full_like(batch[:, 1:], -100), batch[:, 1:])
    with autocast:
        extra = {"target_features": features[:, 1:]} if density else {}
        if group:
            extra["type_loss"] = True
        out = (model if masked else wrapped or model)(batch[:, :-1], targets, causal=True,
                                                      features=None if features is None else features[:, :-1], **extra)
        loss_next, loss_density = out[1], out[2] if density else torch.zeros((), device=batch.device)
        if masked:
            inputs, masked_targets = mask_tokens(batch, data.vocab, rate, generator, uniform)
            # the model ignores features at MASK: a masked object's features are hidden with its token
            _, loss_masked = (wrapped or model)(inputs, masked_targets, causal=False, pad_mask=pad, features=features)
        else:
            masked_targets, loss_masked = torch.full_like(batch, -100), torch.zeros((), device=batch.device)
    n_density = ((targets >= 0) & (targets < vocab.n_codes)).sum() if density else torch.zeros((), device=batch.device)
    return Losses(loss_next, loss_masked, loss_density, (targets != -100).sum(), (masked_targets != -100).sum(),
                  n_density, out[-1] if group else None)


@torch.no_grad()
def evaluate(model, data: TokenSequences, indices: np.ndarray, cfg: TrainSection, device, autocast) -> dict:
    """Validation losses per target (token or object), whatever the batch size: each event's masks
    depend only on the seed, the event and the position, as in masked scoring."""
    model.eval()
    density, group = bool(model.config.density_components), bool(model.config.output_groups)
    sums, counts = np.zeros(4), np.zeros(4)
    for start in range(0, len(indices), cfg.batch_size):
        events = indices[start:start + cfg.batch_size]
        batch, features = data.tensors(events, device)
        uniform = torch.from_numpy(counter_uniform(cfg.seed, 17, events[:, None], np.arange(batch.shape[1])[None, :]))
        terms = losses(model, batch, data, cfg.mask_rate, None, autocast, features=features, density=density,
                       uniform=uniform, group=group)
        n = torch.stack([terms.n_next, terms.n_masked, terms.n_density, terms.n_next]).double()
        values = [terms.next, terms.masked, terms.density, terms.group if group else torch.zeros_like(terms.next)]
        sums += (torch.stack(values).double() * n).cpu().numpy()
        counts += n.cpu().numpy()
    model.train()
    mean = sums / np.maximum(counts, 1)
    # type: the part of the next-token loss that is the choice of each target's group (type head only)
    out = {f"val_loss_{k}": float(v) for k, v, on in zip(("next", "masked", "density", "type"), mean,
                                                         (True, True, density, group)) if on}
    out.update({f"val_perplexity_{k}": math.exp(out[f"val_loss_{k}"]) for k in ("next", "masked")})
    return out


def hybrid_table(cfg: PretrainConfig, data: TokenSequences, val_data: TokenSequences) -> np.ndarray:
    """The code feature table of the training store, which (and the validation data) must hold features."""
    from tokenizer.store import read_code_features

    table = read_code_features(cfg.data.train)
    for name, d in (("train", data), ("val", val_data)):
        if table is None or d.features is None:
            raise UserError(f"model.hybrid needs features in the token store data.{name}: write it with "
                            "python -m tokenizer.tokenize --features")
    return table


def check_density_data(cfg: PretrainConfig, data: TokenSequences, val_data: TokenSequences) -> None:
    """A density head is trained on the objects' features: every store must hold them, and the codes'
    meaning (recorded by stores written since the head exists)."""
    for name, d in (("train", data), ("val", val_data)):
        if d.features is None or d.code_info is None or d.mode not in ("event", "constituent"):
            raise UserError(f"model.density_components needs features in the token store data.{name}: write it "
                            "with python -m tokenizer.tokenize --features (or set model.density_components=0)")


def save_backbone(model: GPT, data: TokenSequences, cfg: PretrainConfig, folder: Path, extra: dict) -> None:
    model.vocab, model.conditional, model.tokenizer_fingerprint = data.vocab, data.conditional, data.fingerprint or None
    model.process_dropout = cfg.train.process_dropout
    model.save_pretrained(folder, to_dict(cfg), **extra)


def build_model(cfg: PretrainConfig, data: TokenSequences, val_data: TokenSequences, device: torch.device) -> GPT:
    """The GPT of `cfg.model` for these data, made on `device`, with the hybrid's code table and the
    density head's view of the tokenizer set from the training store."""
    m = cfg.model
    block = max(data.longest_possible(), val_data.longest_possible())
    if m.feature_logits and not m.hybrid:
        raise UserError("model.feature_logits tilts the logits by each code's features, which only the hybrid input "
                        "has: set model.hybrid=true, or model.feature_logits=false")
    table = hybrid_table(cfg, data, val_data) if m.hybrid else None
    if m.momentum_logits and (data.mode != "event" or data.code_info is None):
        raise UserError(f"model.momentum_logits needs each code's kinematics, which an event-mode token store records "
                        f"(python -m tokenizer.tokenize --features): {cfg.data.train} is "
                        f"{data.mode or 'of unknown mode'}{'' if data.code_info else ', without its normalization'}")
    if m.density_components:
        check_density_data(cfg, data, val_data)
    groups = data.vocab.output_groups(None if data.code_info is None else data.code_info[0])
    with torch.device(device):  # weights made where they train: no copy, and no CPU-sized init on a GPU
        model = GPT(m.gpt(data.vocab.size, block, 0 if table is None else table.shape[1], data.vocab.n_codes,
                          data.mode, groups))
    if table is not None:
        model.set_code_features(torch.from_numpy(table))
    if m.momentum_logits:
        from tokenizer.features import FeatureTransform

        code = FeatureTransform.from_dict(data.code_info[1]).inverse(table[:data.vocab.n_codes])
        model.set_code_momenta(code["pt"], code["eta"], code["phi"], code["mass"])
    if m.density_components:
        from tokenizer.store import read_code_features

        code_types, transform = data.code_info
        model.density.set_tokenizer(code_types.tolist(), transform["mean"], transform["std"],
                                    read_code_features(cfg.data.train)[:data.vocab.n_codes])
    return model


def run(cfg: PretrainConfig, resume: bool = False, progress: bool = True) -> dict:
    from tqdm import tqdm

    from common.provenance import record_run
    from common.runtime import autocast as autocast_for, init_distributed, resolve_device
    from common.schedule import warmup_cosine
    from common.training import TrainingRun, param_groups

    if not cfg.data.train:
        raise UserError("no training data: set data.train to a token store (python -m tokenizer.tokenize)")
    tc = cfg.train
    rank, world, device = init_distributed(resolve_device(tc.device))
    torch.manual_seed(tc.seed)  # the same initial weights on every rank
    data = TokenSequences.from_store(cfg.data.train, cfg.data.conditional, multiplicity=cfg.data.multiplicity_token)
    if cfg.data.val:
        val_data = TokenSequences.from_store(cfg.data.val, cfg.data.conditional, data.vocab)
        if data.fingerprint and val_data.fingerprint and data.fingerprint != val_data.fingerprint:
            raise UserError(f"{cfg.data.train} and {cfg.data.val} were tokenized by different tokenizers")
        train_idx, val_idx = np.arange(len(data)), np.arange(len(val_data))
    else:
        val_data = data
        train_idx, val_idx = split_indices(len(data), cfg.data.val_fraction, tc.seed)
    model = build_model(cfg, data, val_data, device)
    if tc.weight_type > 0 and not model.config.output_groups:
        raise UserError("train.weight_type weights the type head's group loss: set model.type_head=true on a "
                        "store whose codes have object types (event mode), or train.weight_type=0")
    density = bool(cfg.model.density_components)
    optimizer = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=tc.lr, betas=(0.9, 0.95),
                                  fused=device.type == "cuda")
    ddp = None
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    step_model = torch.compile(model, dynamic=False) if tc.compile else model
    autocast = autocast_for(device, tc.bf16)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        record_run(out, to_dict(cfg), tc.seed, f"{device} x{world}")
    average = WeightAverage(model, tc.ema_decay) if tc.ema_decay else None
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "history": [], "tokens": 0, "seconds": 0.0,
             "curve": [], "window": [0.0, 0.0, 0.0, 0]}  # curve: [step, mean next, mean masked(, mean density)]
    run = TrainingRun(out / "checkpoint", model, optimizer, state, rank, world, grace_s=tc.stop_grace_s,
                      checkpoint_every_s=60 * tc.checkpoint_minutes, average=average)
    if resume and run.resume() and len(state["window"]) == 3:  # written before the density loss had a slot
        state["window"] = [*state["window"][:2], 0.0, state["window"][2]]

    def epoch_batches():
        while True:
            for batch in run.epoch(data.index_batches(np.random.default_rng([tc.seed, state["epoch"]]), tc.batch_size,
                                                      indices=train_idx, bucket=cfg.data.length_bucket)):
                # compiled: the epoch's one short batch is left out, as its shape would compile again
                if not tc.compile or len(batch) == tc.batch_size:
                    yield batch

    batches = epoch_batches()
    bar = tqdm(total=tc.max_steps, initial=state["step"], desc="pretrain", unit="step",
               disable=not progress or rank > 0)
    model.train()
    with run:
        while state["step"] < tc.max_steps:
            start = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = warmup_cosine(state["step"], tc.max_steps, tc.warmup_steps, tc.min_lr_fraction,
                                            peak=tc.lr)
            tokens = 0
            for micro in range(tc.grad_accum):
                slices, parts = length_slices(data, next(batches), cfg.data.length_split), []
                for k, rows in enumerate(slices):
                    batch, features = data.tensors(rows, device, static_length(data, rows, model.config.block_size)
                                                   if tc.compile else 0)
                    # masks and process dropout of their own for each micro-batch, slice and rank (with
                    # grad_accum 1 and one slice, the seeds of earlier versions: their checkpoints resume exactly)
                    gen = torch.Generator().manual_seed((((tc.seed * 1_000_003 + state["step"]) * tc.grad_accum + micro)
                                                         * world + rank) * len(slices) + k)
                    # one backward for all slices: only the last forward goes through DDP (see `losses`)
                    parts.append(losses(step_model, batch, data, tc.mask_rate, gen, autocast,
                                        ddp if k == len(slices) - 1 else None, tc.process_dropout, features, density,
                                        masked=tc.weight_masked > 0, group=tc.weight_type > 0))
                    tokens += int((batch != data.vocab.pad).sum())
                terms = combined(parts)
                loss_next, loss_masked, loss_density = terms[:3]
                (weighted_loss(terms, tc) / tc.grad_accum).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if average is not None:
                average.update(state["step"])
            if device.type == "cuda":
                torch.cuda.synchronize()
            state["step"] += 1
            state["tokens"] += tokens * world  # ranks see equal shares on average
            state["seconds"] += time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(next=f"{loss_next.item():.3f}", masked=f"{loss_masked.item():.3f}",
                            **({"density": f"{loss_density.item():.3f}"} if density else {}),
                            tok_s=f"{state['tokens'] / max(state['seconds'], 1e-9):,.0f}")
            window = state["window"]
            for i, value in enumerate((loss_next, loss_masked, loss_density)):
                window[i] += value.item()
            window[3] += 1
            if state["step"] % max(1, tc.eval_every // 10) == 0 or state["step"] == tc.max_steps:
                state["curve"].append([state["step"], *(w / window[3] for w in window[:2 + density])])
                state["window"] = [0.0, 0.0, 0.0, 0]
            if state["step"] % tc.eval_every == 0 or state["step"] == tc.max_steps:
                # eager: evaluations are rare, and a compiled no-grad variant would compile again
                metrics = evaluate(model, val_data, val_idx, tc, device, autocast)
                if average is not None:  # val_*: the weights the run saves; raw_val_*: the last step's
                    with average.applied():
                        metrics = {**evaluate(model, val_data, val_idx, tc, device, autocast),
                                   **{f"raw_{k}": v for k, v in metrics.items()}}
                train = dict(zip(("train_loss_next", "train_loss_masked", "train_loss_density"), state["curve"][-1][1:]))
                state["history"].append({"step": state["step"], **train, **metrics})
                if rank == 0:  # also under --quiet: a batch job's log shows where the run is
                    log.info("step %d/%d: validation loss next %.4f, masked %.4f%s; %s tokens/s", state["step"],
                             tc.max_steps, metrics["val_loss_next"], metrics["val_loss_masked"],
                             f", density {metrics['val_loss_density']:.4f}" if density else "",
                             f"{state['tokens'] / max(state['seconds'], 1e-9):,.0f}")
                run.save()
                if rank == 0 and tc.keep_checkpoints:
                    shutil.copytree(out / "checkpoint", out / f"checkpoint_step{state['step']}", dirs_exist_ok=True)
            run.stop_point()
    bar.close()
    last = state["history"][-1]
    result = {"val_loss_next": last["val_loss_next"], "val_loss_masked": last["val_loss_masked"],
              **({"val_loss_density": last["val_loss_density"]} if density else {}),
              "val_perplexity_next": last["val_perplexity_next"],
              "val_perplexity_masked": last["val_perplexity_masked"],
              "tokens_per_s": state["tokens"] / max(state["seconds"], 1e-9), "steps": state["step"],
              "parameters": model.num_params(), "device": str(device), "processes": world,
              "history": state["history"], "curve": state["curve"]}
    if average is not None:  # the checkpoint (written) keeps the raw weights, to resume from
        average.copy_to_model()
    if rank == 0:
        save_backbone(model, data, cfg, out, {"metrics": {k: v for k, v in result.items()
                                                          if k not in ("history", "curve")}})
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
        plot_losses(result, out / "loss_curves.png")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(
        "python -m backbone.pretrain", "Pretrain the backbone on a token store with next-token and masked-token "
        "prediction; any config key can be overridden, e.g. --train.max_steps=1000 --model.n_layer=4",
        "configs/backbone/event.yaml")
    args, overrides = parser.parse_known_args(argv)
    cfg = load_config(PretrainConfig, args.config, overrides)
    check_output_folder(Path(cfg.out), [p for p in (cfg.data.train, cfg.data.val) if p], "backbone folder")
    result = run(cfg, resume=args.resume, progress=not args.quiet)
    print(json.dumps({k: v for k, v in result.items() if k not in ("history", "curve")}, indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m backbone.pretrain")
