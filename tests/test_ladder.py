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
