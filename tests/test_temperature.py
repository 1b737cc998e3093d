"""Samples at a temperature: every spread of a Gaussian prior scaled, down a hierarchy too."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import xae
from xae.bottlenecks.topdown import _gaussian
from xae.cli import main

TOPDOWN = {"model.bottleneck": "topdown", "model.topdown.groups": [2, 3],
           "model.latent_dim": 5, "model.topdown.hidden": 8, "model.mlp.hidden": [16]}


def test_a_standard_normal_prior_draws_with_the_scaled_spread() -> None:
    model = xae.build(xae.preset("vae", **{"model.mlp.hidden": [16]}))
    torch.manual_seed(0)
    z = model.sample_z(50_000, temperature=0.5)
    assert abs(float(z.std()) - 0.5) < 0.01 and abs(float(z.mean())) < 0.01


@pytest.mark.parametrize("preset, extra", [
    ("vae", TOPDOWN),
    ("ladder-vae", {"model.ladder.groups": [2, 3], "model.latent_dim": 5,
                    "model.ladder.hidden": 8, "model.mlp.hidden": [16]}),
])
def test_each_group_of_a_hierarchy_is_drawn_at_the_temperature(preset, extra) -> None:
    model = xae.build(xae.preset(preset, **extra)).eval()
    with torch.no_grad():  # give the conditional prior some structure to draw around
        for p in model.bottleneck.priors.parameters():
            p.add_(0.3 * torch.randn_like(p))
    torch.manual_seed(1)
    z = model.sample_z(40_000, temperature=0.3)
    top, low = z[:, :2], z[:, 2:]
    assert abs(float(top.std()) - 0.3) < 0.01
    net = model.bottleneck.priors[0]
    with torch.no_grad():
        p = _gaussian(net(top))
    residual = (low - p.mean) / p.std  # standardised by the prior at temperature 1
    assert abs(float(residual.std()) - 0.3) < 0.01


def test_a_temperature_is_refused_where_it_cannot_apply(tmp_path: Path, capsys) -> None:
    mog = xae.build(xae.preset("mog-vae", **{"model.mlp.hidden": [16]}))
    assert mog.sample_z(4).shape == (4, 16)  # temperature 1 needs no scale
    with pytest.raises(xae.XaeError, match="no temperature"):
        mog.sample_z(4, temperature=0.5)
    vae = xae.build(xae.preset("vae", **{"model.mlp.hidden": [16]}))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(xae.XaeError, match="temperature must be a number > 0"):
            vae.sample_z(4, temperature=bad)
    run = xae.train(xae.preset("vae", **{"model.mlp.hidden": [16], "train.steps": 2,
                                         "train.progress": False, "train.figures": False,
                                         "train.eval_every": 0}), tmp_path / "run")
    out = tmp_path / "s.png"
    for bad in ("0", "-1", "-0.5"):
        assert main(["sample", str(run), "--temperature", bad, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xae: error: the temperature must be a number > 0")
        assert f"got {float(bad)}" in err and "Traceback" not in err and not out.exists()
    assert main(["sample", str(run), "--temperature", "0.7", "-n", "4", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
