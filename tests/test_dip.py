"""DIP-VAE's penalty (Kumar et al. 2018) against covariances worked out by hand: type I on the
posterior means, type II with the mean posterior variance added to the diagonal; the prior
itself as a posterior, the loss it adds, and bad settings."""
from __future__ import annotations

import math

import pytest
import torch

import xae
from xae.distributions import DiagonalGaussian
from xae.outputs import BottleneckOutput
from xae.priors import StandardNormal
from xae.regularizers import DIP, REGULARIZERS

# four means with batch mean 0: Cov = ¼ Σ μμᵀ = [[2.5, 1], [1, 2]] (1/B, as the paper's)
MEANS = torch.tensor([[1.0, 2.0], [-1.0, -2.0], [2.0, 0.0], [-2.0, 0.0]], dtype=torch.float64)
# posterior variances: 0.5 on dimension 0, 1 or 3 on dimension 1 (means 0.5 and 2)
VARS = torch.tensor([[0.5, 1.0], [0.5, 3.0], [0.5, 1.0], [0.5, 3.0]], dtype=torch.float64)


def _rate(kind: str, mean: torch.Tensor, var: torch.Tensor, od: float = 3.0, d: float = 5.0):
    q = DiagonalGaussian(mean, var.log())
    return DIP(kind=kind, lambda_od=od, lambda_d=d)(BottleneckOutput(mean, q),
                                                     StandardNormal(mean.shape[1]))


@pytest.mark.parametrize("kind, expected", [
    # I: C = [[2.5, 1], [1, 2]]: 3·(1² + 1²) + 5·((2.5 − 1)² + (2 − 1)²) = 6 + 16.25
    ("i", 22.25),
    # II: C + diag(0.5, 2) = [[3, 1], [1, 4]]: 3·2 + 5·((3 − 1)² + (4 − 1)²) = 6 + 65
    ("ii", 71.0),
])
def test_the_penalty_is_the_hand_computed_one_on_every_sample(kind, expected):
    rate = _rate(kind, MEANS, VARS)
    assert set(rate.terms) == {"kl", "dip"}
    assert torch.allclose(rate.terms["dip"].value, torch.full((4,), expected, dtype=torch.float64))
    # the covariance is centred: moving every mean by the same vector changes nothing
    shifted = _rate(kind, MEANS + torch.tensor([3.0, -7.0], dtype=torch.float64), VARS)
    assert shifted.terms["dip"].value[0].item() == pytest.approx(expected)
    # and the KL beside it is the closed form ½ Σ (μ² + σ² − log σ² − 1)
    kl = 0.5 * (MEANS**2 + VARS - VARS.log() - 1).sum(-1)
    assert torch.allclose(rate.terms["kl"].value, kl)


def test_the_prior_as_every_posterior_costs_nothing_in_type_ii_only():
    """q(z|x) = N(0, I) for every x: the aggregate posterior is the prior (II: no penalty, no
    KL), but the means do not vary at all (I: each variance 1 short, λ_d·D)."""
    zeros, ones = torch.zeros(6, 3, dtype=torch.float64), torch.ones(6, 3, dtype=torch.float64)
    ii, i = _rate("ii", zeros, ones), _rate("i", zeros, ones)
    assert ii.terms["dip"].value.abs().max().item() == 0 and ii.total.abs().max().item() == 0
    assert i.terms["dip"].value[0].item() == pytest.approx(5.0 * 3)


def test_the_loss_is_the_elbo_plus_the_penalty_and_trains_the_encoder():
    torch.manual_seed(0)
    model = xae.build(xae.preset("dip-vae-ii", latent_dim=3, **{"model.mlp.hidden": [16]}))
    x = xae.data.load(xae.preset("vae").data).train_x[:32]
    out = model(x)
    t = out.terms
    assert out.loss.item() == pytest.approx(
        (t["distortion"].value + t["kl"].value + t["dip"].value).mean().item(), rel=1e-6)
    out.terms["dip"].value.mean().backward()  # the penalty alone reaches the encoder
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_the_presets_follow_the_papers_ratio_of_lambda_d_to_lambda_od():
    for name, ratio in (("dip-vae-i", 10), ("dip-vae-ii", 1)):
        s = xae.preset(name).model.dip
        assert s.kind == name.rsplit("-", 1)[1] and s.lambda_d == ratio * s.lambda_od
    assert REGULARIZERS["dip"] is DIP


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "iii"}, "model.dip.kind"),
    ({"lambda_od": -1.0}, "model.dip.lambda_od"),
    ({"lambda_d": math.inf}, "model.dip.lambda_d"),
])
def test_bad_settings_name_the_key(kwargs, match):
    with pytest.raises(xae.XaeError, match=match):
        DIP(**kwargs)


def test_bad_config_and_batches_of_one_are_user_errors():
    with pytest.raises(xae.XaeError, match="model.dip.kind"):
        xae.build(xae.preset("dip-vae-i", **{"model.dip.kind": "iii"}))
    with pytest.raises(xae.XaeError, match="train.batch_size"):
        _rate("i", MEANS[:1], VARS[:1])
    with pytest.raises(xae.XaeError, match="model.regularizer"):
        xae.build(xae.preset("ladder-vae", **{"model.regularizer": "dip"}))
