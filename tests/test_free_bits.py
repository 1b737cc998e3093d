"""Free bits apply wherever a KL splits by dimension, position or group (the mixture, flow and
VampPrior KLs by Monte Carlo per group; categorical codes per position)."""
from __future__ import annotations

import math

import pytest
import torch

import xae

SMALL = {"model.mlp.hidden": [16], "model.latent_dim": 4}


@pytest.mark.parametrize("preset, extra", [
    ("mog-vae", {}), ("flow-prior-vae", {"model.flow.hidden": 8}),
    ("vamp-vae", {"model.vamp.components": 5}),
])
def test_a_kl_without_per_dimension_parts_is_clipped_per_group(preset, extra) -> None:
    lam = 50.0  # nats per dimension: far above this KL, so the whole group is clipped
    torch.manual_seed(0)
    model = xae.build(xae.preset(preset, **{**SMALL, **extra, "model.kl.free_bits": lam}))
    out = model(torch.rand(32, 1, 8, 8).round())
    t = out.terms["rate"]
    assert t.per_dim is None and t.value.mean() < lam * 4
    assert torch.equal(t.clipped, torch.full_like(t.value, lam * 4))
    torch.testing.assert_close(out.loss, (out.distortion + lam * 4).mean())
    unclipped = xae.build(xae.preset(preset, **{**SMALL, **extra}))
    unclipped.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    x = torch.rand(32, 1, 8, 8).round()
    torch.manual_seed(2)
    a = model(x)
    torch.manual_seed(2)
    b = unclipped(x)
    assert torch.equal(a.terms["rate"].value, b.terms["rate"].value)  # reported: unclipped


def test_categorical_codes_are_clipped_per_position() -> None:
    lam = 0.5
    cfg = xae.preset("dvae", **{"model.mlp.hidden": [16], "model.latent_dim": 8,
                                "model.gumbel.code_dim": 4, "model.gumbel.codebook_size": 8,
                                "model.kl.free_bits": lam})
    torch.manual_seed(0)
    model = xae.build(cfg)
    out = model(torch.rand(16, 1, 8, 8).round(), step=0)
    t = out.terms["rate"]
    assert t.per_dim.shape == (16, 2)  # two positions
    assert (t.per_dim <= math.log(8) + 1e-5).all()
    below = t.per_dim.mean(0) < lam
    expected = torch.where(below, torch.full_like(t.per_dim, lam), t.per_dim).sum(-1)
    torch.testing.assert_close(t.clipped, expected)
