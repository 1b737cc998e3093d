"""Evaluation against closed forms: the IW estimate and its gap on a linear-Gaussian model,
active units on constructed encoders, MMD, the holes fraction, and the collapse warning."""
from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import TINY, run_xae
from test_math import SIGMA, _linear_vae, _ppca

import xae
from xae.distributions import DiagonalGaussian
from xae.evaluate.diagnostics import active_units, rate_distortion
from xae.evaluate.holes import holes, mixture_log_density
from xae.mmd import SCALES, mmd2

MEAN_SHIFT, LOGVAR_SHIFT = 0.3, 1.0


def _perturbed():
    """A linear-Gaussian model whose q(z|x) is the exact posterior shifted in mean and
    widened, and the closed-form gap KL(q(z|x) ‖ p(z|x)) per datum."""
    w, mu, x, exact = _ppca()
    model = _linear_vae(w, mu, mean_shift=MEAN_SHIFT, logvar_shift=LOGVAR_SHIFT)
    m_diag = torch.diag(w.T @ w) + SIGMA**2
    var_p = SIGMA**2 / m_diag                        # exact posterior variances (diagonal)
    var_q = var_p * math.exp(LOGVAR_SHIFT)
    kl = 0.5 * (var_q / var_p + MEAN_SHIFT**2 / var_p - 1 - torch.log(var_q / var_p)).sum()
    return model, x, exact, float(kl)


def test_k_sample_elbo_and_gap_match_the_closed_form():
    model, x, exact, kl = _perturbed()
    s = xae.likelihood_report(model, x[:100], k=4000, seed=1).summary()
    elbo = exact[:100].mean().item() - kl
    assert s["neg_elbo_k"] == pytest.approx(-elbo, abs=4 * s["neg_elbo_k_se"] / 10 + 0.02)
    # the IW estimate is below the exact value and, at K = 4000, within 0.05 nats of it
    nll_exact = -exact[:100].mean().item()
    assert nll_exact - 0.01 <= s["nll_iw"] <= nll_exact + 0.05
    assert s["gap"] == pytest.approx(kl, abs=0.05)
    assert s["bits_per_dim_iw"] == pytest.approx(s["nll_iw"] / (20 * math.log(2)))


def test_iw_estimate_converges_to_the_exact_value_from_below():
    model, x, exact, kl = _perturbed()
    errors = []
    for k in (1, 10, 100, 1000):
        ll = xae.log_likelihood(model, x[:200], k=k, seed=k)
        errors.append((exact[:200] - ll).mean().item())
    assert all(e > -0.01 for e in errors)                    # a lower bound (up to noise)
    assert all(a > b for a, b in zip(errors, errors[1:]))   # tighter with every K
    assert errors[0] == pytest.approx(kl, rel=0.15) and errors[-1] < 0.1


def test_k1_iw_equals_the_elbo_in_expectation():
    model, x, exact, kl = _perturbed()
    draws = torch.stack([xae.log_likelihood(model, x[:100], k=1, seed=s) for s in range(200)])
    elbo = exact[:100] - kl
    se = draws.mean(1).std() / math.sqrt(200)
    assert abs(draws.mean().item() - elbo.mean().item()) < 4 * se.item()


def test_likelihood_is_deterministic_given_a_seed_and_leaves_the_rng_alone():
    model, x, _, _ = _perturbed()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = xae.log_likelihood(model, x[:30], k=50, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a, xae.log_likelihood(model, x[:30], k=50, seed=7))
    assert not torch.equal(a, xae.log_likelihood(model, x[:30], k=50, seed=8))


def test_likelihood_of_a_deterministic_model_is_a_clear_error():
    model = xae.build(xae.preset("ae"))
    with pytest.raises(xae.XaeError, match="plain autoencoder.*stochastic bottleneck"):
        xae.log_likelihood(model, torch.rand(4, 1, 8, 8), k=10)
    with pytest.raises(xae.XaeError, match="positive integer"):
        xae.log_likelihood(xae.build(xae.preset("vae")), torch.rand(4, 1, 8, 8), k=0)


# ------------------------------------------------------------------------- active units

def test_active_units_on_constructed_means():
    g = torch.Generator().manual_seed(0)
    stds = torch.tensor([1.0, 0.2, 0.11, 0.09, 0.0])  # variances 1, .04, .0121, .0081, 0
    means = torch.randn(20_000, 5, generator=g) * stds + 3.0
    assert active_units(means).tolist() == [True, True, True, False, False]


def test_active_units_through_a_constructed_encoder():
    """A linear encoder whose posterior mean copies chosen pixels with chosen gains."""
    model = xae.build(xae.preset("vae", latent_dim=4, **{"model.mlp.hidden": []}))
    x = torch.rand(2000, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    pixel_var = x.flatten(1)[:, 10].var().item()       # about 1/12
    gains = [1.0, 0.5, 0.2, 0.0]                       # variances ≈ .083, .021, .0033, 0
    with torch.no_grad():
        model.bottleneck.proj.weight.zero_()
        model.bottleneck.proj.bias.zero_()
        for j, g in enumerate(gains):
            model.bottleneck.proj.weight[j, 10] = g
    result = xae.evaluate_model(model, x, hole_metrics=False)
    expected = sum(g * g * pixel_var > 0.01 for g in gains)
    assert result["active_units"] == expected == 2


# ---------------------------------------------------------------------------------- MMD

def _mmd2_closed_form(shift: torch.Tensor, dim: int) -> float:
    """RBF MMD² between N(0, I) and N(shift, I): E exp(−‖u‖²/C) for u ~ N(m, 2I) is
    (1 + 4/C)^(−D/2) exp(−‖m‖²/(C + 4)), summed over the kernel's scales."""
    total = 0.0
    for s in SCALES:
        c = 2 * dim * s
        base = (1 + 4 / c) ** (-dim / 2)
        total += 2 * base - 2 * base * math.exp(-float(shift.pow(2).sum()) / (c + 4))
    return total


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_is_near_zero_for_one_distribution_and_large_for_a_shift(kernel):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 1500, 4, generator=g, dtype=torch.float64)
    same = [mmd2(torch.randn(300, 4, generator=g), torch.randn(300, 4, generator=g), kernel)
            for _ in range(40)]
    same_t = torch.stack(same)
    assert abs(same_t.mean()) < 4 * same_t.std() / math.sqrt(40)   # unbiased: zero mean
    shifted = mmd2(a, b + 1.0, kernel)
    assert shifted > 50 * same_t.std()


def test_rbf_mmd_matches_its_closed_form():
    g = torch.Generator().manual_seed(1)
    shift = torch.tensor([1.0, -0.5, 0.0])
    x = torch.randn(2000, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2000, 3, generator=g, dtype=torch.float64) + shift
    assert mmd2(x, y, "rbf").item() == pytest.approx(_mmd2_closed_form(shift, 3), rel=0.05)


# -------------------------------------------------------------------------------- holes

def test_mixture_log_density_matches_a_direct_sum():
    g = torch.Generator().manual_seed(0)
    q = DiagonalGaussian(torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g))
    z = torch.randn(7, 3, generator=g)
    comps = torch.distributions.Normal(q.mean, q.std)            # (7, 3)
    logn = comps.log_prob(z.unsqueeze(1)).sum(-1).double()        # (M=7, N=7)
    full = torch.logsumexp(logn, 1) - math.log(7)
    torch.testing.assert_close(mixture_log_density(z, q), full)
    loo = torch.logsumexp(logn.masked_fill(torch.eye(7, dtype=torch.bool), -math.inf), 1)
    torch.testing.assert_close(mixture_log_density(z, q, leave_out_self=True), loo - math.log(6))


@pytest.mark.parametrize("spread,expect_holes", [(1.0, False), (0.3, True)])
def test_holes_fraction_is_one_percent_when_q_covers_p(spread, expect_holes):
    """Posteriors N(μ_n, s²) with μ_n ~ N(0, (1 − s²)·I) aggregate to N(0, I) (fraction ≈ 1%);
    squeezed means (spread 0.3) leave most of the prior uncovered."""
    torch.manual_seed(0)
    n, d, s2 = 4000, 2, 0.05
    mean = torch.randn(n, d) * math.sqrt(1 - s2) * spread
    q = DiagonalGaussian(mean, torch.full((n, d), math.log(s2)))
    h = holes(xae.build(xae.preset("vae", latent_dim=d)), q, q.sample())  # its N(0, I) prior
    if expect_holes:
        assert h.fraction > 0.3 and h.mmd > 0.05
    else:
        assert 0.003 < h.fraction < 0.03 and abs(h.mmd) < 0.01


class _ScaledPrior:
    """A model whose prior is N(0, c²·I): a learned prior may settle at any scale, the decoder
    absorbing it. (``holes`` reads the prior's draws and whether the code is a hierarchy.)"""

    hierarchical = False

    def __init__(self, dim: int, c: float) -> None:
        self.dim, self.c = dim, c

    def sample_z(self, n: int) -> torch.Tensor:
        return self.c * torch.randn(n, self.dim)


def test_the_holes_metrics_do_not_change_when_the_latent_space_is_rescaled():
    n, d, s2, spread = 3000, 3, 0.05, 0.6
    scores = []
    for c in (1.0, 0.3):
        torch.manual_seed(0)
        mean = c * torch.randn(n, d) * math.sqrt(1 - s2) * spread
        q = DiagonalGaussian(mean, torch.full((n, d), math.log(c * c * s2)))
        h = holes(_ScaledPrior(d, c), q, q.sample())
        scores.append((h.mmd, h.fraction))
    assert scores[0][0] > 0.02  # a real mismatch, seen at both scales alike
    assert scores[1][0] == pytest.approx(scores[0][0], rel=1e-4)
    assert scores[1][1] == pytest.approx(scores[0][1], abs=1e-9)


# ----------------------------------------------------------------------------- collapse

def test_collapse_warning_fires_on_a_forced_collapse(caplog):
    """An encoder that ignores x and outputs N(0, I): zero rate, no active unit."""
    model = xae.build(xae.preset("vae", latent_dim=4))
    with torch.no_grad():
        model.bottleneck.proj.weight.zero_()
        model.bottleneck.proj.bias.zero_()
    result = xae.evaluate_model(model, torch.rand(64, 1, 8, 8), hole_metrics=False)
    assert result["rate"] == 0.0 and result["active_units"] == 0
    assert len(result.warnings) == 2 and all("posterior collapse" in w for w in result.warnings)
    assert "posterior collapse" in caplog.text
    assert result.rate_per_dim == [0.0] * 4


def test_no_collapse_warning_for_a_healthy_posterior():
    model, x, _, _ = _perturbed()
    result = xae.evaluate_model(model, x)
    assert result.warnings == [] and result["active_units"] == 2
    assert sum(result.rate_per_dim) == pytest.approx(result["rate"])


def test_rate_distortion_keeps_per_sample_terms_and_is_seeded():
    model, x, _, _ = _perturbed()
    a, b = rate_distortion(model, x, seed=3), rate_distortion(model, x, seed=3)
    assert a.distortion.shape == a.rate.shape == (500,) and a.rate_per_dim.shape == (500, 2)
    assert torch.equal(a.distortion, b.distortion) and torch.equal(a.codes, b.codes)
    torch.testing.assert_close(a.rate_per_dim.sum(-1), a.rate)


# ---------------------------------------------------------------------------------- CLI

def test_eval_cli_writes_eval_json_and_warns_on_collapse(tmp_path):
    run = tmp_path / "collapsed"
    p = run_xae("train", "--preset", "vae", "--steps", "100", "--set", *TINY, "beta.value=300",
                "--out", str(run))
    assert p.returncode == 0, p.stderr
    assert "posterior collapse" in p.stderr
    assert json.loads((run / "metrics.json").read_text())["warnings"]
    p = run_xae("eval", str(run), "--k", "20", "--seed", "4")
    assert p.returncode == 0, p.stderr
    assert "posterior collapse" in p.stderr and "nll_iw" in p.stdout
    report = json.loads((run / "eval.json").read_text())
    for key in ("nll_iw", "nll_iw_se", "gap", "neg_elbo_k", "mse", "psnr", "ssim", "holes_mmd"):
        assert math.isfinite(report["test"][key])
    assert report["test"]["active_units"] <= 2 and "fid_lenet" in report["skipped"]


def test_eval_cli_refuses_a_likelihood_for_a_plain_autoencoder(tmp_path):
    """A plain AE has a point-mass code: no ELBO, no likelihood. `xae eval` reports its
    distortion and image metrics, says why the likelihood is missing, and refuses --k."""
    run = tmp_path / "ae"
    assert run_xae("train", "--preset", "ae", "--steps", "20", "--no-progress", "--set", *TINY,
                   "--out", str(run)).returncode == 0
    final = json.loads((run / "metrics.json").read_text())["test"]
    assert {"neg_elbo", "bits_per_dim", "kl"}.isdisjoint(final) and "distortion" in final
    p = run_xae("eval", str(run), "--k", "10")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith("xae: error: a plain autoencoder") and len(
        p.stderr.strip().splitlines()) == 1, p.stderr
    assert "has no likelihood" in p.stderr and "--preset vae" in p.stderr
    assert not (run / "eval.json").exists()
    p = run_xae("eval", str(run), "--no-progress")
    assert p.returncode == 0, p.stderr
    rows = [line.split()[0] for line in p.stdout.splitlines() if line.startswith("  ")
            and not line.lstrip().startswith("(")]
    assert "distortion" in rows and {"neg_elbo", "bits_per_dim", "nll_iw"}.isdisjoint(rows)
    assert "(likelihood not measured: a plain autoencoder" in p.stdout and "ELBO" in p.stdout
    report = json.loads((run / "eval.json").read_text())
    assert {"neg_elbo", "bits_per_dim", "nll_iw", "kl"}.isdisjoint(report["test"])
    for key in ("distortion", "mse", "psnr", "ssim", "holes_mmd"):
        assert math.isfinite(report["test"][key])
    assert "plain autoencoder" in report["skipped"]["likelihood"]


def test_a_deterministic_code_has_no_elbo_but_a_discrete_one_keeps_its_bound():
    """xae.evaluate: the AE's −ELBO used to be reported as its distortion (a KL of 0 to the
    prior; a point mass has an infinite one). A quantizer's KL to its code prior is exact."""
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    m = xae.evaluate_model(xae.build(xae.preset("ae")), x).metrics
    assert {"neg_elbo", "bits_per_dim", "kl"}.isdisjoint(m) and m["distortion"] > 0
    vq = xae.build(xae.preset("vq-vae", **{"model.vq.codebook_size": 16}))
    m = xae.evaluate_model(vq, x, hole_metrics=False).metrics
    assert m["neg_elbo"] == pytest.approx(m["distortion"] + m["kl"])
    assert m["kl"] == pytest.approx(16 * math.log(16), rel=1e-6)  # P = 256/16 positions, K = 16


@pytest.mark.parametrize("n,size,expected", [(7, 3, [3, 4]), (6, 3, [3, 3]), (1, 3, [1]),
                                             (1001, 1000, [1001]), (5, 2, [2, 3])])
def test_evaluation_batches_cover_the_data_without_a_batch_of_one(n, size, expected):
    from xae.evaluate.common import batches

    parts = list(batches(torch.arange(n), size))
    assert [len(p) for p in parts] == expected
    assert torch.equal(torch.cat(parts), torch.arange(n))
