"""The count likelihoods in scVI's parametrization against torch.distributions and closed
forms: μ = ℓ·softmax(ρ) with the observed library size, the negative binomial's inverse
dispersion per gene or per cell, the zero-inflated zero mass, K-sample broadcasting, and the
data shapes they refuse."""
from __future__ import annotations


import pytest
import torch
from torch.distributions import NegativeBinomial as TorchNB
from torch.distributions import Poisson as TorchPoisson

from xae.errors import XaeError
from xae.likelihoods.counts import REFERENCE_LIBRARY, NegativeBinomial, Poisson, ZeroInflatedNB

G = 7


def _counts(b: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.poisson(torch.rand(b, G, generator=g, dtype=torch.float64) * 6)
    x[:, 0] += 1  # no empty cell
    x[0, 1:4] = 0  # zeros to score
    return x


def _mu(x: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    return x.sum(-1, keepdim=True) * rho.softmax(-1)


def test_poisson_is_torchs_at_the_observed_library_size() -> None:
    x, rho = _counts(), torch.randn(5, G, dtype=torch.float64)
    want = TorchPoisson(_mu(x, rho)).log_prob(x)
    torch.testing.assert_close(Poisson((G,)).log_prob_elementwise(x, rho), want)


def test_nb_per_gene_is_torchs() -> None:
    x, rho = _counts(), torch.randn(5, G, dtype=torch.float64)
    lik = NegativeBinomial((G,)).double()
    with torch.no_grad():
        lik.log_r.copy_(torch.linspace(-2, 3, G))
    r, mu = lik.log_r.exp(), _mu(x, rho)
    want = TorchNB(total_count=r, logits=mu.log() - r.log()).log_prob(x)
    torch.testing.assert_close(lik.log_prob_elementwise(x, rho), want)
    assert lik.params_per_channel == 1 and lik.log_r.requires_grad


def test_nb_per_cell_decodes_its_dispersion() -> None:
    x = _counts()
    rho, log_r = torch.randn(5, G, dtype=torch.float64), torch.randn(5, G, dtype=torch.float64)
    lik = NegativeBinomial((G,), dispersion="cell")
    assert lik.params_per_channel == 2 and not list(lik.parameters())
    r, mu = log_r.exp(), _mu(x, rho)
    want = TorchNB(total_count=r, logits=mu.log() - r.log()).log_prob(x)
    torch.testing.assert_close(lik.log_prob_elementwise(x, torch.cat([rho, log_r], -1)), want)


def test_zinb_mixes_a_point_mass_at_zero() -> None:
    x = _counts()
    rho, psi, log_r = (torch.randn(5, G, dtype=torch.float64) for _ in range(3))
    lik = ZeroInflatedNB((G,), dispersion="cell")
    assert lik.params_per_channel == 3
    got = lik.log_prob_elementwise(x, torch.cat([rho, psi, log_r], -1))
    r, mu, pi = log_r.exp(), _mu(x, rho), torch.sigmoid(psi)
    nb = TorchNB(total_count=r, logits=mu.log() - r.log()).log_prob(x).exp()
    want = torch.log(pi * (x == 0) + (1 - pi) * nb)
    torch.testing.assert_close(got, want)
    # the zero mass in closed form: σ(ψ) + σ(−ψ)·(r / (r + μ))^r
    zero = (pi + (1 - pi) * (r / (r + mu)) ** r)[x == 0]
    torch.testing.assert_close(got[x == 0].exp(), zero)


def test_k_sample_parameters_broadcast_against_one_x() -> None:
    x = _counts()
    theta = torch.randn(3, 5, 2 * G, dtype=torch.float64)
    lik = ZeroInflatedNB((G,)).double()
    got = lik.log_prob_samples(x, theta)
    assert got.shape == (3, 5)
    for k in range(3):
        torch.testing.assert_close(got[k], lik.log_prob(x, theta[k]))


def test_mean_is_normalized_expression_and_samples_have_it() -> None:
    rho = torch.randn(2, G, dtype=torch.float64)
    lik = NegativeBinomial((G,)).double()
    mean = lik.mean(rho)
    torch.testing.assert_close(mean.sum(-1), torch.full((2,), REFERENCE_LIBRARY,
                                                        dtype=torch.float64))
    torch.manual_seed(0)
    draws = torch.stack([lik.sample(rho) for _ in range(4000)])
    torch.testing.assert_close(draws.mean(0), mean, rtol=0.05, atol=5.0)
    # r = 1 per gene: Var = μ + μ²
    var = draws.var(0)
    assert float((var / (mean + mean ** 2)).mean()) == pytest.approx(1.0, abs=0.1)


def test_bad_shapes_and_empty_cells_are_refused() -> None:
    with pytest.raises(XaeError, match="count vectors"):
        Poisson((1, 8, 8))
    with pytest.raises(XaeError, match="dispersion 'batch' is unknown"):
        NegativeBinomial((G,), dispersion="batch")
    x = _counts()
    x[2] = 0
    with pytest.raises(XaeError, match="no counts"):
        Poisson((G,)).log_prob(x, torch.zeros(5, G, dtype=torch.float64))
