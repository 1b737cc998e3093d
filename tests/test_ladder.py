"""The Ladder VAE piece: the precision-weighted merge, and a small model end to end."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import xae
from xae.bottlenecks.ladder import Ladder, merge
from xae.cli import main
from xae.distributions import DiagonalGaussian

TINY = ["model.ladder.groups=[2,4]", "model.latent_dim=6", "model.ladder.hidden=32",
        "model.mlp.hidden=[64]", "beta.warmup=20"]


def test_the_merge_is_the_normalised_product_of_the_two_gaussians() -> None:
    g = torch.Generator().manual_seed(0)
    est = DiagonalGaussian(torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g))
    prior = DiagonalGaussian(torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g))
    q = merge(est, prior)
    z = 3 * torch.randn(50, 3, 4, generator=g)
    # log q − log est − log p does not depend on z: q ∝ est · p, per dimension
    diff = q.log_prob_per_dim(z) - est.log_prob_per_dim(z) - prior.log_prob_per_dim(z)
    torch.testing.assert_close(diff, diff[:1].expand_as(diff), atol=1e-4, rtol=0)
    assert (q.var < torch.minimum(est.var, prior.var)).all()  # the merge is sharper than both


def test_a_small_ladder_vae_trains_evaluates_and_samples(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--preset", "ladder-vae", "--steps", "60", "--out", str(run),
                 "--no-progress", "--set", *TINY, "train.log_every=10",
                 "train.figures=false", "train.eval_every=0"]) == 0
    log = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"rate/z1", "rate/z2"} <= set(log[0]) and log[-1]["loss"] < log[0]["loss"]
    assert log[0]["beta"] < log[-1]["beta"] == 1.0  # the KL warm-up
    model = xae.load(run)
    assert isinstance(model.bottleneck, Ladder) and model.prior.latent_dim == 2
    capsys.readouterr()
    assert main(["eval", str(run), "--k", "20", "--no-images", "--no-progress", "--json"]) == 0
    test = json.loads(capsys.readouterr().out)
    assert math.isfinite(test["nll_iw"]) and {"rate/z1", "rate/z2"} <= set(test)
    assert test["active_units/z1"] + test["active_units/z2"] == test["active_units"]
    assert 0 <= test["active_units/z1"] <= 2 and 0 <= test["active_units/z2"] <= 4
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "s.png")]) == 0


def test_groups_that_do_not_add_up_name_the_key() -> None:
    with pytest.raises(xae.XaeError, match="model.ladder.groups"):
        xae.build(xae.preset("ladder-vae", **{"model.ladder.groups": [2, 4]}))


@pytest.mark.parametrize("bottleneck", ["ladder", "topdown"])
def test_the_levels_figure_keeps_the_top_groups_of_the_posterior(tmp_path: Path,
                                                                 bottleneck: str) -> None:
    extra = {"model.bottleneck": bottleneck, f"model.{bottleneck}.groups": [2, 4],
             "model.latent_dim": 6, f"model.{bottleneck}.hidden": 16, "model.mlp.hidden": [32],
             "train.steps": 30, "train.progress": False, "train.eval_every": 0}
    run = xae.train(xae.preset("vae", **extra), tmp_path / "run")
    assert (run / "figures" / "levels.png").stat().st_size > 0  # drawn with the others
    model = xae.load(run)
    x = torch.rand(5, 1, 8, 8).round()
    with torch.no_grad():
        h = model.features(x)
        full = model.bottleneck.posterior_then_prior(h, 2, model.prior)
        torch.testing.assert_close(full, model.latent_mean(x))  # every group from q: its mode
        torch.manual_seed(0)
        none_a = model.bottleneck.posterior_then_prior(h, 0, model.prior)
        torch.manual_seed(0)
        none_b = model.bottleneck.posterior_then_prior(model.features(1 - x), 0, model.prior)
        assert torch.equal(none_a, none_b)  # no group from q: the data play no part
        torch.manual_seed(0)
        top = model.bottleneck.posterior_then_prior(h, 1, model.prior)
        torch.testing.assert_close(top[:, :2], full[:, :2])  # the top group kept
        assert not torch.allclose(top[:, 2:], full[:, 2:])  # the lower one drawn anew
