"""The reconstruction loss of latent diffusion's autoencoders (model.likelihood=
reconstruction): its value against the formula, ST-LPIPS kept out of the run's weights, no
likelihood claimed for it, a training run, and clear errors."""
from __future__ import annotations

import math

import pytest
import torch

import xae
from xae.evaluate.images import ssim
from xae.evaluate.likelihood import require_likelihood
from xae.likelihoods.reconstruction import Reconstruction
from xae.perceptual import perceptual_distance

SSIM = {"model.likelihood": "reconstruction", "model.reconstruction.perceptual": "ssim",
        "model.reconstruction.perceptual_weight": 0.5, "model.mlp.hidden": [32],
        "beta.value": 1e-6}


def _pair(shape=(3, 1, 28, 28)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(*shape, generator=g), torch.rand(*shape, generator=g)


@pytest.mark.parametrize("perceptual", ["ssim", "stlpips-vgg", "none"])
def test_the_loss_is_l1_plus_the_weighted_distance_over_a_learned_variance(perceptual):
    w = 0.0 if perceptual == "none" else 0.7
    lik = Reconstruction((1, 28, 28), perceptual=perceptual, perceptual_weight=w,
                         logvar_init=0.3)
    x, theta = _pair()
    if perceptual == "ssim":
        p = 1 - ssim(x, theta).float()
    elif perceptual == "none":
        p = torch.zeros(3)
    else:
        p = perceptual_distance(perceptual)(x, theta)
    pixels = 28 * 28
    want = ((2 * (x - theta).abs()).flatten(1).sum(1) + pixels * w * p) * math.exp(-0.3) \
        + pixels * 0.3
    torch.testing.assert_close(-lik.log_prob(x, theta), want, rtol=1e-5, atol=1e-3)
    k_theta = torch.stack([theta, x, theta.flip(0)])  # K = 3 draws per datum
    torch.testing.assert_close(lik.log_prob_samples(x, k_theta),
                               torch.stack([lik.log_prob(x, t) for t in k_theta]))


def test_the_perceptual_network_is_not_part_of_the_run() -> None:
    lik = Reconstruction((1, 28, 28))
    assert list(lik.state_dict()) == ["logvar"]
    assert lik.description.startswith("ST-LPIPS")


def test_no_likelihood_is_claimed_for_a_loss(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = xae.preset("vae", **SSIM, **{"train.steps": 60, "train.progress": False,
                                       "train.figures": False, "train.eval_every": 0,
                                       "train.log_every": 20})
    run = xae.train(cfg, tmp_path / "run")
    rows = [__import__("json").loads(x) for x in (run / "metrics.jsonl").read_text()
            .splitlines()]
    assert rows[-1]["distortion"] < rows[0]["distortion"]
    model = xae.load(run)
    assert model.likelihood.logvar.item() != 0.0  # the variance is learned
    with pytest.raises(xae.XaeError, match="not a normalized density"):
        require_likelihood(model, 10)
    metrics = xae.evaluate_model(model, xae.data.load(cfg.data).test_x[:100]).metrics
    assert "distortion" in metrics and not {"neg_elbo", "bits_per_dim"} & set(metrics)
    with pytest.raises(xae.XaeError, match="no samples"):
        model.likelihood.sample(torch.zeros(1, 1, 8, 8))


def test_settings_that_cannot_apply_are_clear_errors() -> None:
    with pytest.raises(xae.XaeError, match="perceptual_weight=0"):
        Reconstruction((1, 28, 28), perceptual="none", perceptual_weight=1.0)
    with pytest.raises(xae.XaeError, match="perceptual_weight=0"):
        Reconstruction((1, 28, 28), perceptual="ssim", perceptual_weight=0.0)
    with pytest.raises(xae.XaeError, match=r"stlpips-vgg needs images of at least 18×18"):
        xae.build(xae.preset("vae", **{"model.likelihood": "reconstruction"}))  # 8×8 digits
