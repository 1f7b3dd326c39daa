"""The continuous density head: each object's features given its token and the event before it.

With it the backbone is a full density over events,

    p(event) = p(tokens) x prod_i p(x_i | token_i, tokens before i),

the tokens carrying the coarse shape and the head the kinematics within a code (tokens alone resolve
pt to about 10%, and an object far beyond the tokenizer's training range still lands on an ordinary
code). At the position that predicts object i's token, the head reads the final hidden state and the
embedding of the token actually there (teacher forcing; at sampling, the token just drawn) and outputs
a mixture of K components, each a diagonal Gaussian over the linear features and a von Mises over phi
(periodic: two normalized coordinates on a circle have no density in 2-D). The components are placed
relative to what the token decodes to (its code's centroid): the head learns the spread within a code
and how the context moves it, and even a barely trained head centres each object on its code, so that
an object far from every code (beyond the tokenizer's range) is far from its density.

Density coordinates z (`DENSITY_FEATURES`): the tokenizer's normalized features, with phi in radians
(event mode). Features fixed by an object's type (MET eta and mass, lepton and photon masses, the
b-tag of non-jets) are point masses, not densities: `MODELED` leaves them out per type. Log-densities
are reported in the stated space (log pt, eta, phi, log(1 + m), b-tag: the normalization's Jacobian
added) or in physical units (pt and m in GeV), never in the normalized coordinates, whose scale is the
tokenizer's choice.

Events of different multiplicities are compared through tail probabilities, not log-densities (a
log-density can be positive or negative per object, so it rewards or punishes a count, not an
oddity): `Mixture.log_tail` gives, per object, the probability that an object drawn from its
component lies at least as far out (chi-square tail of the Mahalanobis distance, von Mises as its
Gaussian limit), weighted by each component's posterior.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from events.model import GROUP_INDEX_OF_TYPE, ObjectType as T

DENSITY_FEATURES = {"event": ("log_pt", "eta", "phi", "log_mass", "btag"), "constituent": ("log_pt", "eta", "phi")}
#: the index of the periodic feature of each mode (constituent phi is relative to the jet axis: linear)
CIRCULAR = {"event": 2, "constituent": None}
#: the features each type has as a continuous quantity; the rest are fixed by the type
MODELED = {
    T.JET: ("log_pt", "eta", "phi", "log_mass", "btag"), T.BJET: ("log_pt", "eta", "phi", "log_mass", "btag"),
    T.ELECTRON: ("log_pt", "eta", "phi"), T.MUON: ("log_pt", "eta", "phi"), T.PHOTON: ("log_pt", "eta", "phi"),
    T.MET: ("log_pt", "phi"), T.CONSTITUENT: ("log_pt", "eta", "phi"),
}
LOG_SCALE = (-7.0, 1.0)  # Gaussian log-scales, in normalized units (a code spans far less than the population)
LOG_KAPPA = (-7.0, 8.0)  # von Mises log-concentrations (kappa = e^8: an angular width of 0.02 rad)
#: physical ranges drawn features are clamped to, at the very end of sampling (event mode; pt > 0 and
#: m >= 0 hold by construction): a detector's reach in eta, a b-tag score's range
CLAMP = {"eta": (-5.0, 5.0), "btag": (0.0, 1.0)}


def code_mask(mode: str, code_types: list[int], device=None) -> torch.Tensor:
    """(n_codes, D) 1.0 where code c's object type has feature d as a continuous quantity."""
    names = DENSITY_FEATURES[mode]
    return torch.tensor([[float(n in MODELED[T(t)]) for n in names] for t in code_types], device=device)


def code_group(code_types: list[int], device=None) -> torch.Tensor:
    """(n_codes,) the index in `GROUPS` of each code's object group."""
    return torch.tensor([GROUP_INDEX_OF_TYPE[T(t)] for t in code_types], dtype=torch.long, device=device)


def upper_log_pt(tokens: torch.Tensor, log_pt: torch.Tensor, group_of_code: torch.Tensor) -> torch.Tensor:
    """(B, T) the bound on each position's log pt (density coordinates) under the pt order: the log pt
    (`log_pt` (B, T)) of the position before it where both are objects of one group (`group_of_code`,
    `code_group`), else inf. `tokens` (B, T) are the objects' codes (anything else: ids >= n_codes or
    negative)."""
    n_codes = len(group_of_code)
    is_code = (tokens >= 0) & (tokens < n_codes)
    group = torch.where(is_code, group_of_code[tokens.clamp(0, n_codes - 1)], -1)
    same = is_code[:, 1:] & (group[:, 1:] == group[:, :-1])
    upper = torch.full_like(log_pt, float("inf"))
    upper[:, 1:] = torch.where(same, log_pt[:, :-1], upper[:, 1:])
    return upper


def _soft_clamp(x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * torch.sigmoid(x)


def log_chi2_sf(dof: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """log P[chi2_dof > r2], finite far into the tail (asymptotic series where the CDF rounds to 1)."""
    a, x = dof.double() / 2, r2.double().clamp(min=0) / 2
    return log_gamma_sf(a, x).to(r2.dtype)


def log_gamma_sf(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log of the regularized upper incomplete gamma Q(a, x), in float64, with the large-x asymptote
    log Q ~ (a - 1) log x - x - lgamma(a) + log(1 + (a - 1)/x + (a - 1)(a - 2)/x^2) where Q underflows."""
    a, x = torch.broadcast_tensors(a.double(), x.double())
    q = torch.special.gammaincc(a, x)
    safe_x = x.clamp(min=1.0)
    series = 1 + (a - 1) / safe_x + (a - 1) * (a - 2) / safe_x ** 2
    asym = (a - 1) * torch.log(safe_x) - safe_x - torch.lgamma(a) + torch.log(series.clamp(min=1e-300))
    return torch.where(q > 1e-280, torch.log(q.clamp(min=1e-300)), asym)


@dataclass
class Mixture:
    """A batch of N mixtures of K components over D features (D_lin linear, at most one circular)."""

    logits: torch.Tensor  # (N, K) component weights, unnormalized
    mu: torch.Tensor  # (N, K, D); at the circular feature, the mean angle
    log_scale: torch.Tensor  # (N, K, D); at the circular feature, log kappa
    circular: int | None
    #: (N,) where given, each object's log pt (feature 0) is bounded by it (the object before it in its
    #: group: the data's descending-pt order) and the density is the mixture truncated there (inf: none)
    upper: torch.Tensor | None = None

    def select(self, rows: torch.Tensor) -> "Mixture":
        """The mixtures of `rows` (a boolean mask or indices over N)."""
        return Mixture(self.logits[rows], self.mu[rows], self.log_scale[rows], self.circular,
                       None if self.upper is None else self.upper[rows])

    def _linear(self) -> torch.Tensor:
        lin = torch.ones(self.mu.shape[-1], dtype=torch.bool, device=self.mu.device)
        if self.circular is not None:
            lin[self.circular] = False
        return lin

    def component_terms(self, z: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-density of z under each component (N, K), its squared Mahalanobis distance (N, K)),
        over the features where `mask` (N, D) is 1."""
        lin = self._linear()
        dz = z[:, None, :] - self.mu  # (N, K, D)
        if self.circular is not None:
            c = self.circular
            dz[..., c] = torch.remainder(dz[..., c] + math.pi, 2 * math.pi) - math.pi
        scale = self.log_scale
        r2_lin = (dz * torch.exp(-scale)) ** 2
        logp_lin = -0.5 * r2_lin - scale - 0.5 * math.log(2 * math.pi)
        m = mask[:, None, :].to(z.dtype)
        logp = (logp_lin * (m * lin)).sum(-1)
        r2 = (r2_lin * (m * lin)).sum(-1)
        if self.circular is not None:
            c = self.circular
            kappa = torch.exp(scale[..., c])
            one_minus_cos = 1 - torch.cos(dz[..., c])
            # log I0(kappa) = kappa + log(i0e(kappa)): stable at large kappa
            logp_vm = -kappa * one_minus_cos - math.log(2 * math.pi) - torch.log(torch.special.i0e(kappa))
            on = mask[:, c:c + 1].to(z.dtype)  # (N, 1)
            logp = logp + logp_vm * on
            r2 = r2 + 2 * kappa * one_minus_cos * on
        return logp, r2

    def log_mass_below(self, upper: torch.Tensor) -> torch.Tensor:
        """(N, K) log of each component's mass with feature 0 (log pt, linear in every mode) at most
        `upper` (N,) (0 where inf), in float64: finite far into the tail."""
        return torch.special.log_ndtr(self._standardized(upper))

    def _standardized(self, upper: torch.Tensor) -> torch.Tensor:
        """(N, K) `upper` (N,) in each component's standard units of feature 0, in float64."""
        return (upper.double()[:, None] - self.mu[..., 0].double()) * torch.exp(-self.log_scale[..., 0].double())

    def log_prob(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N,) log-density of z in the coordinates the head works in (normalized linear features),
        normalized below `upper` where there is one. An object above its bound (input out of pt order;
        never in the data model's events) gets the untruncated density: finite, not -inf."""
        logp, _ = self.component_terms(z, mask)
        log_weights = torch.log_softmax(self.logits, -1)
        out = torch.logsumexp(log_weights + logp, -1)
        if self.upper is None:
            return out
        bounded = torch.isfinite(self.upper) & (z[:, 0] <= self.upper)
        # unbounded rows get a finite stand-in: an infinite bound has a NaN gradient through the scale
        upper = torch.where(bounded, self.upper, z[:, 0].detach())
        log_below = torch.logsumexp(log_weights.double() + self.log_mass_below(upper), -1).to(out.dtype)
        return out - torch.where(bounded, log_below, torch.zeros_like(log_below))

    def log_tail(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N,) log of each object's tail probability, in (-inf, 0]: about uniform on [0, 1] for
        objects drawn from the mixture, whatever the units, the dimension or the object's type."""
        logp, r2 = self.component_terms(z, mask)
        posterior = torch.log_softmax(torch.log_softmax(self.logits, -1) + logp, -1)
        dof = mask.sum(-1, keepdim=True).expand_as(r2)
        return torch.logsumexp(posterior + log_chi2_sf(dof, r2), -1)

    def mean(self, upper: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D) each mixture's mean: the components' means weighted by their weights, at the circular
        feature the direction of the weighted mean resultant (each component's length I1/I0(kappa)).
        With `upper` (N,), log pt is the mean of the mixture truncated there (inf: no bound)."""
        w = torch.softmax(self.logits.double(), -1)  # (N, K)
        mu = self.mu.double()
        out = (w[..., None] * mu).sum(1)
        if upper is not None:
            # a truncated normal's mean: mu - sigma phi(beta) / Phi(beta), components weighted by their mass below
            beta = self._standardized(upper)
            log_below = torch.special.log_ndtr(beta)
            tw = torch.softmax(torch.log(w) + log_below, -1)
            sigma = torch.exp(self.log_scale[..., 0].double())
            shift = torch.exp(-0.5 * beta ** 2 - 0.5 * math.log(2 * math.pi) - log_below)  # 0 where unbounded
            bounded = (tw * (mu[..., 0] - sigma * shift)).sum(-1)
            out[:, 0] = torch.where(torch.isfinite(upper), bounded, out[:, 0])
        if self.circular is not None:
            c = self.circular
            kappa = torch.exp(self.log_scale[..., c].double())
            length = w * torch.special.i1e(kappa) / torch.special.i0e(kappa)
            resultant = length[..., None] * torch.stack([torch.sin(mu[..., c]), torch.cos(mu[..., c])], -1)
            out[:, c] = torch.atan2(*resultant.sum(1).unbind(-1))
        return out.to(self.mu.dtype)

    def sample(self, generator: torch.Generator | None = None, upper: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D) one draw per mixture (every feature drawn; the caller keeps those it models). With
        `upper` (N,), feature 0 (log pt) is drawn from the mixture truncated to at most it (inf: no
        bound): components weighted by their mass below it, then an inverse-CDF draw below it."""
        log_weights = torch.log_softmax(self.logits, -1)
        if upper is not None:
            beta = self._standardized(upper)
            log_below = torch.special.log_ndtr(beta)  # (N, K), finite far into the tail
            log_weights = log_weights + log_below.to(log_weights.dtype)
        noise = torch.empty_like(self.logits).exponential_(generator=generator)
        comp = (log_weights - noise.log()).argmax(-1)  # exponential race: a draw
        rows = torch.arange(len(comp), device=comp.device)
        mu, scale = self.mu[rows, comp], self.log_scale[rows, comp]
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        if upper is not None:
            # u uniform below the bound's CDF: log u = log Phi(beta) + log U. Drawn even without a bound,
            # so that the random stream does not depend on which rows have one
            u = torch.rand(len(comp), generator=generator, device=mu.device, dtype=torch.float64)
            below = torch.special.ndtri(torch.exp(log_below[rows, comp] + torch.log(u)))
            # beyond float64's reach (beta < -37) the draw sits on the bound
            eps0 = torch.where(torch.isfinite(below), below, beta[rows, comp]).clamp(max=beta[rows, comp])
            eps[:, 0] = torch.where(torch.isfinite(upper), eps0.to(eps.dtype), eps[:, 0])
        z = mu + torch.exp(scale) * eps
        if upper is not None:  # float32 rounding may not overstep the bound either
            z[:, 0] = torch.minimum(z[:, 0], upper.to(z.dtype))
        if self.circular is not None:
            c = self.circular
            z[:, c] = von_mises(mu[:, c], torch.exp(scale[:, c]), generator)
        return z


def von_mises(mu: torch.Tensor, kappa: torch.Tensor, generator: torch.Generator | None,
              max_rounds: int = 24) -> torch.Tensor:
    """Draws from von Mises(mu, kappa) in [-pi, pi) (Best & Fisher 1979 rejection sampling, with the
    caller's generator, so that sampling is reproducible; after `max_rounds` rounds, 0.35^24 ~ 1e-11
    of the draws, the mean)."""
    kappa = kappa.clamp(min=1e-6).double()
    tau = 1 + torch.sqrt(1 + 4 * kappa ** 2)
    rho = (tau - torch.sqrt(2 * tau)) / (2 * kappa)
    r = (1 + rho ** 2) / (2 * rho)
    out = torch.zeros_like(kappa)
    todo = torch.ones_like(kappa, dtype=torch.bool)
    for _ in range(max_rounds):
        u = torch.rand((3, len(kappa)), generator=generator, device=kappa.device, dtype=kappa.dtype)
        zz = torch.cos(math.pi * u[0])
        f = (1 + r * zz) / (r + zz)
        c = kappa * (r - f)
        accept = todo & ((c * (2 - c) - u[1] > 0) | (torch.log(c / u[1]) + 1 - c >= 0))
        theta = torch.sign(u[2] - 0.5) * torch.acos(f.clamp(-1, 1))
        out = torch.where(accept, theta, out)
        todo &= ~accept
        # each round accepts at least 65%: on CUDA a fixed number of rounds spares the host sync
        # that asking would cost at every decoding step
        if kappa.device.type != "cuda" and not bool(todo.any()):
            break
    return (torch.remainder(out + mu.double() + math.pi, 2 * math.pi) - math.pi).to(mu.dtype)


class DensityHead(nn.Module):
    """(hidden state, token embedding) -> a `Mixture` over the object's density coordinates.

    Holds, as buffers saved with the weights, what it needs to turn the tokenizer's normalized features
    into its coordinates and back (the feature normalization) and which features each code's type has.
    """

    def __init__(self, n_embd: int, mode: str, n_codes: int, n_features: int, n_components: int = 8,
                 pt_order: bool = False):
        super().__init__()
        self.pt_order = pt_order
        self.mode = mode
        self.n_dims = len(DENSITY_FEATURES[mode])
        self.circular = CIRCULAR[mode]
        self.n_components = n_components
        self.net = nn.Sequential(nn.Linear(2 * n_embd, 2 * n_embd), nn.GELU(),
                                 nn.Linear(2 * n_embd, n_components * (1 + 2 * self.n_dims)))
        self.register_buffer("code_mask", torch.zeros(n_codes, self.n_dims))
        self.register_buffer("code_centroid", torch.zeros(n_codes, self.n_dims))
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        if pt_order:  # saved with the weights: the group of a code is the tokenizer's, not the config's
            self.register_buffer("code_group", torch.zeros(n_codes, dtype=torch.long))

    def set_tokenizer(self, code_types: list[int], mean, std, code_features=None) -> None:
        """What the tokenizer's codes and normalization mean (before training): each code's object
        type, the feature normalization, and what each code decodes to (n_codes, n_features), where
        the components are centred (zero: the population's mean)."""
        device = self.code_mask.device  # the model's: to_density mixes these with the buffers
        self.code_mask.copy_(code_mask(self.mode, code_types, device))
        if self.pt_order:
            self.code_group.copy_(code_group(code_types, device))
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32, device=device))
        self.feature_std.copy_(torch.as_tensor(std, dtype=torch.float32, device=device))
        if code_features is not None:
            centroids = torch.as_tensor(code_features, dtype=torch.float32, device=device)
            self.code_centroid.copy_(self.to_density(centroids))

    def forward(self, hidden: torch.Tensor, token_embedding: torch.Tensor, tokens: torch.Tensor) -> Mixture:
        """Mixtures for N objects from `hidden` (N, n_embd), their tokens (N,) and the tokens'
        embeddings (N, n_embd)."""
        out = self.net(torch.cat([hidden, token_embedding], -1)).float()
        k, d = self.n_components, self.n_dims
        logits, mu, raw_scale = out[:, :k], out[:, k:k + k * d], out[:, k + k * d:]
        mu = mu.view(-1, k, d) + self.code_centroid[tokens].float()[:, None, :]
        raw_scale = raw_scale.view(-1, k, d)
        scale = _soft_clamp(raw_scale, LOG_SCALE)
        if self.circular is not None:
            c = self.circular
            scale = scale.clone()
            scale[..., c] = _soft_clamp(raw_scale[..., c], LOG_KAPPA)
        return Mixture(logits, mu, scale, self.circular)

    def upper_log_pt(self, tokens: torch.Tensor, log_pt: torch.Tensor) -> torch.Tensor:
        """`upper_log_pt` with this head's code groups."""
        return upper_log_pt(tokens, log_pt, self.code_group)

    # --- coordinates ---------------------------------------------------------------------------------
    def to_density(self, x: torch.Tensor) -> torch.Tensor:
        """Density coordinates (N, D) of the tokenizer's normalized features x (N, n_features)."""
        if self.mode == "constituent":
            return x[:, :3]
        raw = x * self.feature_std.float() + self.feature_mean.float()
        phi = torch.atan2(raw[:, 3], raw[:, 2])
        return torch.stack([x[:, 0], x[:, 1], phi, x[:, 4], x[:, 5]], 1)

    def from_density(self, z: torch.Tensor, x_centroid: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Normalized features (N, n_features): `x_centroid` (what the code decodes to) with the
        modeled features (`mask` (N, D)) replaced by z."""
        x = x_centroid.clone()
        keep = mask > 0
        if self.mode == "constituent":
            x[:, :3] = torch.where(keep, z, x[:, :3])
            return x
        mean, std = self.feature_mean.float(), self.feature_std.float()
        for src, dst in ((0, 0), (1, 1), (3, 4), (4, 5)):
            x[:, dst] = torch.where(keep[:, src], z[:, src], x[:, dst])
        phi = z[:, 2]
        x[:, 2] = torch.where(keep[:, 2], (torch.cos(phi) - mean[2]) / std[2], x[:, 2])
        x[:, 3] = torch.where(keep[:, 2], (torch.sin(phi) - mean[3]) / std[3], x[:, 3])
        return x

    def clamp(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(normalized features (N, n_features) with `CLAMP`'s physical ranges imposed on the features
        drawn (`mask` (N, D)), the number of objects changed)."""
        clamped = self.clamp_features(x, mask)
        return clamped, int((clamped != x).any(dim=-1).sum())

    def clamp_features(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`clamp`'s features alone, without a host sync: what the sampler feeds back at every step."""
        if self.mode != "event":
            return x
        x = x.clone()
        mean, std = self.feature_mean.float(), self.feature_std.float()
        for name, column, dim in (("eta", 1, 1), ("btag", 5, 4)):
            lo, hi = ((v - mean[column]) / std[column] for v in CLAMP[name])
            x[:, column] = torch.where(mask[:, dim] > 0, x[:, column].clamp(float(lo), float(hi)), x[:, column])
        return x

    def log_jacobian(self, z: torch.Tensor, mask: torch.Tensor, physical: bool) -> torch.Tensor:
        """(N,) what to add to a log-density in head coordinates to express it in the stated space
        (log pt, eta, phi, log(1 + m), b-tag), or with `physical` in (pt [GeV], eta, phi, m [GeV], b-tag)."""
        names = DENSITY_FEATURES[self.mode]
        std = torch.ones(self.n_dims, device=z.device)
        source = {"log_pt": 0, "eta": 1, "log_mass": 4, "btag": 5} if self.mode == "event" else \
            {"log_pt": 0, "eta": 1, "phi": 2}
        feature_std, feature_mean = self.feature_std.float(), self.feature_mean.float()
        for i, n in enumerate(names):
            if n in source:
                std[i] = feature_std[source[n]]
        out = -(torch.log(std) * mask).sum(-1)
        if physical:
            # d(log pt)/d(pt) = 1/pt, d(log(1 + m))/dm = 1/(1 + m)
            raw_log_pt = z[:, 0] * feature_std[0] + feature_mean[0]
            out = out - raw_log_pt * mask[:, 0]
            if self.mode == "event":
                raw_log_mass = z[:, 3] * feature_std[4] + feature_mean[4]
                out = out - raw_log_mass * mask[:, 3]
        return out


class PerCodeGaussian:
    """The context-free reference the head is measured against: one diagonal Gaussian (von Mises for
    phi) per code, fitted on training objects; `mixture(codes)` gives it as a one-component `Mixture`."""

    def __init__(self, mu: torch.Tensor, log_scale: torch.Tensor, circular: int | None):
        self.mu, self.log_scale, self.circular = mu, log_scale, circular

    @classmethod
    def fit(cls, codes: torch.Tensor, z: torch.Tensor, n_codes: int, circular: int | None,
            min_scale: float = 1e-3) -> "PerCodeGaussian":
        """From training objects' codes (N,) and density coordinates z (N, D); codes never seen get
        the moments of all objects."""
        z = z.double()
        count = torch.bincount(codes, minlength=n_codes).double()[:, None]
        total = torch.zeros(n_codes, z.shape[1], dtype=torch.float64, device=z.device).index_add_(0, codes, z)
        sq = torch.zeros_like(total).index_add_(0, codes, z ** 2)
        seen = count > 1
        mean = torch.where(seen, total / count.clamp(min=1), z.mean(0))
        var = torch.where(seen, sq / count.clamp(min=1) - mean ** 2, z.var(0))
        log_scale = 0.5 * torch.log(var.clamp(min=min_scale ** 2))
        if circular is not None:
            c = circular
            cs = torch.zeros(n_codes, 2, dtype=torch.float64, device=z.device)
            cs.index_add_(0, codes, torch.stack([torch.cos(z[:, c]), torch.sin(z[:, c])], 1))
            resultant = cs / count.clamp(min=1)
            everyone = torch.stack([torch.cos(z[:, c]), torch.sin(z[:, c])], 1).mean(0)
            resultant = torch.where(seen, resultant, everyone)
            mean[:, c] = torch.atan2(resultant[:, 1], resultant[:, 0])
            r = resultant.norm(dim=1).clamp(max=1 - 1e-6)
            kappa = r * (2 - r ** 2) / (1 - r ** 2)  # Banerjee et al.'s approximation to the ML estimate
            log_scale[:, c] = torch.log(kappa.clamp(min=1e-6))
        return cls(mean.float(), log_scale.float(), circular)

    def mixture(self, codes: torch.Tensor) -> Mixture:
        mu, log_scale = self.mu.to(codes.device), self.log_scale.to(codes.device)
        return Mixture(torch.zeros(len(codes), 1, device=codes.device), mu[codes][:, None], log_scale[codes][:, None],
                       self.circular)
