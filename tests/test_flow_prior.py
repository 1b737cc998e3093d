"""The RealNVP flow prior against closed forms: normalization, sample moments, the change of
variables, identity at initialisation, gradients, bad arguments, and a tiny training run."""
from __future__ import annotations

import math

import pytest
import torch

import xae
from xae.distributions import LOG_2PI, DiagonalGaussian
from xae.priors import PRIORS, FlowPrior, StandardNormal
from xae.regularizers.kl import KL


def _perturbed(latent_dim: int, scale: float = 0.3, layers: int = 4,
               seed: int = 2) -> FlowPrior:
    """A float64 flow whose zero-initialised parameters are moved by fixed-seed noise."""
    torch.manual_seed(seed)
    prior = FlowPrior(latent_dim, layers=layers, hidden=16).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in prior.flows:
            last = layer.net[-1] if hasattr(layer, "net") else layer
            for p in last.parameters():
                p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return prior


@pytest.fixture(scope="module")
def grid_2d() -> dict[str, torch.Tensor | float]:
    """The perturbed 2-D flow's density on a grid over [−10, 10]², and its moments."""
    prior = _perturbed(2)
    axis = torch.linspace(-10, 10, 801, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).view(-1, 2)
    with torch.no_grad():
        w = prior.log_prob(grid).exp() * (axis[1] - axis[0]) ** 2
    mean = (w[:, None] * grid).sum(0)
    centred = grid - mean
    cov = (w[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(0)
    return {"prior": prior, "mass": w.sum().item(), "mean": mean, "cov": cov}


def test_a_perturbed_flow_density_integrates_to_one_in_1d_and_2d(grid_2d):
    assert grid_2d["mass"] == pytest.approx(1.0, abs=1e-3)
    # Far from N(0, I): shifted, and strongly correlated.
    assert grid_2d["mean"].norm() > 0.4
    assert grid_2d["cov"][0, 1] ** 2 > 0.5 * grid_2d["cov"][0, 0] * grid_2d["cov"][1, 1]
    prior = _perturbed(1, scale=0.5)
    axis = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    with torch.no_grad():
        dens = prior.log_prob(axis[:, None]).exp()
        mass = dens.sum().item() * (axis[1] - axis[0]).item()
        # In 1-D the flow is affine, z = a ε + b: a closed-form Gaussian.
        b = prior.transform(torch.zeros(1, 1, dtype=torch.float64))
        a = prior.transform(torch.ones(1, 1, dtype=torch.float64)) - b
    assert mass == pytest.approx(1.0, abs=1e-3)
    assert abs(a.item() - 1.0) > 0.1 or abs(b.item()) > 0.1
    exact = torch.distributions.Normal(b.view(()), a.abs().view(())).log_prob(axis)
    torch.testing.assert_close(dens.log(), exact)


def test_samples_match_the_moments_of_the_density(grid_2d):
    prior = grid_2d["prior"]
    torch.manual_seed(1)
    s = prior.sample(200_000)
    assert s.shape == (200_000, 2) and s.dtype == torch.float64 and not s.requires_grad
    torch.testing.assert_close(s.mean(0), grid_2d["mean"], atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(s.T), grid_2d["cov"], atol=0.04, rtol=0)


def test_log_prob_is_the_change_of_variables_through_the_inverse_in_odd_d():
    prior = _perturbed(3, layers=3)
    torch.manual_seed(2)
    z = 1.5 * torch.randn(4, 3, dtype=torch.float64)
    for point in z:
        eps, _ = prior.inverse(point[None])
        jac = torch.autograd.functional.jacobian(lambda v: prior.inverse(v[None])[0][0], point)
        expected = -0.5 * (eps.pow(2) + LOG_2PI).sum() + torch.linalg.slogdet(jac).logabsdet
        torch.testing.assert_close(prior.log_prob(point), expected)
        # f(f⁻¹(z)) = z, and every dimension moved (odd D, alternating masks).
        torch.testing.assert_close(prior.transform(eps)[0], point)
        assert ((eps[0] - point).abs() > 1e-3).all()
    batch = z.view(2, 2, 3)  # any leading dims
    assert prior.log_prob(batch).shape == (2, 2)
    torch.testing.assert_close(prior.log_prob(batch).view(-1), prior.log_prob(z))


def test_at_initialisation_the_flow_is_the_standard_normal_and_its_mc_kl_matches():
    prior = FlowPrior(3, layers=4, hidden=32).double()
    torch.manual_seed(3)
    z = 3 * torch.randn(5, 7, 3, dtype=torch.float64)
    assert torch.equal(prior.log_prob(z), StandardNormal(3).log_prob(z))
    assert not prior.factorized
    q = DiagonalGaussian(torch.randn(4, 3, dtype=torch.float64),
                         torch.randn(4, 3, dtype=torch.float64))
    assert q.kl(prior) is None  # no closed form: the KL regularizer estimates it
    out = xae.BottleneckOutput(z=q.sample(20_000), posterior=q)
    mc = KL(estimator="analytic")(out, prior).total.mean(0)  # falls back to Monte Carlo
    analytic = StandardNormal(3).kl(q).sum(-1)
    torch.testing.assert_close(mc, analytic, atol=0.06, rtol=0)


@pytest.mark.parametrize("perturb", [False, True])
def test_log_prob_of_reparameterized_z_gives_gradients_to_z_and_the_flow(perturb):
    prior = _perturbed(4) if perturb else FlowPrior(4, hidden=16).double()
    mean = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    q = DiagonalGaussian(mean, torch.zeros(6, 4, dtype=torch.float64))
    prior.log_prob(q.sample(3)).sum().backward()
    assert torch.isfinite(mean.grad).all() and mean.grad.abs().sum() > 0
    last = {id(p) for layer in prior.flows for p in layer.net[-1].parameters()}
    for name, p in prior.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        # At zero initialisation only the conditioners' output layers get a signal.
        if perturb or id(p) in last:
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("kwargs", "key"), [({"layers": 0}, "model.flow.layers"),
                                             ({"layers": 2.0}, "model.flow.layers"),
                                             ({"hidden": -1}, "model.flow.hidden"),
                                             ({"hidden": True}, "model.flow.hidden")])
def test_bad_arguments_raise_an_error_naming_the_config_key(kwargs, key):
    with pytest.raises(xae.XaeError, match=key):
        FlowPrior(2, **kwargs)


def test_the_registry_builds_a_one_dimensional_flow_from_its_section_and_rejects_bad_keys():
    cfg = xae.preset("vae", prior="flow", latent_dim=1,
                     **{"model.flow.layers": 2, "model.flow.hidden": 8, "model.mog.components": 3})
    prior = xae.build(cfg).prior
    assert PRIORS["flow"] is FlowPrior and isinstance(prior, FlowPrior)
    assert "layers=2, hidden=8" in repr(prior)
    assert prior.sample(5).shape == (5, 1)
    with pytest.raises(xae.XaeError, match="model.flow.layers"):
        xae.build(xae.preset("vae", prior="flow", **{"model.flow.layers": 0}))


def test_a_vae_with_a_flow_prior_trains_and_samples_from_the_same_prior(tmp_path):
    cfg = xae.preset("vae", prior="flow", latent_dim=2, steps=30, progress=False, figures=False,
                     **{"model.flow.layers": 2, "model.flow.hidden": 32})
    model = xae.load(xae.train(cfg, tmp_path / "run"))
    assert isinstance(model.prior, FlowPrior) and len(model.prior.flows) == 2
    last = [layer.net[-1].weight for layer in model.prior.flows]
    assert all(w.abs().sum() > 0 for w in last)  # moved from its zero initialisation
    x = torch.rand(8, 1, 8, 8)
    out = model(x)
    assert out.rate_per_dim is None and torch.isfinite(out.rate).all()  # Monte Carlo KL
    z = torch.randn(10, 2)
    assert not torch.allclose(model.prior.log_prob(z), StandardNormal(2).log_prob(z))
    xs = model.sample(16)
    assert xs.shape == (16, 1, 8, 8) and torch.isfinite(xs).all()
    assert math.isfinite(xae.log_likelihood(model, x[:4], k=5).sum().item())
