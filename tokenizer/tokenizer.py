"""`Tokenizer`: events to token ids and back, saved as a folder (config.json + model.safetensors)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import torch

from events.errors import EventDataError
from events.model import Events, ObjectType, make_objects
from tokenizer.config import ModelConfig
from tokenizer.features import TYPES, FeatureTransform, event_chunks, flat_objects, in_frame
from tokenizer.model import ObjectVQVAE

FORMAT_VERSION = 1
#: flags of events the tokens cannot represent whole (a bit word per event, see `Tokenizer.representable`)
FLAG_TRUNCATED = 1  # objects lost to the multiplicity caps
FLAG_UNKNOWN_TYPES = 2  # objects of types the tokenizer has no codes for, left out
FLAG_NO_OBJECTS = 4  # no objects left: scores that need one are undefined (NaN)
FLAG_BAD_KINEMATICS = 8  # impossible values forced into range when read (--bad-kinematics flag)
FLAGS = {FLAG_TRUNCATED: "objects beyond the caps", FLAG_UNKNOWN_TYPES: "object types unknown to the tokenizer",
         FLAG_NO_OBJECTS: "no objects", FLAG_BAD_KINEMATICS: "physically impossible values, repaired"}
#: types whose decoded features are fixed by definition rather than learnt
_NO_ETA_MASS = (ObjectType.MET,)
_NEUTRAL = (ObjectType.JET, ObjectType.BJET, ObjectType.PHOTON, ObjectType.MET)


@dataclass
class TokenBatch:
    """Token ids per event, aligned with the events' objects, with the events' info carried along."""

    ids: ak.Array  # (n_events, var) int32, codes in [0, vocab_size)
    info: dict[str, np.ndarray]
    process_names: tuple[str, ...] = ()
    #: (n_events, var, n_features) float32: each object's normalized input features (the hybrid
    #: backbone's continuous input), where asked for
    features: ak.Array | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def head(self, n: int) -> "TokenBatch":
        """The first `n` events."""
        return TokenBatch(self.ids[:n], {k: v[:n] for k, v in self.info.items()}, self.process_names,
                          None if self.features is None else self.features[:n])


class Tokenizer:
    """A trained VQ-VAE with its feature normalization.

    `encode(events) -> TokenBatch`, `decode(tokens) -> Events`; the object type is exact by construction.
    """

    def __init__(self, model: ObjectVQVAE, transform: FeatureTransform, extra: dict | None = None):
        self.model = model.eval()
        self.transform = transform
        self.extra = extra or {}
        self.source: Path | None = None  # the folder it was loaded from or saved to

    @property
    def mode(self) -> str:
        return self.model.config.mode

    @property
    def fingerprint(self) -> str | None:
        """A hash of the weights and feature definitions (None for an unsaved or old tokenizer)."""
        return self.extra.get("fingerprint")

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> "Tokenizer":
        self.model.to(device)
        return self

    def check(self, events: Events, source: str = "events") -> None:
        """Raise EventDataError if the events hold non-finite values or object types this tokenizer has
        no codes for."""
        events.validate(source)
        types = np.unique(ak.to_numpy(ak.flatten(events.objects["type"])))
        unknown = [ObjectType(int(t)).name for t in types if int(t) not in self.model.types]
        if unknown:
            raise EventDataError(f"{source}: object type(s) {', '.join(unknown)} unknown to this {self.mode}-mode "
                                 f"tokenizer (it knows {', '.join(ObjectType(t).name for t in self.model.types)})")
        if self.model.config.quantizer != "vq":
            raise EventDataError("this model is the quantization-free autoencoder: it has no tokens")

    def representable(self, events: Events) -> tuple[Events, np.ndarray]:
        """(the events with only the object types this tokenizer knows, a flag word per event: FLAGS)."""
        known = np.isin(ak.to_numpy(ak.flatten(events.objects["type"])), list(self.model.types))
        keep = ak.unflatten(known, ak.to_numpy(ak.num(events.objects)))
        flags = np.where(events.info["n_truncated"] > 0, FLAG_TRUNCATED, 0)
        flags |= np.where(ak.to_numpy(ak.all(keep, axis=1)), 0, FLAG_UNKNOWN_TYPES)
        kept = Events(events.objects[keep], events.info, events.process_names)
        flags |= np.where(ak.to_numpy(ak.num(kept.objects)) == 0, FLAG_NO_OBJECTS, 0)
        if "bad_kinematics" in events.info:
            flags |= np.where(events.info["bad_kinematics"] > 0, FLAG_BAD_KINEMATICS, 0)
        return kept, flags.astype(np.int32)

    def encode(self, events: Events, batch_size: int = 65536, source: str = "events",
               features: bool = False) -> TokenBatch:
        """Token ids of every object, in the events' order (with each object's normalized features if
        `features`); `source` names the input in errors."""
        return self._encode(events, batch_size, source, residuals=False, features=features)[0]

    def encode_with_residuals(self, events: Events, batch_size: int = 65536, source: str = "events",
                              features: bool = False) -> tuple[TokenBatch, ak.Array]:
        """(tokens, per-object residual): the mean squared difference, in the normalized feature space,
        between each object and what its token decodes to. Objects unlike any the tokenizer was trained
        on get ordinary tokens but large residuals: the only place a token model can see them."""
        return self._encode(events, batch_size, source, residuals=True, features=features)

    @torch.no_grad()
    def code_features(self) -> np.ndarray:
        """(vocab_size, n_features): what each code decodes to in the normalized feature space; the
        hybrid backbone's continuous input for tokens it generates itself."""
        ids = torch.arange(self.vocab_size, device=self.device)
        return self.model.decode(*self.model.latents_of_ids(ids))[0].float().cpu().numpy()

    @torch.no_grad()
    def code_types(self) -> np.ndarray:
        """(vocab_size,) the object type of each code."""
        return self.model.types_of_ids(torch.arange(self.vocab_size, device=self.device)).cpu().numpy()

    def to_frame(self, events: Events) -> tuple[Events, dict[str, np.ndarray]]:
        """(the events as this tokenizer encodes them, info to add: the angle each was turned by)."""
        events, angle = in_frame(events, self.model.config.azimuth)
        return events, ({} if angle is None else {"azimuth": angle.astype(np.float32)})

    def from_frame(self, events: Events) -> Events:
        """Decoded events turned back by the angle of their info (`azimuth`), which is then dropped; events
        without one (generated, unless the sampler draws it) stay with their leading jet at phi = 0."""
        if self.model.config.azimuth == "absolute" or "azimuth" not in events.info:
            return events
        from events.azimuth import rotate_azimuth

        info = dict(events.info)
        angle = info.pop("azimuth")
        return rotate_azimuth(Events(events.objects, info, events.process_names), -angle)

    @torch.no_grad()
    def _encode(self, events: Events, batch_size: int, source: str, residuals: bool, features: bool = False):
        self.check(events, source)
        events, turned = self.to_frame(events)
        obj = flat_objects(events.objects)
        x = self.transform.transform(obj)
        ids = np.empty(len(x), dtype=np.int32)
        res = np.empty(len(x), dtype=np.float32) if residuals else None
        dev = self.device
        for sl, counts in _object_slices(obj["counts"], batch_size):
            types = torch.from_numpy(obj["type"][sl].astype(np.int64)).to(dev)
            xs = torch.from_numpy(x[sl]).to(dev)
            z = self.model.encode_latent(xs, torch.from_numpy(obj["charge"][sl]).to(dev), types,
                                         torch.from_numpy(counts).to(dev))
            zq, sl_ids, _ = self.model.quantize(z, types)
            ids[sl] = sl_ids.cpu()
            if residuals:
                res[sl] = ((self.model.decode(zq, types)[0].float() - xs) ** 2).mean(1).cpu()
        tokens = TokenBatch(ak.unflatten(ids, obj["counts"]), {**events.info, **turned}, events.process_names,
                            ak.unflatten(x.astype(np.float32), obj["counts"]) if features else None)
        return tokens, (ak.unflatten(res, obj["counts"]) if residuals else None)

    @torch.no_grad()
    def decode(self, tokens: TokenBatch, batch_size: int = 65536) -> Events:
        """Events rebuilt from token ids: type from the id range, charge from the decoder, kinematics
        from the objects' normalized features where the batch carries them (drawn by a density head),
        else from the decoder (each code's centroid)."""
        flat = ak.to_numpy(ak.flatten(tokens.ids)).astype(np.int64)
        if len(flat) and (flat.min() < 0 or flat.max() >= self.vocab_size):
            bad = flat[(flat < 0) | (flat >= self.vocab_size)][0]
            raise EventDataError(f"token id {bad} outside this tokenizer's codes [0, {self.vocab_size})")
        counts = ak.to_numpy(ak.num(tokens.ids))
        feats = np.empty((len(flat), len(self.transform.names)), dtype=np.float32)
        charge = np.empty(len(flat), dtype=np.int8)
        types = np.empty(len(flat), dtype=np.int8)
        dev = self.device
        for s in range(0, len(flat), batch_size):
            ids = torch.from_numpy(flat[s:s + batch_size]).to(dev)
            zq, t = self.model.latents_of_ids(ids)
            f, q = self.model.decode(zq, t)
            feats[s:s + len(ids)] = f.float().cpu().numpy()
            charge[s:s + len(ids)] = (q.argmax(dim=1) - 1).cpu().numpy()
            types[s:s + len(ids)] = t.cpu().numpy()
        if tokens.features is not None:
            feats = ak.to_numpy(ak.flatten(tokens.features, axis=1)).astype(np.float32).reshape(
                len(flat), len(self.transform.names))
        return self.from_frame(_events(self.transform.inverse(feats), charge, types, counts, tokens.info,
                                       tokens.process_names))

    def round_trip(self, events: Events) -> Events:
        """decode(encode(events)); for the quantization-free autoencoder, its reconstruction."""
        if self.model.config.quantizer == "vq":
            return self.decode(self.encode(events))
        return reconstruct_without_quantizer(self, events)

    def save_pretrained(self, path: str | Path) -> None:
        """Write config.json and model.safetensors into folder `path` (atomically per file)."""
        from common.pretrained import check_save_folder, write_config, write_weights

        check_save_folder(path, "colliderfm.tokenizer")
        config = {"format": "colliderfm.tokenizer", "version": FORMAT_VERSION, "model": asdict(self.model.config),
                  "types": self.model.types, "codes_per_type": {str(k): v for k, v in self.model.codes_per_type.items()},
                  "n_features": self.model.n_features, "features": self.transform.to_dict(),
                  "vocab_size": self.vocab_size,
                  **{k: v for k, v in self.extra.items() if k not in ("weights_sha256", "fingerprint")}}
        config["weights_sha256"] = write_weights(path, self.model)
        # what tokens mean: the weights and the feature definitions; a backbone records it to refuse
        # another tokenizer with the same number of codes
        config["fingerprint"] = hashlib.sha256(json.dumps(
            [config["weights_sha256"], config["features"], config["model"], config["types"]], sort_keys=True
        ).encode()).hexdigest()
        self.extra.update(weights_sha256=config["weights_sha256"], fingerprint=config["fingerprint"])
        write_config(path, config)
        self.source = Path(path)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "Tokenizer":
        """Load a folder written by `save_pretrained`, or a bundled model's tokenizer by name (`event-small`)."""
        from common.pretrained import load_weights, model_folder, read_config

        path = model_folder(path, "tokenizer")
        config = read_config(path, "colliderfm.tokenizer", "tokenizer")
        model = build_model(ModelConfig(**config["model"]), config["n_features"], config["types"],
                            {int(k): v for k, v in config["codes_per_type"].items()}, {})
        load_weights(model, path, device, config)
        extra = {k: v for k, v in config.items() if k not in ("format", "version", "model", "types", "codes_per_type",
                                                             "n_features", "features", "vocab_size")}
        tokenizer = cls(model, FeatureTransform.from_dict(config["features"]), extra)
        tokenizer.source = Path(path)
        return tokenizer


def build_model(config: ModelConfig, n_features: int, types: list[int], codes_per_type: dict[int, int],
                thresholds: dict[int, float]) -> ObjectVQVAE:
    """The model for a config; `thresholds` may be empty when loading (they only act in training)."""
    thresholds = {t: thresholds.get(t, 0.0) for t in types}
    return ObjectVQVAE(config, n_features, types, codes_per_type, thresholds)


@torch.no_grad()
def reconstruct_without_quantizer(tok: Tokenizer, events: Events) -> Events:
    """Round trip through the quantization-free autoencoder (the discretization-free reference)."""
    events, turned = tok.to_frame(events)
    obj = flat_objects(events.objects)
    dev = tok.device
    x = tok.transform.transform(obj)
    feats = np.empty_like(x)
    charge = np.empty(len(x), dtype=np.int8)
    for sl, counts in _object_slices(obj["counts"], 65536):
        out = tok.model(torch.from_numpy(x[sl]).to(dev), torch.from_numpy(obj["charge"][sl]).to(dev),
                        torch.from_numpy(obj["type"][sl].astype(np.int64)).to(dev), torch.from_numpy(counts).to(dev))
        feats[sl] = out["features"].float().cpu().numpy()
        charge[sl] = (out["charge_logits"].argmax(dim=1) - 1).cpu().numpy()
    return tok.from_frame(_events(tok.transform.inverse(feats), charge, obj["type"], obj["counts"],
                                  {**events.info, **turned}, events.process_names))


def _object_slices(counts: np.ndarray, batch_size: int):
    """(object slice, object counts of its events) over whole events, about `batch_size` objects each."""
    starts = np.concatenate([[0], np.cumsum(counts)])
    for e0, e1 in event_chunks(counts, batch_size):
        yield slice(int(starts[e0]), int(starts[e1])), counts[e0:e1]


def _events(kin: dict[str, np.ndarray], charge: np.ndarray, types: np.ndarray, counts: np.ndarray,
            info: dict, process_names) -> Events:
    """Decoded objects as Events, with the features fixed by definition set exactly (MET eta and mass,
    neutral charges, b-tag of non-jets)."""
    fixed = np.isin(types, _NO_ETA_MASS)
    kin["eta"][fixed] = 0.0
    kin["mass"][fixed] = 0.0
    charge = np.where(np.isin(types, _NEUTRAL), 0, charge)
    kin["btag"][~np.isin(types, (ObjectType.JET, ObjectType.BJET))] = 0.0
    return Events(make_objects(counts, type=types, charge=charge, **kin), dict(info), process_names)


def types_for_mode(mode: str) -> list[int]:
    return [int(t) for t in TYPES[mode]]
