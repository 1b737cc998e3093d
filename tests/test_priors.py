"""Priors against closed forms: normalization, moments of their samples, and the KL estimate."""
from __future__ import annotations

import math

import pytest
import torch

import xae
from xae.distributions import DiagonalGaussian, pairwise_log_prob
from xae.priors import PRIORS, MixtureOfGaussians, StandardNormal
from xae.regularizers.kl import KL


def _mog_2d() -> MixtureOfGaussians:
    prior = MixtureOfGaussians(2, components=3)
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-2.0, 0.0], [1.5, 1.0], [0.0, -1.5]]))
        prior.logvars.copy_(torch.log(torch.tensor([[0.3, 0.5], [0.4, 0.2], [1.0, 0.3]])))
        prior.logits.copy_(torch.tensor([0.0, 1.0, -0.5]))
    return prior


def _prior(name: str, dim: int) -> torch.nn.Module:
    if name == "mog" and dim == 2:
        return _mog_2d()
    prior = PRIORS[name](dim, **({"components": 3} if name == "mog" else {}))
    if name == "mog":  # 1-D: three spread, unequal components
        with torch.no_grad():
            prior.means.copy_(torch.tensor([[-2.0], [0.5], [3.0]]))
            prior.logvars.copy_(torch.log(torch.tensor([[0.2], [1.0], [0.5]])))
            prior.logits.copy_(torch.tensor([0.5, 0.0, -1.0]))
    return prior


# the VampPrior needs an encoder and the flow prior perturbed weights: their own files test them
@pytest.mark.parametrize("name", ["normal", "mog"])
@pytest.mark.parametrize("dim", [1, 2])
def test_prior_density_integrates_to_one_and_its_samples_match_it(name, dim):
    prior = _prior(name, dim).double()
    axis = torch.linspace(-8, 8, 801 if dim == 2 else 16001, dtype=torch.float64)
    grid = (torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).view(-1, 2)
            if dim == 2 else axis[:, None])
    with torch.no_grad():
        dens = prior.log_prob(grid).exp() * (axis[1] - axis[0]).item() ** dim
    assert dens.sum().item() == pytest.approx(1.0, abs=1e-4)
    mean = (dens[:, None] * grid).sum(0)
    second = (dens[:, None] * grid**2).sum(0)
    torch.manual_seed(0)
    s = prior.sample(200_000)
    assert s.shape == (200_000, dim)
    torch.testing.assert_close(s.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(s.pow(2).mean(0), second, atol=0.05, rtol=0)


def test_mog_matches_a_direct_mixture_and_its_samples_match_its_moments():
    prior = _mog_2d().double()
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=prior.logits),
        torch.distributions.Independent(
            torch.distributions.Normal(prior.means, torch.exp(0.5 * prior.logvars)), 1))
    z = torch.randn(50, 2, dtype=torch.float64)
    torch.testing.assert_close(prior.log_prob(z), mix.log_prob(z).detach())
    torch.manual_seed(0)
    s = prior.sample(200_000)
    torch.testing.assert_close(s.mean(0), mix.mean.detach(), atol=0.02, rtol=0)
    torch.testing.assert_close(s.var(0), mix.variance.detach(), atol=0.03, rtol=0)


def test_mc_kl_equals_the_analytic_kl_for_the_standard_normal():
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.randn(4, 3, dtype=torch.float64),
                         torch.randn(4, 3, dtype=torch.float64))
    prior = StandardNormal(3)
    out = xae.BottleneckOutput(z=q.sample(), posterior=q)
    analytic = KL(estimator="analytic")(out, prior).total
    z = q.sample(100_000)
    mc = (q.log_prob(z) - prior.log_prob(z)).mean(0)
    torch.testing.assert_close(mc, analytic, atol=0.02, rtol=0)


def test_a_vae_with_a_mog_prior_trains_and_samples_from_the_same_prior(tmp_path):
    cfg = xae.preset("vae", prior="mog", latent_dim=2, steps=30, progress=False, figures=False,
                     **{"model.mog.components": 4})
    model = xae.load(xae.train(cfg, tmp_path / "run"))
    assert isinstance(model.prior, MixtureOfGaussians) and model.prior.means.shape == (4, 2)
    out = model(torch.rand(8, 1, 8, 8))
    assert out.rate_per_dim is None and torch.isfinite(out.rate).all()  # Monte Carlo KL
    assert model.sample(5).shape == (5, 1, 8, 8)
    with pytest.raises(xae.XaeError, match="model.mog.components"):
        xae.build(xae.preset("vae", prior="mog", **{"model.mog.components": 0}))
    assert math.isfinite(xae.log_likelihood(model, torch.rand(4, 1, 8, 8), k=5).sum().item())


def test_the_mixture_density_is_exact_for_narrow_components_far_from_the_origin():
    """The expanded square cancels badly in float32 when σ ≪ |μ|; the direct form is the
    reference (a VampPrior once trained against that rounding error)."""
    torch.manual_seed(0)
    mean = 5 + torch.randn(7, 50)
    logvar = torch.full((7, 50), -12.0)
    z = mean[torch.arange(20) % 7] + torch.exp(0.5 * logvar[0]) * torch.randn(20, 50)
    direct = DiagonalGaussian(mean.double(), logvar.double()).log_prob(z.double().unsqueeze(1))
    torch.testing.assert_close(pairwise_log_prob(z, mean, logvar).double(), direct,
                               atol=1e-3, rtol=1e-6)
