"""The MMD (WAE / InfoVAE) and total-correlation (β-TCVAE) regularizers against closed forms:
MMD² zero in expectation for equal distributions, the InfoVAE weighting, the TC of Gaussians
with known correlation, the exact MI + TC + dimension-wise KL identity, gradients, bad
arguments, and a short training run of each on the bundled digits."""
from __future__ import annotations

import math

import pytest
import torch

import xae
from xae.data import load as load_data
from xae.distributions import DiagonalGaussian
from xae.evaluate.holes import mixture_log_density
from xae.mmd import mmd2
from xae.outputs import BottleneckOutput
from xae.priors import StandardNormal
from xae.regularizers import KL, MMD, REGULARIZERS, TotalCorrelation
from xae.regularizers.tc import decompose

POST_STD = 0.3  # wide enough that the batch mixture is smooth: the TC tests' bias is < 0.02


def _posterior(b: int = 64, d: int = 5, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> tuple[DiagonalGaussian, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = DiagonalGaussian(torch.randn(b, d, generator=g, dtype=dtype),
                         0.5 * torch.randn(b, d, generator=g, dtype=dtype) - 1.0)
    return q, q.mean + q.std * torch.randn(b, d, generator=g, dtype=dtype)


def _correlated_batch(rho: float, seed: int, m: int = 1000) -> tuple[DiagonalGaussian,
                                                                      torch.Tensor]:
    """M posteriors N(μ_i, s² I) in 2-D whose means are N(0, Σ − s² I), so that the aggregate
    posterior, their mixture, tends to N(0, Σ) with unit variances and correlation ρ, whose
    total correlation is −½ log(1 − ρ²)."""
    g = torch.Generator().manual_seed(seed)
    s2 = POST_STD**2
    cov = torch.tensor([[1 - s2, rho], [rho, 1 - s2]], dtype=torch.float64)
    mean = torch.randn(m, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    q = DiagonalGaussian(mean, torch.full_like(mean, math.log(s2)))
    return q, mean + POST_STD * torch.randn(m, 2, generator=g, dtype=torch.float64)


def test_both_are_registered():
    assert REGULARIZERS["mmd"] is MMD and REGULARIZERS["tc"] is TotalCorrelation


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_is_zero_in_expectation_for_equal_distributions_and_positive_for_a_shift(kernel):
    torch.manual_seed(0)
    reg, prior = MMD(kernel=kernel), StandardNormal(4)
    assert not reg.needs_posterior and not reg.is_kl
    rates = [reg(BottleneckOutput(torch.randn(32, 4)), prior).total for _ in range(200)]
    assert rates[0].shape == (32,) and bool((rates[0] == rates[0][0]).all())
    values = torch.stack([r[0] for r in rates]).double()
    se = values.std() / math.sqrt(len(values))
    assert abs(values.mean()) < 3 * se
    shifted = torch.stack([reg(BottleneckOutput(torch.randn(32, 4) + 1), prior).total[0]
                           for _ in range(20)])
    assert shifted.mean() > 10 * values.std() and bool((shifted > 0).all())


def test_infovae_weights_kl_and_mmd():
    q, z = _posterior()
    out, prior = BottleneckOutput(z, q), StandardNormal(5)
    kl = KL()(out, prior).total
    pure_kl = MMD(info_alpha=0.0, info_lambda=1.0)
    assert pure_kl.needs_posterior and torch.equal(pure_kl(out, prior).total, kl)
    reg = MMD(kernel="rbf", info_alpha=0.5, info_lambda=2.0)
    torch.manual_seed(3)
    rate = reg(out, prior)
    assert set(rate.terms) == {"kl", "mmd"}
    rate = rate.total
    torch.manual_seed(3)
    mmd = mmd2(z, prior.sample(64).double(), kernel="rbf")
    assert rate.shape == (64,)
    torch.testing.assert_close(rate, 0.5 * kl + 1.5 * mmd)
    assert reg.needs_posterior and abs(mmd.item()) > 1e-4  # the MMD part is really there


def test_a_wae_builds_on_a_deterministic_code_but_an_infovae_does_not():
    model = xae.build(xae.preset("ae", **{"model.regularizer": "mmd"}))
    out = model(torch.rand(16, 1, 8, 8), beta=10.0)
    assert torch.isfinite(out.loss) and out.rate.shape == (16,) and out.rate_per_dim is None
    with pytest.raises(xae.XaeError, match="needs a posterior"):
        xae.build(xae.preset("ae", **{"model.regularizer": "mmd", "model.mmd.info_alpha": 0.5}))


def test_tc_is_near_zero_for_independent_dimensions_and_matches_the_gaussian_closed_form():
    prior = StandardNormal(2)
    q, z = _correlated_batch(0.0, seed=0)
    assert abs(decompose(z, q, prior, dataset_size=1000).tc.mean().item()) < 0.03
    rho = 0.8
    tcs = [decompose(z, q, prior, dataset_size=1000).tc.mean().item()
           for q, z in (_correlated_batch(rho, seed=s) for s in range(1, 5))]
    exact = -0.5 * math.log(1 - rho**2)  # 0.511 nats
    # measured over 20 batches: bias +0.011 (ρ = 0) and +0.004 (ρ = 0.8), batch sd 0.026
    assert sum(tcs) / len(tcs) == pytest.approx(exact, abs=0.05) and min(tcs) > 0.4


def test_with_the_batch_as_the_data_set_q_of_z_is_the_exact_mixture():
    q, z = _posterior(b=50, d=3)
    t = decompose(z, q, StandardNormal(3), dataset_size=0)
    log_qz = q.log_prob(z) - t.mi
    torch.testing.assert_close(log_qz, mixture_log_density(z, q))


@pytest.mark.parametrize("dataset_size", [0, 64, 10_000])
def test_mi_tc_and_dim_kl_sum_to_the_monte_carlo_kl(dataset_size):
    q, z = _posterior()
    prior = StandardNormal(5)
    t = decompose(z, q, prior, dataset_size)
    mc_kl = q.log_prob(z) - prior.log_prob(z)
    assert t.mi.shape == t.tc.shape == t.dim_kl.shape == (64,)
    torch.testing.assert_close(t.mi + t.tc + t.dim_kl, mc_kl, rtol=0, atol=1e-10)
    out = BottleneckOutput(z, q)
    vae = TotalCorrelation(weight=1.0, dataset_size=dataset_size)
    assert vae.is_kl and not TotalCorrelation().is_kl
    torch.testing.assert_close(vae(out, prior).total, mc_kl, rtol=0, atol=1e-10)
    torch.testing.assert_close(TotalCorrelation(dataset_size=dataset_size)(out, prior).total,
                               t.mi + 6 * t.tc + t.dim_kl)


def test_gradients_flow_from_both_rates():
    prior = StandardNormal(3)
    for reg in (TotalCorrelation(dataset_size=1000), MMD(info_alpha=0.5, info_lambda=2.0)):
        mean = torch.randn(32, 3, requires_grad=True)
        logvar = torch.full((32, 3), -1.0, requires_grad=True)
        q = DiagonalGaussian(mean, logvar)
        reg(BottleneckOutput(q.sample(), q), prior).total.sum().backward()
        for grad in (mean.grad, logvar.grad):
            assert bool(torch.isfinite(grad).all()) and grad.abs().sum() > 0
    z = torch.randn(32, 3, requires_grad=True)
    MMD()(BottleneckOutput(z), prior).total.sum().backward()
    assert bool(torch.isfinite(z.grad).all()) and z.grad.abs().sum() > 0


@pytest.mark.parametrize("make, match", [
    (lambda: MMD(kernel="gauss"), "model.mmd.kernel"),
    (lambda: MMD(info_alpha=1.5), "model.mmd.info_alpha"),
    (lambda: MMD(info_alpha=0.5, info_lambda=0.2), "model.mmd.info_lambda"),
    (lambda: TotalCorrelation(weight=-1.0), "model.tc.weight"),
    (lambda: TotalCorrelation(weight=float("nan")), "model.tc.weight"),
    (lambda: TotalCorrelation(dataset_size=-5), "model.tc.dataset_size"),
])
def test_bad_arguments_say_which_key_to_fix(make, match):
    with pytest.raises(xae.XaeError, match=match):
        make()


def test_batches_of_one_and_a_non_factorized_prior_are_user_errors():
    q, z = _posterior(b=1)
    for reg in (MMD(), TotalCorrelation()):
        with pytest.raises(xae.XaeError, match="train.batch_size"):
            reg(BottleneckOutput(z, q), StandardNormal(5))
    with pytest.raises(xae.XaeError, match="factorized"):
        xae.build(xae.preset("vae", **{"model.regularizer": "tc", "model.prior": "mog"}))
    with pytest.raises(xae.XaeError, match="model.mmd.kernel"):
        xae.build(xae.preset("ae", **{"model.regularizer": "mmd", "model.mmd.kernel": "x"}))


@pytest.mark.parametrize("name, overrides, posterior", [
    ("vae", {"model.regularizer": "tc", "model.tc.weight": 6.0}, True),
    ("vae", {"model.regularizer": "mmd", "model.mmd.info_alpha": 0.0,
             "model.mmd.info_lambda": 100.0}, True),
    ("ae", {"model.regularizer": "mmd", "beta.value": 10.0}, False),
])
def test_each_trains_on_digits_and_evaluates(tmp_path, name, overrides, posterior):
    cfg = xae.preset(name, latent_dim=2, steps=30, progress=False, figures=False,
                     **{"model.mlp.hidden": [64], **overrides})
    model = xae.load(xae.train(cfg, tmp_path / "run"))
    x = load_data(cfg.data).test_x
    m = xae.evaluate_model(model, x).metrics
    assert all(math.isfinite(v) for v in m.values())
    if posterior:  # the rate is not the KL, so the KL is reported beside it
        assert m["neg_elbo"] == pytest.approx(m["distortion"] + m["kl"])
        assert m["kl"] != pytest.approx(m["rate"])
    else:
        assert "neg_elbo" not in m and "kl" not in m
