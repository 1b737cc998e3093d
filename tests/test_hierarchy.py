"""Latent groups: a two-group top-down VAE against the closed form of a linear-Gaussian model."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

import xae
from xae.bottlenecks import TopDown
from xae.evaluate.likelihood import likelihood_report
from xae.likelihoods.location_scale import Gaussian
from xae.model import Autoencoder
from xae.nets import MLPDecoder, MLPEncoder
from xae.objectives import ELBO
from xae.priors.normal import StandardNormal
from xae.regularizers import KL

DATA, GROUPS = 6, [1, 2]


def _model(seed: int = 0, free_bits: float = 0.0) -> Autoencoder:
    torch.manual_seed(seed)
    d = sum(GROUPS)
    return Autoencoder(
        encoder=MLPEncoder((DATA,), hidden=[]), bottleneck=TopDown(DATA, d, groups=GROUPS),
        decoder=MLPDecoder((DATA,), d, hidden=[]), likelihood=Gaussian((DATA,), scale="scalar"),
        prior=StandardNormal(GROUPS[0]), regularizer=KL(free_bits=free_bits), objective=ELBO(),
        data_shape=(DATA,), latent_dim=d)


def _data(n: int = 2000) -> torch.Tensor:
    """x = W [z1; z2] + noise with z2 = A z1 + noise: a linear-Gaussian two-layer model."""
    g = torch.Generator().manual_seed(7)
    z1 = torch.randn(n, 1, generator=g)
    z2 = z1 @ torch.tensor([[1.5, -0.5]]) + 0.5 * torch.randn(n, 2, generator=g)
    w = torch.randn(3, DATA, generator=g) / 3
    return torch.cat([z1, z2], 1) @ w + 0.3 * torch.randn(n, DATA, generator=g)


def _exact_log_px(model: Autoencoder, x: torch.Tensor) -> torch.Tensor:
    """log p(x) of the model's own linear-Gaussian generative path, in closed form."""
    prior_net, dec = model.bottleneck.priors[0], model.decoder.net[-1]
    a_mat = prior_net.weight[:2].double()                 # mean of p(z2|z1) = A z1 + a
    a = prior_net.bias[:2].double()
    var2 = torch.exp(prior_net.bias[2:].double())          # constant: its weight is zeroed
    s = torch.zeros(3, 3, dtype=torch.float64)
    s[0, 0] = 1.0
    s[1:, :1], s[:1, 1:] = a_mat, a_mat.T
    s[1:, 1:] = a_mat @ a_mat.T + torch.diag(var2)
    m = torch.cat([torch.zeros(1, dtype=torch.float64), a])
    w, b = dec.weight.double(), dec.bias.double()
    sigma2 = torch.exp(2 * model.likelihood.log_scale.double())
    cov = w @ s @ w.T + sigma2 * torch.eye(DATA, dtype=torch.float64)
    return MultivariateNormal(w @ m + b, cov).log_prob(x.double())


@pytest.fixture(scope="module")
def trained() -> tuple[Autoencoder, torch.Tensor]:
    model, x = _model(), _data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(600):
        loss = model(x).loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 1.0  # it learned
    with torch.no_grad():  # p(z2|z1) with a variance that does not depend on z1: linear-Gaussian
        model.bottleneck.priors[0].weight[2:].zero_()
    return model.eval(), x


def test_each_group_has_its_named_rate_term_and_they_sum_to_the_rate(trained) -> None:
    model, x = trained
    out = model(x[:64])
    assert [k for k, t in out.terms.items() if t.kind == "rate"] == ["rate/z1", "rate/z2"]
    torch.testing.assert_close(out.rate, out.terms["rate/z1"].value + out.terms["rate/z2"].value)
    assert out.rate_per_dim.shape == (64, 3)
    # each group's KL is the closed form against the prior its top-down path computed
    g1, g2 = out.groups
    p2 = model.bottleneck.priors[0](g1.z).chunk(2, -1)
    closed = 0.5 * (p2[1] - g2.posterior.logvar + (g2.posterior.var + (g2.posterior.mean
                    - p2[0]) ** 2) / p2[1].exp() - 1)
    torch.testing.assert_close(out.terms["rate/z2"].per_dim, closed)


def test_iw_likelihood_matches_the_exact_marginal_within_a_tenth_of_a_nat(trained) -> None:
    model, x = trained
    x = x[:300]
    with torch.no_grad():
        exact = _exact_log_px(model, x)
        iw = xae.log_likelihood(model, x, k=2000, seed=0).double()
    gap = float((exact - iw).mean())
    assert abs(gap) < 0.1, gap
    elbo_gap = float((exact - likelihood_report(model, x, k=1, seed=0).elbo.double()).mean())
    assert elbo_gap > abs(gap)  # one draw is a looser bound than 2000


def test_ancestral_samples_follow_the_top_down_prior(trained) -> None:
    model, _ = trained
    torch.manual_seed(0)
    z = model.sample_z(100_000).double()
    prior_net = model.bottleneck.priors[0]
    a_mat = prior_net.weight[:2].detach().double()
    expected = a_mat @ a_mat.T + torch.diag(torch.exp(prior_net.bias[2:].detach().double()))
    cov = torch.cov(z[:, 1:].T)
    assert torch.allclose(cov, expected, atol=0.05 * float(expected.abs().max()))
    assert abs(float(z[:, 0].var()) - 1.0) < 0.03


def test_free_bits_clip_each_group() -> None:
    model, x = _model(free_bits=5.0), _data(64)
    out = model(x)
    for name in ("rate/z1", "rate/z2"):
        t = out.terms[name]
        below = t.per_dim.mean(0) < 5.0
        expected = torch.where(below, torch.full_like(t.per_dim, 5.0), t.per_dim).sum(-1)
        torch.testing.assert_close(t.clipped, expected)
    torch.testing.assert_close(out.loss, (out.distortion + out.terms["rate/z1"].clipped
                                          + out.terms["rate/z2"].clipped).mean())


def test_groups_must_add_up_to_the_latent_size() -> None:
    with pytest.raises(xae.XaeError, match="sum to model.latent_dim"):
        TopDown(DATA, 4, groups=[1, 2])
    assert math.isclose(sum(GROUPS), 3)
