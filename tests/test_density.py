"""The continuous density head: an exact, normalized density; calibrated tail probabilities; draws
that follow it; coordinates that invert."""
from __future__ import annotations

import math

import numpy as np
import torch

from backbone.density import DensityHead, Mixture, log_chi2_sf, log_gamma_sf, von_mises
from events.model import ObjectType as T


def _mixture(n=1, seed=0, k=3, d=5, circular=2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g)
    mu = torch.randn(n, k, d, generator=g)
    scale = torch.randn(n, k, d, generator=g) * 0.3 - 0.5
    if circular is not None:
        mu[..., circular] = torch.rand(n, k, generator=g) * 2 * math.pi - math.pi
        scale[..., circular] = torch.tensor([0.5, 2.0, -1.0])[:k]  # log kappa
    return Mixture(logits, mu, scale, circular)


def _only(d: int, n_dims=5) -> torch.Tensor:
    mask = torch.zeros(1, n_dims)
    mask[0, d] = 1
    return mask


def test_each_one_dimensional_marginal_integrates_to_one():
    mix = _mixture()
    for d, (lo, hi) in enumerate([(-12, 12), (-12, 12), (-math.pi, math.pi), (-12, 12), (-12, 12)]):
        grid = torch.linspace(lo, hi, 20001)
        z = torch.zeros(len(grid), 5)
        z[:, d] = grid
        m = Mixture(*(t.expand(len(grid), *t.shape[1:]) for t in (mix.logits, mix.mu, mix.log_scale)), 2)
        density = torch.exp(m.log_prob(z, _only(d).expand(len(grid), 5)))
        assert abs(torch.trapezoid(density, grid).item() - 1) < 1e-3, d


def test_samples_follow_the_density():
    """A histogram of the head's own draws against its density, per feature (phi circular)."""
    mix = _mixture()
    n = 200_000
    big = Mixture(*(t.expand(n, *t.shape[1:]) for t in (mix.logits, mix.mu, mix.log_scale)), 2)
    z = big.sample(torch.Generator().manual_seed(3))
    for d in range(5):
        values = z[:, d].numpy()
        edges = np.quantile(values, np.linspace(0.01, 0.99, 21))
        counts, _ = np.histogram(values, edges)
        grid = torch.linspace(float(edges[0]), float(edges[-1]), 4001)
        zz = torch.zeros(len(grid), 5)
        zz[:, d] = grid
        m = Mixture(*(t.expand(len(grid), *t.shape[1:]) for t in (mix.logits, mix.mu, mix.log_scale)), 2)
        pdf = torch.exp(m.log_prob(zz, _only(d).expand(len(grid), 5))).numpy()
        cdf = np.concatenate([[0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(grid.numpy()))])
        expected = np.diff(np.interp(edges, grid.numpy(), cdf)) * n
        # Poisson errors of ~10,000 per bin: 5 sigma is 5%
        assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), (d, counts, expected.round())


def test_draws_below_a_bound_follow_the_truncated_density():
    n = 200_000
    one = Mixture(torch.zeros(n, 1), torch.zeros(n, 1, 5), torch.zeros(n, 1, 5), 2)
    z = one.sample(torch.Generator().manual_seed(1), upper=torch.zeros(n))
    # a unit Gaussian below 0 has mean -sqrt(2 / pi) = -0.7979 (standard error 0.0013 here)
    assert z[:, 0].max() <= 0 and abs(z[:, 0].mean().item() + math.sqrt(2 / math.pi)) < 0.01
    assert abs(z[:, 1].mean().item()) < 0.01 and abs(z[:, 1].std().item() - 1) < 0.01  # the rest untouched
    # of two equal components at -2 and +2 (width 0.1), only the one below the bound is drawn from
    mu = torch.tensor([[-2.0], [2.0]]).expand(2, 5).clone()
    two = Mixture(torch.zeros(1000, 2), mu.expand(1000, 2, 5), torch.full((1000, 2, 5), math.log(0.1)), 2)
    z = two.sample(torch.Generator().manual_seed(2), upper=torch.zeros(1000))
    assert (z[:, 0] - -2.0).abs().max() < 0.6 and (z[:, 0] <= 0).all()
    # a bound 50 widths below the mean, beyond float64's CDF: the draw sits on it; inf: no bound
    far = one.sample(torch.Generator().manual_seed(3), upper=torch.tensor([-50.0, float("inf")]).repeat(n // 2))
    assert (far[0::2, 0] == -50).all() and far[1::2, 0].max() > 3


def test_a_pt_ordered_density_is_normalized_below_its_bound():
    """With a bound on log pt, the density is the mixture truncated there: the untruncated one over its
    mass below the bound (hand-computed from the normal CDF), integrating to one below it."""
    logits = torch.tensor([[0.0, math.log(3.0)]])  # weights 1/4, 3/4
    mu = torch.zeros(1, 2, 5)
    mu[0, :, 0] = torch.tensor([-1.0, 0.5])
    log_scale = torch.zeros(1, 2, 5)
    log_scale[0, 1, 0] = math.log(0.5)
    bound = 0.3
    phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    mass_below = 0.25 * phi((bound + 1.0) / 1.0) + 0.75 * phi((bound - 0.5) / 0.5)
    free = Mixture(logits, mu, log_scale, 2)
    z = torch.tensor([[-0.2, 0.0, 0.0, 0.0, 0.0], [0.9, 0.0, 0.0, 0.0, 0.0]])  # below, above the bound
    mask = _only(0).expand(2, 5)
    two = lambda upper: Mixture(*(t.expand(2, *t.shape[1:]) for t in (logits, mu, log_scale)), 2, upper)  # noqa: E731
    ordered = two(torch.tensor([bound, bound])).log_prob(z, mask)
    unordered = two(None).log_prob(z, mask)
    assert abs((ordered - unordered)[0].item() + math.log(mass_below)) < 1e-5
    # out of order (above the bound) or without a bound: the untruncated density, finite
    assert ordered[1].item() == unordered[1].item()
    torch.testing.assert_close(two(torch.full((2,), float("inf"))).log_prob(z, mask), unordered)
    grid = torch.linspace(-12, bound, 20001)
    zz = torch.zeros(len(grid), 5)
    zz[:, 0] = grid
    big = Mixture(*(t.expand(len(grid), *t.shape[1:]) for t in (logits, mu, log_scale)), 2, torch.full((len(grid),), bound))
    density = torch.exp(big.log_prob(zz, _only(0).expand(len(grid), 5)))
    assert abs(torch.trapezoid(density, grid).item() - 1) < 1e-3
    assert free.upper is None


def test_the_bound_is_the_log_pt_of_the_object_before_in_its_group():
    types = [T.JET, T.BJET, T.ELECTRON, T.MUON, T.PHOTON, T.MET]
    head = DensityHead(8, "event", n_codes=6, n_features=6, pt_order=True)
    head.set_tokenizer([int(t) for t in types], mean=[0.0] * 6, std=[1.0] * 6)
    assert head.code_group.tolist() == [0, 0, 1, 1, 2, 4]  # jets, leptons, photons, (constituents), MET
    # BOS-like special (7), jet, b-jet, electron, muon, photon, MET, EOS-like (8), an ignored target
    tokens = torch.tensor([[7, 0, 1, 2, 3, 4, 5, 8, -100]])
    log_pt = torch.tensor([[0.0, 1.0, 0.5, 0.8, 0.2, 0.4, 0.9, 0.0, 0.0]])
    inf = float("inf")
    torch.testing.assert_close(head.upper_log_pt(tokens, log_pt), torch.tensor([[inf, inf, 1.0, inf, 0.8, inf, inf, inf, inf]]))
    assert not hasattr(DensityHead(8, "event", n_codes=6, n_features=6), "code_group")


def test_tail_probability_is_uniform_for_draws_and_tiny_far_out():
    mix = _mixture(n=1, seed=1)
    n = 50_000
    big = Mixture(*(t.expand(n, *t.shape[1:]) for t in (mix.logits, mix.mu, mix.log_scale)), 2)
    mask = torch.ones(n, 5)
    u = torch.exp(big.log_tail(big.sample(torch.Generator().manual_seed(5)), mask)).numpy()
    # the empirical CDF of u stays near the diagonal: calibrated in [0, 1] whatever the units
    grid = np.linspace(0, 1, 101)
    assert np.max(np.abs(np.searchsorted(np.sort(u), grid) / n - grid)) < 0.06
    # far in the tail: finite, and smaller the farther
    far = mix.mu[:, 0].clone()
    logs = []
    for shift in (5.0, 20.0, 100.0):
        z = far.clone()
        z[0, 0] += shift * float(torch.exp(mix.log_scale[0, :, 0]).max())
        logs.append(float(mix.log_tail(z, torch.ones(1, 5))))
    assert all(np.isfinite(logs)) and logs[0] > logs[1] > logs[2] and logs[2] < -1000


def test_log_gamma_tail_against_mpmath():
    """Where scipy's chi2.logsf already gives -inf (r2 = 5000), the value must stay exact."""
    import mpmath

    for a in (0.5, 1.0, 2.5, 15.0, 40.0):
        for x in (0.05, 1.5, 20.0, 450.0, 2500.0):
            exact = float(mpmath.log(mpmath.gammainc(a, x, mpmath.inf, regularized=True)))
            ours = float(log_gamma_sf(torch.tensor(a), torch.tensor(x)))
            assert abs(ours - exact) < 1e-6 * max(1.0, abs(exact)), (a, x, ours, exact)
    assert abs(float(log_chi2_sf(torch.tensor(5.0), torch.tensor(40.0))) - math.log(1.4934e-7)) < 1e-3


def test_von_mises_draws_match_the_circular_moments():
    kappa = torch.full((100_000,), 2.0, dtype=torch.float64)
    mu = torch.full_like(kappa, 3.0)
    phi = von_mises(mu, kappa, torch.Generator().manual_seed(0))
    assert phi.min() >= -math.pi and phi.max() < math.pi
    # E[cos(phi - mu)] = I1(kappa)/I0(kappa) = 0.6978 at kappa = 2
    assert abs(torch.cos(phi - mu).mean().item() - 0.6978) < 0.01
    assert abs(torch.sin(phi - mu).mean().item()) < 0.01


def test_coordinates_invert_and_the_jacobian_is_the_normalization():
    head = DensityHead(8, "event", n_codes=3, n_features=6)
    head.set_tokenizer([int(T.JET), int(T.MUON), int(T.MET)], mean=[3.5, 0.0, 0.0, 0.0, 1.5, 0.2],
                       std=[0.8, 1.2, 0.7, 0.7, 1.1, 0.3])
    assert head.code_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 0, 0]]
    pt, eta, phi, mass, btag = 50.0, 0.7, -2.5, 12.0, 0.9
    raw = torch.tensor([[math.log(pt), eta, math.cos(phi), math.sin(phi), math.log1p(mass), btag]])
    x = (raw - head.feature_mean) / head.feature_std
    z = head.to_density(x)
    assert abs(z[0, 2].item() - phi) < 1e-6
    mask = head.code_mask[:1]
    torch.testing.assert_close(head.from_density(z, torch.zeros_like(x), mask), x)
    stated = head.log_jacobian(z, mask, physical=False)
    assert abs(stated.item() + math.log(0.8 * 1.2 * 1.1 * 0.3)) < 1e-5
    physical = head.log_jacobian(z, mask, physical=True)
    assert abs((stated - physical).item() - (math.log(pt) + math.log1p(mass))) < 1e-4


def test_constituent_coordinates_are_the_first_three_features_all_linear():
    head = DensityHead(8, "constituent", n_codes=2, n_features=4)
    head.set_tokenizer([int(T.CONSTITUENT)] * 2, mean=[0.5, 0, 0, 0.1], std=[1.0, 0.1, 0.1, 0.2])
    assert head.circular is None and head.code_mask.tolist() == [[1, 1, 1], [1, 1, 1]]
    x = torch.tensor([[0.3, -1.2, 2.5, 0.7]])
    z = head.to_density(x)
    torch.testing.assert_close(z, x[:, :3])
    centroid = torch.tensor([[0.0, 0.0, 0.0, 0.4]])
    torch.testing.assert_close(head.from_density(z, centroid, head.code_mask[:1]), torch.tensor([[0.3, -1.2, 2.5, 0.4]]))
    # linear phi: far from the mean is far, no wrapping at pi
    mix = Mixture(torch.zeros(1, 1), torch.zeros(1, 1, 3), torch.zeros(1, 1, 3), None)
    near, far = (mix.log_tail(torch.tensor([[0.0, 0.0, v]]), torch.ones(1, 3)) for v in (0.5, 2 * math.pi))
    assert far < near - 10


def test_token_tail_against_hand_computed_values_and_far_below_float32():
    from finetune.scores import combined, token_log_tail

    # probabilities 0.5, 0.3, 0.2: the tail of token 1 is 0.2 + 0.3 / 2 = 0.35; of token 0, 0.5 + 0.25
    logits = torch.log(torch.tensor([[[0.5, 0.3, 0.2]] * 3]))
    u = torch.exp(token_log_tail(logits, torch.tensor([[1, 0, 2]])))
    torch.testing.assert_close(u, torch.tensor([[0.35, 0.75, 0.1]]))
    # a token at e^-300 (zero in float32) still has a finite, huge surprise
    far = token_log_tail(torch.tensor([[[0.0, -300.0]]]), torch.tensor([[1]]))
    assert torch.isfinite(far).all() and -far.item() > 290
    # one term at u = 1e-6 among 9 ordinary ones: Tippett's p = 1 - (1 - 1e-6)^10 ~ 1e-5
    terms = torch.tensor([[-math.log(1e-6)] + [-math.log(0.5)] * 9])
    every = torch.ones_like(terms, dtype=torch.bool)
    assert abs(combined(terms, every).item() + math.log(1e-5)) < 1e-3
    # far beyond float64's smallest number (u = e^-10000): log(m u), finite
    terms[0, 0] = 1e4
    assert abs(combined(terms, every).item() - (1e4 - math.log(10))) < 1e-6
    # many mildly improbable terms: Fisher's sum, -2 sum log u = 2 * 20 * log(10) ~ chi2 with 40 dof
    from scipy.stats import chi2

    terms = torch.full((1, 20), math.log(10.0))
    expected = -math.log(chi2.sf(2 * 20 * math.log(10.0), 40))
    assert abs(combined(terms, torch.ones_like(terms, dtype=torch.bool)).item() - expected) < 1e-3
    # terms not counted do not count, and an event without terms scores 0
    assert combined(terms, torch.zeros_like(terms, dtype=torch.bool)).item() == 0


def test_the_mixture_mean_against_hand_computed_means():
    """Weighted component means; at phi the direction of the weighted resultant (across the -pi/pi seam);
    under a bound, a truncated normal's mean: -sqrt(2/pi) below 0 for a standard normal, the bound itself
    far below, the plain mean for no bound (inf)."""
    logits = torch.log(torch.tensor([[1.0, 3.0]]))
    mu = torch.tensor([[[0.0, 1.0, 0.3], [2.0, -1.0, 0.5]]])
    mixture = Mixture(logits, mu, torch.zeros(1, 2, 3), circular=2)
    torch.testing.assert_close(mixture.mean()[0, :2], torch.tensor([1.5, -0.5]))
    # equal concentrations: the resultant's direction weighs the two angles 1:3 on the circle
    expected = math.atan2(0.25 * math.sin(0.3) + 0.75 * math.sin(0.5), 0.25 * math.cos(0.3) + 0.75 * math.cos(0.5))
    torch.testing.assert_close(mixture.mean()[0, 2], torch.tensor(expected))
    seam = Mixture(torch.zeros(1, 2), torch.tensor([[[0.0, math.pi - 0.1], [0.0, -math.pi + 0.1]]]),
                   torch.zeros(1, 2, 2), circular=1)
    assert abs(abs(float(seam.mean()[0, 1])) - math.pi) < 1e-6
    normal = Mixture(torch.zeros(3, 1), torch.zeros(3, 1, 1), torch.zeros(3, 1, 1), circular=None)
    bounded = normal.mean(torch.tensor([0.0, float("inf"), -40.0]))[:, 0]
    assert abs(float(bounded[0]) + math.sqrt(2 / math.pi)) < 1e-6
    assert float(bounded[1]) == 0.0
    assert abs(float(bounded[2]) + 40.0) < 0.03  # E = b + 1/|b| - ...: about 1/40 above the bound
