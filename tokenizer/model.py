"""The VQ-VAE: per-object MLP encoder -> one VectorQuantize per object type -> MLP decoder.

The codebook of `codebook_size` codes is split into one contiguous range per object type (sizes in
proportion to the square root of each type's frequency in the training data), so a token id tells
the object type exactly: the type survives every round trip by construction, and rare types (photons)
keep codes of their own instead of being absorbed by jets.
"""
from __future__ import annotations

import torch
from torch import nn

from tokenizer.config import ModelConfig

N_CHARGES = 3  # -1, 0, +1


def mlp(n_in: int, hidden: int, n_out: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.GELU()]
    layers.append(nn.Linear(hidden, n_out))
    return nn.Sequential(*layers)


def split_codebook(counts: dict[int, int], total: int, minimum: int) -> dict[int, int]:
    """Codes per type in proportion to sqrt(count), at least `minimum` each, summing to `total`."""
    types = sorted(counts)
    weights = {t: counts[t] ** 0.5 for t in types}
    free = total - minimum * len(types)
    if free < 0:
        raise ValueError(f"codebook of {total} cannot give {minimum} codes to each of {len(types)} types")
    sizes = {t: minimum + int(free * weights[t] / sum(weights.values())) for t in types}
    sizes[max(types, key=lambda t: counts[t])] += total - sum(sizes.values())
    return sizes


class ObjectVQVAE(nn.Module):
    """Encode objects (n, n_features) + charge + type to token ids; decode ids back to features.

    Parameters
    ----------
    types : sequence of int
        The object types this model knows, in a fixed order (`ObjectType` values).
    codes_per_type : dict of int to int
        Size of each type's codebook range (ignored when `config.quantizer == "none"`).
    dead_code_thresholds : dict of int to float
        EMA hit count below which a code of that type is replaced.
    """

    def __init__(self, config: ModelConfig, n_features: int, types: list[int],
                 codes_per_type: dict[int, int], dead_code_thresholds: dict[int, float]):
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.config = config
        self.types = list(types)
        self.n_features = n_features
        self.codes_per_type = {int(t): int(n) for t, n in codes_per_type.items()}
        offsets, start = {}, 0
        for t in self.types:
            offsets[t] = start
            start += self.codes_per_type.get(t, 0)
        self.offsets = offsets
        self.vocab_size = start
        n_in = n_features + N_CHARGES + len(self.types)
        if config.encoder == "mlp":
            self.encoder = mlp(n_in, config.hidden, config.latent_dim, config.depth)
        else:
            layer = nn.TransformerEncoderLayer(config.hidden, config.heads, 2 * config.hidden, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.ModuleDict({"embed": nn.Linear(n_in, config.hidden),
                                          "blocks": nn.TransformerEncoder(layer, config.depth,
                                                                          enable_nested_tensor=False),
                                          "out": nn.Linear(config.hidden, config.latent_dim)})
        self.decoder = mlp(config.latent_dim + len(self.types), config.hidden, n_features + N_CHARGES, config.depth)
        self.quantizers = nn.ModuleDict()
        if config.quantizer == "vq":
            for t in self.types:
                self.quantizers[str(t)] = VectorQuantize(
                    dim=config.latent_dim, codebook_size=self.codes_per_type[t], codebook_dim=config.codebook_dim,
                    use_cosine_sim=config.use_cosine_sim, decay=config.decay, kmeans_init=True,
                    kmeans_iters=config.kmeans_iters, threshold_ema_dead_code=dead_code_thresholds[t],
                    commitment_weight=config.commitment_weight, rotation_trick=config.rotation_trick)
        # type value -> position in self.types, for one-hot inputs
        lookup = torch.full((max(self.types) + 1,), -1, dtype=torch.long)
        lookup[torch.tensor(self.types)] = torch.arange(len(self.types))
        self.register_buffer("type_index", lookup, persistent=False)

    def _onehot_type(self, types: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(self.type_index[types], len(self.types)).float()

    def encode_latent(self, x: torch.Tensor, charge: torch.Tensor, types: torch.Tensor,
                      counts: torch.Tensor | None = None) -> torch.Tensor:
        """(n, latent_dim) continuous latents of objects; the transformer encoder needs `counts`, the
        number of objects of each event, the objects being whole events in order."""
        q = nn.functional.one_hot(charge.long() + 1, N_CHARGES).float()
        inputs = torch.cat([x, q, self._onehot_type(types)], dim=1)
        if self.config.encoder == "mlp":
            return self.encoder(inputs)
        if counts is None:
            raise ValueError("the transformer encoder needs the objects per event (counts)")
        event = torch.repeat_interleave(torch.arange(len(counts), device=x.device), counts)
        position = torch.arange(len(x), device=x.device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        n_max = int(counts.max()) if len(counts) else 0
        h = inputs.new_zeros(len(counts), n_max, self.config.hidden)  # (events, objects, hidden)
        h[event, position] = self.encoder["embed"](inputs)
        pad = torch.arange(n_max, device=x.device)[None, :] >= counts[:, None]
        h = self.encoder["blocks"](h, src_key_padding_mask=pad)
        return self.encoder["out"](h[event, position])

    def quantize(self, z: torch.Tensor, types: torch.Tensor):
        """(quantized latents, global token ids, commitment loss); ids are -1 without a quantizer."""
        ids = torch.full((len(z),), -1, dtype=torch.long, device=z.device)
        if not self.quantizers:
            return z, ids, z.new_zeros(())
        zq = torch.empty_like(z)
        loss = z.new_zeros(())
        for t in self.types:
            sel = types == t
            if not sel.any():
                continue
            q, local, commit = self.quantizers[str(t)](z[sel])
            zq[sel] = q
            ids[sel] = local + self.offsets[t]
            loss = loss + commit.sum() * sel.float().mean()
        return zq, ids, loss

    def decode(self, zq: torch.Tensor, types: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (n, n_features), charge logits (n, 3))."""
        out = self.decoder(torch.cat([zq, self._onehot_type(types)], dim=1))
        return out[:, :self.n_features], out[:, self.n_features:]

    def forward(self, x: torch.Tensor, charge: torch.Tensor, types: torch.Tensor,
                counts: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        zq, ids, commit = self.quantize(self.encode_latent(x, charge, types, counts), types)
        features, charge_logits = self.decode(zq, types)
        return {"features": features, "charge_logits": charge_logits, "ids": ids, "commit_loss": commit}

    def types_of_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Object type of each global token id."""
        types = torch.full_like(ids, -1)
        for t in self.types:
            sel = (ids >= self.offsets[t]) & (ids < self.offsets[t] + self.codes_per_type[t])
            types[sel] = t
        return types

    def latents_of_ids(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(quantized latents, types) of global token ids."""
        types = self.types_of_ids(ids)
        zq = torch.zeros(len(ids), self.config.latent_dim, device=ids.device)
        for t in self.types:
            sel = types == t
            if sel.any():
                zq[sel] = self.quantizers[str(t)].get_output_from_indices(ids[sel] - self.offsets[t]).to(zq.dtype)
        return zq, types
