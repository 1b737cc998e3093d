"""The annealed capacity of Burgess et al. (2018), loss γ·|KL − C| with C raised linearly from
0 to C_max over N steps: the loss at the ends and in between of the ramp, the gradient's sign on
either side of the target, the rate reported as the KL, and C as the trainer sees it."""
from __future__ import annotations

import json

import pytest
import torch

import xae
from xae.distributions import DiagonalGaussian
from xae.outputs import BottleneckOutput
from xae.priors import StandardNormal
from xae.regularizers import REGULARIZERS, Capacity
from xae.regularizers.capacity import capacity_at

GAMMA, C_MAX, N = 7.0, 4.0, 100


def _posterior(scale: float, b: int = 8, d: int = 3) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(1)
    mean = scale * torch.randn(b, d, generator=g, dtype=torch.float64)
    return DiagonalGaussian(mean.requires_grad_(), torch.full_like(mean, -0.5))


def _closed_kl(q: DiagonalGaussian) -> torch.Tensor:
    return 0.5 * (q.mean**2 + q.logvar.exp() - q.logvar - 1).sum(-1)


def _loss(q: DiagonalGaussian, step: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    rate = Capacity(gamma=GAMMA, c_max=C_MAX, ramp_steps=N)(BottleneckOutput(q.mean, q),
                                                            StandardNormal(3), step)
    term = rate.terms["rate"]
    assert set(rate.terms) == {"rate"} and torch.allclose(term.value, _closed_kl(q))
    return (term.weight * term.for_loss).mean(), rate.metrics["capacity"]


@pytest.mark.parametrize("step, c", [(0, 0.0), (25, 1.0), (50, 2.0), (N, C_MAX), (10 * N, C_MAX),
                                     (None, C_MAX)])
def test_the_loss_is_gamma_times_the_distance_of_the_mean_kl_from_a_linear_capacity(step, c):
    assert capacity_at(step, C_MAX, N) == pytest.approx(c)
    for scale in (0.3, 3.0):  # a mean KL below C_max and one above it
        q = _posterior(scale)
        loss, logged = _loss(q, step)
        kl = _closed_kl(q).mean().item()
        assert loss.item() == pytest.approx(GAMMA * abs(kl - c))
        assert torch.all(logged == c)
    assert _loss(_posterior(3.0), 0)[0].item() == pytest.approx(GAMMA * _closed_kl(
        _posterior(3.0)).mean().item())  # step 0: γ·KL, the β-VAE with β = γ


def test_the_gradient_pushes_the_kl_down_above_the_target_and_up_below_it():
    """∂KL_b/∂μ_b = μ_b for the closed form, so ∂(γ·|mean KL − C|)/∂μ = ±γ·μ / B."""
    for scale, step, sign in ((3.0, 0, 1.0), (0.3, N, -1.0)):
        q = _posterior(scale)
        assert (_closed_kl(q).mean().item() > capacity_at(step, C_MAX, N)) == (sign > 0)
        loss, _ = _loss(q, step)
        (grad,) = torch.autograd.grad(loss, q.mean)
        assert torch.allclose(grad, sign * GAMMA * q.mean.detach() / q.mean.shape[0])


def test_training_passes_the_step_and_reports_the_kl_as_the_rate(tmp_path):
    """The logged capacity is the mean of C over each window of 5 steps (steps 0..4, 5..9,
    ...), and the evaluation's ELBO is distortion + KL, since the rate stays the KL."""
    cfg = xae.preset("annealed-vae", latent_dim=2, steps=20, progress=False, figures=False,
                     log_every=5, **{"model.capacity.ramp_steps": 10,
                                     "model.capacity.c_max": 4.0, "model.mlp.hidden": [16]})
    run = xae.train(cfg, tmp_path / "run")
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for log in logs:
        window = range(log["step"] - 5, log["step"])
        expected = sum(capacity_at(t, 4.0, 10) for t in window) / 5
        assert log["capacity"] == pytest.approx(expected, rel=1e-6)
    assert [log["step"] for log in logs] == [5, 10, 15, 20]
    model = xae.load(run)
    assert model.regularizer.is_kl and REGULARIZERS["capacity"] is Capacity
    m = xae.evaluate_model(model, xae.data.load(cfg.data).test_x[:64]).metrics
    assert m["neg_elbo"] == pytest.approx(m["distortion"] + m["rate"]) and "kl" not in m


@pytest.mark.parametrize("kwargs, match", [
    ({"gamma": 0.0}, "model.capacity.gamma"),
    ({"c_max": -1.0}, "model.capacity.c_max"),
    ({"ramp_steps": 0}, "model.capacity.ramp_steps"),
])
def test_bad_settings_name_the_key(kwargs, match):
    with pytest.raises(xae.XaeError, match=match):
        Capacity(**kwargs)
    key, value = next(iter(kwargs.items()))
    with pytest.raises(xae.XaeError, match=match):
        xae.build(xae.preset("annealed-vae", **{f"model.capacity.{key}": value}))
