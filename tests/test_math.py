"""Closed-form checks of the math: KL, likelihoods, the diagonal Gaussian, free bits, the
model's loss identities and the importance-weighted likelihood against exact pPCA."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import distributions as D

import xae
from xae.distributions import DiagonalGaussian
from xae.likelihoods import Bernoulli, Gaussian, Laplace
from xae.regularizers.kl import free_bits
from xae.outputs import BottleneckOutput
from xae.priors import StandardNormal
from xae.regularizers import KL

LOG_2PI = math.log(2 * math.pi)


def _posterior(b: int = 4, d: int = 3, seed: int = 0, dtype=torch.float64) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(b, d, generator=g, dtype=dtype) * 1.5
    logvar = torch.randn(b, d, generator=g, dtype=dtype)
    return DiagonalGaussian(mean, logvar)


# --------------------------------------------------------------------------------------- KL


def test_standard_normal_kl_matches_formula_and_torch():
    q = _posterior(5, 4)
    kl = StandardNormal(4).kl(q)
    assert kl.shape == (5, 4)
    var = q.logvar.exp()
    formula = 0.5 * (q.mean**2 + var - 1.0 - torch.log(var))
    ref = D.kl_divergence(D.Normal(q.mean, var.sqrt()), D.Normal(0.0, 1.0))
    torch.testing.assert_close(kl, formula, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kl, ref, rtol=1e-10, atol=1e-12)
    assert (kl >= 0).all()


def test_standard_normal_kl_is_zero_at_the_prior():
    q = DiagonalGaussian(torch.zeros(3, 2), torch.zeros(3, 2))
    assert torch.equal(StandardNormal(2).kl(q), torch.zeros(3, 2))


def test_standard_normal_kl_matches_monte_carlo():
    torch.manual_seed(0)
    q = _posterior(2, 3, seed=1)
    prior = StandardNormal(3)
    k = 200_000
    z = q.sample(k)  # (k, B, D)
    terms = q.log_prob_per_dim(z) - prior.log_prob_per_dim(z)  # (k, B, D)
    mc = terms.mean(0)
    se = terms.std(0) / math.sqrt(k)
    analytic = prior.kl(q)
    assert ((mc - analytic).abs() < 5 * se + 1e-9).all(), (mc, analytic, se)


def test_kl_regularizer_mc_estimator_averages_to_analytic():
    torch.manual_seed(0)
    prior = StandardNormal(3)
    q1 = _posterior(1, 3, seed=2)
    n = 200_000
    q = DiagonalGaussian(q1.mean.expand(n, 3), q1.logvar.expand(n, 3))
    rate = KL(estimator="mc")(BottleneckOutput(z=q.sample(), posterior=q), prior).per_dim
    assert rate.shape == (n, 3)
    analytic = prior.kl(q1)[0]
    se = rate.std(0) / math.sqrt(n)
    assert ((rate.mean(0) - analytic).abs() < 5 * se).all(), (rate.mean(0), analytic, se)


def test_kl_regularizer_analytic_is_the_prior_kl():
    q = _posterior(4, 3)
    out = BottleneckOutput(z=q.sample(), posterior=q)
    prior = StandardNormal(3)
    torch.testing.assert_close(KL(estimator="analytic")(out, prior).per_dim, prior.kl(q))


def test_kl_regularizer_mc_uses_the_given_z():
    q = _posterior(4, 3)
    z = torch.randn(4, 3, dtype=torch.float64)
    rate = KL(estimator="mc")(BottleneckOutput(z=z, posterior=q), StandardNormal(3)).per_dim
    expected = (D.Normal(q.mean, q.std).log_prob(z) - D.Normal(0.0, 1.0).log_prob(z))
    torch.testing.assert_close(rate, expected)


# ------------------------------------------------------------------------------ likelihoods

SHAPE = (1, 3, 4)


def _x_theta(seed: int = 0, binary: bool = False):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(5, *SHAPE, generator=g, dtype=torch.float64) * 2
    x = torch.rand(5, *SHAPE, generator=g, dtype=torch.float64)
    return (x.round() if binary else x), theta


@pytest.mark.parametrize("binary", [True, False])
def test_bernoulli_log_prob(binary):
    x, theta = _x_theta(binary=binary)
    lik = Bernoulli(SHAPE)
    p = torch.sigmoid(theta)
    hand = (x * torch.log(p) + (1 - x) * torch.log1p(-p)).flatten(1).sum(-1)
    ref = D.Bernoulli(logits=theta, validate_args=False).log_prob(x).flatten(1).sum(-1)
    got = lik.log_prob(x, theta)
    assert got.shape == (5,)
    torch.testing.assert_close(got, hand, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_bernoulli_mean_and_sample():
    lik = Bernoulli(SHAPE)
    theta = torch.tensor([-2.0, 0.0, 1.5]).view(1, 1, 3, 1).expand(40_000, 1, 3, 4)
    p = torch.sigmoid(theta)
    torch.testing.assert_close(lik.mean(theta), p)
    torch.manual_seed(0)
    s = lik.sample(theta)
    assert s.shape == theta.shape
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    emp = s.mean(dim=(0, 3))[0]
    exact = torch.sigmoid(torch.tensor([-2.0, 0.0, 1.5]))
    se = (exact * (1 - exact) / (40_000 * 4)).sqrt()
    assert ((emp - exact).abs() < 5 * se).all()


def _set_log_scale(lik, seed: int = 3):
    """Give a learned scale non-trivial values (per pixel differs per element)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lik.log_scale.copy_(torch.randn(lik.log_scale.shape, generator=g) * 0.5)


LOC_SCALE = [
    (Gaussian, "fixed", 1.0), (Gaussian, "fixed", 0.1), (Gaussian, "scalar", 0.3),
    (Gaussian, "pixel", 1.0), (Laplace, "fixed", 1.0), (Laplace, "fixed", 0.25),
    (Laplace, "scalar", 2.0), (Laplace, "pixel", 1.0),
]


@pytest.mark.parametrize("cls,scale,sigma", LOC_SCALE)
def test_location_scale_log_prob(cls, scale, sigma):
    lik = cls(SHAPE, scale=scale, sigma=sigma).double()
    torch.testing.assert_close(lik.log_scale, torch.full_like(lik.log_scale, math.log(sigma)))
    if scale != "fixed":
        _set_log_scale(lik)
    x, theta = _x_theta()
    s = lik.log_scale.detach().exp().expand(x.shape)
    if cls is Gaussian:
        hand = -((x - theta) ** 2) / (2 * s**2) - torch.log(s) - 0.5 * LOG_2PI
        ref = D.Normal(theta, s).log_prob(x)
    else:
        hand = -(x - theta).abs() / s - torch.log(2 * s)
        ref = D.Laplace(theta, s).log_prob(x)
    got = lik.log_prob(x, theta)
    assert got.shape == (5,)
    torch.testing.assert_close(got, hand.flatten(1).sum(-1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got, ref.flatten(1).sum(-1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lik.mean(theta), theta)


@pytest.mark.parametrize("cls,scale,sigma", LOC_SCALE)
def test_location_scale_sample_moments(cls, scale, sigma):
    lik = cls(SHAPE, scale=scale, sigma=sigma).double()
    if scale != "fixed":
        _set_log_scale(lik)
    n = 20_000
    theta = torch.linspace(-1, 1, 12, dtype=torch.float64).view(1, *SHAPE).expand(n, *SHAPE)
    torch.manual_seed(0)
    s = lik.sample(theta)
    assert s.shape == theta.shape and torch.isfinite(s).all()
    b = lik.log_scale.detach().exp().expand(SHAPE)
    std = b if cls is Gaussian else math.sqrt(2) * b
    assert ((s.mean(0) - theta[0]).abs() < 5 * std / math.sqrt(n)).all()
    assert ((s.std(0) / std - 1).abs() < 0.05).all()


def test_laplace_sample_is_always_finite():
    """torch.rand can return exactly 0 (probability 2^-24 per float32 element), so the
    inverse-CDF draw must not evaluate log1p(-1) = -inf; 2^26 draws see several zeros."""
    lik = Laplace((4,), scale="fixed", sigma=1.0)
    theta = torch.zeros(2**20, 4)
    torch.manual_seed(0)
    bad = 0
    for _ in range(16):
        bad += int((~torch.isfinite(lik.sample(theta))).sum())
    assert bad == 0, f"{bad} non-finite Laplace samples"


@pytest.mark.parametrize("likelihood,scale,learned", [
    ("gaussian", "fixed", False), ("gaussian", "scalar", True), ("gaussian", "pixel", True),
    ("laplace", "fixed", False), ("laplace", "scalar", True), ("laplace", "pixel", True),
])
def test_learned_scales_are_parameters(likelihood, scale, learned):
    cfg = xae.preset("vae", likelihood=likelihood, latent_dim=2,
                     **{f"model.{likelihood}.scale": scale, f"model.{likelihood}.sigma": 0.5,
                        "model.mlp.hidden": [8]})
    model = xae.build(cfg)
    ls = model.likelihood.log_scale
    params = [p for p in model.parameters()]
    assert any(p is ls for p in params) == learned
    assert isinstance(ls, torch.nn.Parameter) == learned
    assert ls.shape == ((1, 8, 8) if scale == "pixel" else ())
    torch.testing.assert_close(ls.detach(), torch.full_like(ls, math.log(0.5)))
    if not learned:
        assert any(b is ls for b in model.buffers())
    else:
        model(torch.rand(4, 1, 8, 8)).loss.backward()
        assert ls.grad is not None and ls.grad.abs().sum() > 0


@pytest.mark.parametrize("sigma", [1.0, 0.1, 3.0])
def test_mse_is_the_gaussian_likelihood(sigma):
    x, mu = _x_theta()
    d = x[0].numel()
    lik = Gaussian(SHAPE, scale="fixed", sigma=sigma).double()
    lik.log_scale.fill_(math.log(sigma))  # exact in float64
    sq = F.mse_loss(mu, x, reduction="none").flatten(1).sum(-1)
    expected = sq / (2 * sigma**2) + d * (math.log(sigma) + 0.5 * LOG_2PI)
    torch.testing.assert_close(-lik.log_prob(x, mu), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kwargs", [{"scale": "learned"}, {"sigma": 0.0}, {"sigma": -1.0}])
def test_location_scale_rejects_bad_config(kwargs):
    with pytest.raises(xae.XaeError):
        Gaussian(SHAPE, **kwargs)


# ------------------------------------------------------------------------ DiagonalGaussian


def test_diagonal_gaussian_log_prob_and_entropy():
    q = _posterior(4, 3)
    z = torch.randn(4, 3, dtype=torch.float64)
    ref = D.Normal(q.mean, q.logvar.mul(0.5).exp())
    torch.testing.assert_close(q.log_prob(z), ref.log_prob(z).sum(-1))
    torch.testing.assert_close(q.log_prob_per_dim(z), ref.log_prob(z))
    zk = torch.randn(6, 4, 3, dtype=torch.float64)  # leading sample dimension
    torch.testing.assert_close(q.log_prob(zk), ref.log_prob(zk).sum(-1))
    closed = 0.5 * (q.logvar + 1 + LOG_2PI).sum(-1)
    torch.testing.assert_close(q.entropy(), closed)
    torch.testing.assert_close(q.entropy(), ref.entropy().sum(-1))
    torch.testing.assert_close(q.std, q.logvar.exp().sqrt())
    torch.testing.assert_close(q.var, q.logvar.exp())


def test_diagonal_gaussian_sample_and_mode():
    q = _posterior(2, 3)
    assert torch.equal(q.mode(), q.mean)
    assert q.sample().shape == (2, 3)
    torch.manual_seed(0)
    k = 100_000
    s = q.sample(k)
    assert s.shape == (k, 2, 3)
    assert ((s.mean(0) - q.mean).abs() < 5 * q.std / math.sqrt(k)).all()
    assert ((s.std(0) / q.std - 1).abs() < 0.02).all()


def test_diagonal_gaussian_sample_is_reparameterised():
    mean = torch.zeros(2, 3, requires_grad=True)
    logvar = torch.zeros(2, 3, requires_grad=True)
    DiagonalGaussian(mean, logvar).sample().sum().backward()
    assert torch.equal(mean.grad, torch.ones(2, 3))
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


# ------------------------------------------------------------------------------ free bits

FREE_BITS = [
    # rate (B, D), λ, expected per-sample
    ([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]], 0.5, [3.0, 2.2]),   # dim 0 mean 0.2 < λ
    ([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]], 1.0, [4.0, 3.0]),   # dims 0 and 2 clipped
    ([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]], 3.0, [9.0, 9.0]),   # all dims clipped
    ([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]], 0.0, [2.6, 2.0]),   # off: plain sum
    ([[0.0, 4.0], [1.0, 0.0]], 0.5, [4.0, 1.0]),             # means 0.5, 2: none below λ
    ([[0.2], [0.2], [0.2]], 0.25, [0.25, 0.25, 0.25]),
]


@pytest.mark.parametrize("rate,lam,expected", FREE_BITS)
def test_free_bits_table(rate, lam, expected):
    r = torch.tensor(rate, dtype=torch.float64)
    got = free_bits(r, lam)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    batch = torch.clamp(r.mean(0), min=lam).sum()
    torch.testing.assert_close(got.mean(), batch)


def test_free_bits_gradient_only_above_lambda():
    r = torch.tensor([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]], requires_grad=True)
    free_bits(r, 0.5).sum().backward()
    assert torch.equal(r.grad[:, 0], torch.zeros(2))
    assert (r.grad[:, 1:] != 0).all()


def test_free_bits_zero_is_plain_sum():
    r = torch.rand(7, 5)
    assert torch.equal(free_bits(r, 0.0), r.sum(-1))


def test_negative_free_bits_rejected_by_build():
    with pytest.raises(xae.XaeError):
        xae.build(xae.preset("vae", **{"model.kl.free_bits": -0.1}))


# ------------------------------------------------------------------------ model identities


def _tiny(name: str, **kw) -> xae.Autoencoder:
    torch.manual_seed(0)
    return xae.build(xae.preset(name, latent_dim=3, **{"model.mlp.hidden": [16], **kw}))


def test_vae_loss_is_mean_distortion_plus_beta_rate():
    model = _tiny("vae")
    x = torch.rand(8, 1, 8, 8)
    torch.manual_seed(1)
    out = model(x, beta=0.7)
    torch.testing.assert_close(out.loss, (out.distortion + 0.7 * out.rate).mean())
    torch.testing.assert_close(out.elbo, -(out.distortion + out.rate))
    torch.testing.assert_close(out.rate, out.rate_per_dim.sum(-1))
    torch.testing.assert_close(out.rate_per_dim, model.prior.kl(out.posterior))
    theta = model.decode_params(out.z)
    torch.testing.assert_close(out.distortion, -model.likelihood.log_prob(x, theta))
    torch.testing.assert_close(out.x_mean, torch.sigmoid(theta))
    assert out.beta == 0.7


def test_vae_loss_with_free_bits_uses_clipped_rate():
    model = _tiny("vae", **{"model.kl.free_bits": 0.5})
    x = torch.rand(8, 1, 8, 8)
    out = model(x, beta=2.0)
    clipped = free_bits(out.rate_per_dim, 0.5)
    torch.testing.assert_close(out.loss, (out.distortion + 2.0 * clipped).mean())
    torch.testing.assert_close(out.rate, out.rate_per_dim.sum(-1))  # reported rate unclipped


def test_ae_rate_is_zero():
    model = _tiny("ae")
    out = model(torch.rand(8, 1, 8, 8), beta=3.0)
    assert out.posterior is None
    assert torch.equal(out.rate, torch.zeros(8))
    torch.testing.assert_close(out.loss, out.distortion.mean())


# --------------------------------------------------- importance weighting vs exact pPCA

D_X, K_Z, SIGMA = 20, 2, 0.5


def _ppca(seed: int = 0):
    """A pPCA model with orthogonal columns in W, so the exact posterior is diagonal."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(D_X, K_Z, generator=g, dtype=torch.float64))
    w = q * torch.tensor([3.0, 1.5], dtype=torch.float64)
    mu = torch.randn(D_X, generator=g, dtype=torch.float64)
    z = torch.randn(500, K_Z, generator=g, dtype=torch.float64)
    x = z @ w.T + mu + SIGMA * torch.randn(500, D_X, generator=g, dtype=torch.float64)
    exact = D.MultivariateNormal(mu, w @ w.T + SIGMA**2 * torch.eye(D_X, dtype=torch.float64))
    return w, mu, x, exact.log_prob(x)


def _linear_vae(w, mu, mean_shift: float = 0.0, logvar_shift: float = 0.0,
                dtype=torch.float64, **overrides) -> xae.Autoencoder:
    """The linear-vae preset with the decoder set to (W, μ, σ) and the encoder set to the exact
    pPCA posterior N(M⁻¹Wᵀ(x−μ), σ²M⁻¹), M = WᵀW + σ²I (optionally perturbed)."""
    model = xae.build(xae.preset("linear-vae", **overrides)).to(dtype)
    assert model.data_shape == (D_X,) and model.latent_dim == K_Z
    m = w.T @ w + SIGMA**2 * torch.eye(K_Z, dtype=torch.float64)
    assert torch.allclose(m, torch.diag(torch.diag(m)))  # diagonal: W has orthogonal columns
    a = torch.linalg.solve(m, w.T)  # M⁻¹Wᵀ, (K, D)
    proj = model.bottleneck.proj
    dec = model.decoder.net[0]
    assert isinstance(dec, torch.nn.Linear) and dec.weight.shape == (D_X, K_Z)
    with torch.no_grad():
        proj.weight.zero_()
        proj.weight[:K_Z] = a
        proj.bias[:K_Z] = -a @ mu + mean_shift
        proj.bias[K_Z:] = torch.log(SIGMA**2 / torch.diag(m)) + logvar_shift
        dec.weight.copy_(w)
        dec.bias.copy_(mu)
        model.likelihood.log_scale.fill_(math.log(SIGMA))
    return model


@pytest.mark.parametrize("k,chunk", [(1, 100), (7, 3), (250, 100)])
def test_iw_log_likelihood_with_exact_posterior_is_exact(k, chunk):
    w, mu, x, exact = _ppca()
    model = _linear_vae(w, mu)
    torch.manual_seed(0)
    ll = xae.log_likelihood(model, x[:50], k=k, batch_size=20, chunk=chunk)
    assert ll.shape == (50,)
    torch.testing.assert_close(ll, exact[:50], rtol=0, atol=1e-9)


def test_iw_log_likelihood_exact_in_float32():
    w, mu, x, exact = _ppca()
    model = _linear_vae(w, mu, dtype=torch.float32)
    torch.manual_seed(0)
    ll = xae.log_likelihood(model, x[:50].float(), k=20)
    torch.testing.assert_close(ll.double(), exact[:50], rtol=0, atol=2e-3)


def test_mc_elbo_with_exact_posterior_is_exact():
    """log p(x|z) + log p(z) − log q(z|x) = log p(x) for every z when q is the posterior."""
    w, mu, x, exact = _ppca()
    model = _linear_vae(w, mu, **{"model.kl.estimator": "mc"})
    torch.manual_seed(0)
    out = model(x[:50])
    torch.testing.assert_close(out.elbo, exact[:50], rtol=0, atol=1e-9)


def test_evaluate_bounds_for_a_non_optimal_posterior():
    w, mu, x, exact = _ppca()
    model = _linear_vae(w, mu, mean_shift=0.3, logvar_shift=1.0)
    torch.manual_seed(0)
    res = xae.evaluate_model(model, x)
    # the ELBO is a strict lower bound here: the gap KL(q ‖ p(z|x)) is about 2.8 nats
    assert res["neg_elbo"] >= -exact.mean().item() + 0.3
    torch.testing.assert_close(res["neg_elbo"], res["distortion"] + res["rate"])
    # the IW bound with K = 200 lies between the ELBO and the exact log-likelihood
    torch.manual_seed(0)
    iw = xae.log_likelihood(model, x, k=200).mean().item()
    assert -res["neg_elbo"] + 0.3 < iw <= exact.mean().item() + 0.02
