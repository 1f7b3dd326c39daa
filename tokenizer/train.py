"""python -m tokenizer.train: train the VQ-VAE tokenizer, evaluate it, save it.

Writes into the run folder: the tokenizer (config.json + model.safetensors), checkpoint/ (exact
resume with --resume), metrics.json (codebook usage, perplexity, resolution per feature, the same for
the quantization-free autoencoder, information loss), and plots.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import awkward as ak
import numpy as np
import torch

from common.cli import UserError, check_output_folder, run_cli, training_parser
from common.config import load_config, to_dict
from common.runtime import resolve_device
from events.model import Events
from tokenizer.config import ModelConfig, TokenizerTrainConfig, TrainConfig
from tokenizer.features import FeatureTransform, event_chunks, flat_objects, in_frame
from tokenizer.model import split_codebook
from tokenizer.tokenizer import Tokenizer, build_model, types_for_mode

log = logging.getLogger(__name__)


def load_events(cfg: TokenizerTrainConfig) -> Events:
    from events.io import iter_events

    if not cfg.data.files:
        raise UserError("no input files: set data.files in the config or pass --data.files='[a.h5, b.h5]'")
    parts = []
    for path in cfg.data.files:
        n = 0
        for chunk in iter_events(path, cfg.data.format, caps=cfg.data.caps, options=cfg.data.read):
            if cfg.data.max_events_per_file:
                chunk = chunk[: cfg.data.max_events_per_file - n]
            parts.append(chunk)
            n += len(chunk)
            if cfg.data.max_events_per_file and n >= cfg.data.max_events_per_file:
                break
    return Events.concatenate(parts)


def split(events: Events, val_fraction: float, seed: int) -> tuple[Events, Events]:
    """Train/validation split by event, order kept within each."""
    is_val = np.random.default_rng([seed, 7]).random(len(events)) < val_fraction
    return events[~is_val], events[is_val]


class ObjectData:
    """Flat object tensors of a split, on the training device, with their events' object counts."""

    def __init__(self, events: Events, transform: FeatureTransform, device: torch.device):
        obj = flat_objects(events.objects)
        self.device = device
        self.x = torch.from_numpy(transform.transform(obj)).to(device)
        self.charge = torch.from_numpy(obj["charge"].astype(np.int64)).to(device)
        self.types = torch.from_numpy(obj["type"].astype(np.int64)).to(device)
        self.counts = obj["counts"]
        self.starts = np.cumsum(self.counts) - self.counts

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, index, counts=None) -> tuple:
        return self.x[index], self.charge[index], self.types[index], counts

    def events(self, events: np.ndarray):
        """(object index, counts) of the given events, their objects in order."""
        counts = self.counts[events]
        index = np.repeat(self.starts[events] - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        return torch.from_numpy(index).to(self.device), torch.from_numpy(counts).to(self.device)

    def in_event_chunks(self, batch_size: int):
        """Whole events in file order, about `batch_size` objects at a time: (index, counts)."""
        for start, stop in event_chunks(self.counts, batch_size):
            yield self.events(np.arange(start, stop))

    def shuffled(self, rng: np.random.Generator, batch_size: int, by_event: bool):
        """One epoch of training batches: objects (or whole events, for the set encoder) in random order."""
        if not by_event:
            order = torch.from_numpy(rng.permutation(len(self))).to(self.device)
            for i in range(max(len(self) // batch_size, 1)):
                yield order[i * batch_size:(i + 1) * batch_size], None
            return
        order = rng.permutation(len(self.counts))
        for start, stop in event_chunks(self.counts[order], batch_size):
            yield self.events(order[start:stop])


def loss_terms(model, x, charge, types, counts=None) -> dict[str, torch.Tensor]:
    out = model(x, charge, types, counts)
    recon = torch.nn.functional.mse_loss(out["features"], x)
    charge_ce = torch.nn.functional.cross_entropy(out["charge_logits"], charge + 1)
    return {"loss": recon + charge_ce + out["commit_loss"], "recon": recon, "charge": charge_ce,
            "commit": out["commit_loss"]}


@torch.no_grad()
def evaluate(model, data: ObjectData, batch_size: int) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    for index, counts in data.in_event_chunks(batch_size):
        terms = loss_terms(model, *data.batch(index, counts))
        n = len(index)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
    model.train()
    return {k: v / max(len(data), 1) for k, v in sums.items()}


def make_model(model_cfg: ModelConfig, train_cfg: TrainConfig, transform: FeatureTransform, train: ObjectData):
    types = types_for_mode(model_cfg.mode)
    counts = {t: max(int((train.types == t).sum()), 1) for t in types}
    codes = split_codebook(counts, model_cfg.codebook_size, model_cfg.min_codes_per_type)
    total = sum(counts.values())
    # EMA hits per code per batch that a code of type t gets on average; dead below a fraction of it
    thresholds = {t: model_cfg.dead_code_fraction * train_cfg.batch_size * counts[t] / total / codes[t]
                  for t in types}
    return build_model(model_cfg, len(transform.names), types, codes, thresholds)


@torch.no_grad()
def init_codebooks(model, data: ObjectData, seed: int) -> None:
    """k-means-initialize each type's codebook on a large sample of its latents (not on one small
    batch, which would draw duplicate codes when it holds fewer vectors than codes)."""
    if not model.quantizers:
        return
    gen = torch.Generator().manual_seed(seed)
    z = torch.cat([model.encode_latent(*data.batch(index, counts)) for index, counts in data.in_event_chunks(65536)])
    for t in model.types:
        index = torch.nonzero(data.types.cpu() == t).flatten()
        if not len(index):
            continue
        pick = torch.randperm(len(index), generator=gen, device="cpu")[: 20 * model.codes_per_type[t]]
        index = index[pick].to(data.x.device)
        model.quantizers[str(t)](z[index])


def train_model(cfg: TokenizerTrainConfig, model_cfg: ModelConfig, train_events: Events, val_events: Events,
                folder: Path, resume: bool = False, progress: bool = True, max_epochs: int | None = None):
    """Train one model (VQ-VAE or plain autoencoder); returns (Tokenizer with the best weights, history)."""
    from tqdm import tqdm

    from common.schedule import warmup_cosine
    from common.training import TrainingRun, param_groups

    tc = cfg.train
    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    train_events, val_events = (in_frame(e, model_cfg.azimuth)[0] for e in (train_events, val_events))
    transform = FeatureTransform.fit(model_cfg.mode, flat_objects(train_events.objects))
    train, val = ObjectData(train_events, transform, device), ObjectData(val_events, transform, device)
    if len(train) < 2:
        raise UserError("too few training objects")
    with torch.device(device):  # made where it trains
        model = make_model(model_cfg, tc, transform, train)
    optimizer = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=tc.lr)
    steps_per_epoch = max(len(train) // tc.batch_size, 1)
    total_steps = steps_per_epoch * tc.epochs
    # batch_in_epoch, seconds and objects: where in the epoch a run stopped by a signal resumes
    state = {"epoch": 0, "step": 0, "best_loss": float("inf"), "bad_evaluations": 0, "history": [],
             "batch_in_epoch": 0, "seconds": 0.0, "objects": 0}
    run = TrainingRun(folder / "checkpoint", model, optimizer, state)
    if not (resume and run.resume()):
        init_codebooks(model, train, tc.seed)
    model.train()
    last_epoch = tc.epochs if max_epochs is None else min(tc.epochs, max_epochs)
    with run:
        while state["epoch"] < last_epoch and state["bad_evaluations"] < tc.patience:
            epoch = state["epoch"]
            batches = train.shuffled(np.random.default_rng([tc.seed, epoch]), tc.batch_size,
                                     by_event=model_cfg.encoder == "transformer")
            bar = tqdm(run.epoch(batches), total=steps_per_epoch, initial=state["batch_in_epoch"], unit="step",
                       desc=f"{folder.name} epoch {epoch + 1}/{tc.epochs}", disable=not progress, leave=False)
            start, loss = time.perf_counter(), None
            for index, counts in bar:
                for group in optimizer.param_groups:
                    # short runs must not spend themselves warming up: at most a tenth of the steps
                    group["lr"] = warmup_cosine(state["step"], total_steps, tc.warmup_steps, 0.05,
                                                warmup_cap=total_steps // 10, peak=tc.lr)
                terms = loss_terms(model, *train.batch(index, counts))
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                state["step"] += 1
                state["objects"] += len(index)
                loss = terms["loss"].detach()  # read on the host only when shown or saved: no sync per step
                if state["step"] % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.4f}")
                if run.stop_requested():
                    state["seconds"] += time.perf_counter() - start
                    state["train_loss"] = loss.item()
                    run.stop()
            state["seconds"] += time.perf_counter() - start
            if loss is not None:
                state["train_loss"] = loss.item()
            val_terms = evaluate(model, val, tc.batch_size)
            rate = state["objects"] / max(state["seconds"], 1e-9)
            state["history"].append({"epoch": epoch + 1, "step": state["step"],
                                     **{f"val_{k}": v for k, v in val_terms.items()},
                                     "train_loss": state["train_loss"], "objects_per_s": rate})
            state.update(seconds=0.0, objects=0)
            if progress:
                log.info("%s epoch %d: val loss %.5f (recon %.5f, commit %.5f); %s objects/s", folder.name, epoch + 1,
                         val_terms["loss"], val_terms["recon"], val_terms["commit"], f"{rate:,.0f}")
            run.evaluated(val_terms["loss"])
    run.restore_best()
    extra = {"training": {"epochs": state["epoch"], "steps": state["step"], "best_val_loss": state["best_loss"]}}
    return Tokenizer(model, transform, extra), state["history"]


def run(cfg: TokenizerTrainConfig, resume: bool = False, progress: bool = True, max_epochs: int | None = None) -> dict:
    """Train, evaluate and save; returns the metrics written to metrics.json."""
    from tokenizer.information import information_loss
    from tokenizer.metrics import codebook_usage, resolution
    from common.provenance import record_run
    from tokenizer.plots import plot_tokenizer

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    record_run(out, to_dict(cfg), cfg.train.seed, str(resolve_device(cfg.train.device)))
    events = load_events(cfg)
    train_events, val_events = split(events, cfg.data.val_fraction, cfg.train.seed)
    tokenizer, history = train_model(cfg, cfg.model, train_events, val_events, out, resume, progress, max_epochs)
    tokenizer.save_pretrained(out)
    tokens = tokenizer.encode(val_events)
    ids = ak.to_numpy(ak.flatten(tokens.ids))
    decoded = tokenizer.decode(tokens)
    metrics = {"objects": {"train": train_events.n_objects, "val": val_events.n_objects},
               **codebook_usage(ids, tokenizer.vocab_size), **resolution(val_events, decoded),
               "per_type_usage": per_type_usage(tokenizer, ids), "history": history}
    reference = None
    if cfg.compare_autoencoder:
        ae_cfg = replace(cfg.model, quantizer="none")
        ae, ae_history = train_model(cfg, ae_cfg, train_events, val_events, out / "autoencoder", resume, progress,
                                     max_epochs)
        reference = ae.round_trip(val_events)
        metrics["autoencoder"] = {**resolution(val_events, reference), "history": ae_history}
    if cfg.information_loss:
        metrics["information_loss"] = information_loss(val_events, decoded, reference, cfg.train.seed)
    plot_tokenizer(val_events, decoded, ids, tokenizer, out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def per_type_usage(tokenizer: Tokenizer, ids: np.ndarray) -> dict[str, dict]:
    from events.model import ObjectType
    from tokenizer.metrics import codebook_usage

    out = {}
    for t in tokenizer.model.types:
        lo, n = tokenizer.model.offsets[t], tokenizer.model.codes_per_type[t]
        sel = ids[(ids >= lo) & (ids < lo + n)] - lo
        out[ObjectType(t).name.lower()] = {**codebook_usage(sel, n), "objects": int(len(sel))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(
        "python -m tokenizer.train", "Train the VQ-VAE tokenizer on event files; any config key can be overridden, "
        "e.g. --train.epochs=5 --model.codebook_size=4096 --data.files='[a.h5, b.h5]'", "configs/tokenizer/event.yaml")
    args, overrides = parser.parse_known_args(argv)
    cfg = load_config(TokenizerTrainConfig, args.config, overrides)
    check_output_folder(Path(cfg.out), cfg.data.files, "tokenizer folder")
    metrics = run(cfg, resume=args.resume, progress=not args.quiet)
    keys = ("codebook_size", "codebook_usage", "perplexity", "pt_rel_resolution", "eta_resolution", "phi_resolution",
            "type_accuracy", "charge_agreement", "btag_resolution")
    print(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=2))
    if "autoencoder" in metrics:
        print("quantization-free autoencoder:",
              json.dumps({k: metrics["autoencoder"][k] for k in keys if k in metrics["autoencoder"]}))
    if "information_loss" in metrics:
        print("information loss:", json.dumps(metrics["information_loss"]))
    print(f"tokenizer saved to {cfg.out}")
    return 0


if __name__ == "__main__":
    run_cli(main, "python -m tokenizer.train")
