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


THREE = {"model.bottleneck": "topdown", "model.topdown.groups": [2, 3, 4],
         "model.latent_dim": 9, "model.mlp.hidden": [16]}


def test_one_lambda_per_group_clips_each_group_at_its_own_floor() -> None:
    lams = [5.0, 0.0, 3.0]
    torch.manual_seed(0)
    model = xae.build(xae.preset("vae", **{**THREE, "model.kl.free_bits": lams}))
    assert model.regularizer.free_bits == lams
    out = model(torch.rand(32, 1, 8, 8).round())
    for name, lam in zip(("rate/z1", "rate/z2", "rate/z3"), lams):
        t = out.terms[name]
        if lam == 0:
            assert t.clipped is None
            continue
        below = t.per_dim.mean(0) < lam
        assert below.any()  # the floor bites somewhere: what follows tests something
        expected = torch.where(below, torch.full_like(t.per_dim, lam), t.per_dim).sum(-1)
        torch.testing.assert_close(t.clipped, expected)
    assert torch.equal(out.terms["rate/z1"].clipped, torch.full((32,), 5.0 * 2))  # far above
    z3 = out.terms["rate/z3"].per_dim.mean(0)
    assert (z3 < 3.0).any() and (z3 > 3.0).any()  # λ = 3 clips some dimensions, not all
    used = sum(t.value if t.clipped is None else t.clipped
               for n, t in out.terms.items() if t.kind == "rate")
    torch.testing.assert_close(out.loss, (out.distortion + used).mean())


@pytest.mark.parametrize("preset, extra, lams, words", [
    ("vae", {"model.mlp.hidden": [16]}, [0.5, 0.25], ["no latent groups", "one number"]),
    ("ladder-vae", {}, [0.5, 0.25], ["2 values", "5 latent groups", "write 5 values",
                                     "[0.5, 0.25, 0.25, 0.25, 0.25]"]),
    ("ladder-vae", {}, [0.5, -0.1, 0, 0, 0], ["≥ 0"]),
    ("ladder-vae", {}, [], ["non-empty list"]),
])
def test_a_list_that_does_not_fit_the_groups_is_refused_at_build(preset, extra, lams,
                                                                   words) -> None:
    with pytest.raises(xae.XaeError, match="model.kl.free_bits") as e:
        xae.build(xae.preset(preset, **{**extra, "model.kl.free_bits": lams}))
    for w in words:
        assert w in str(e.value)


def test_the_cli_takes_a_list_and_the_run_keeps_it(tmp_path, capsys) -> None:
    from xae.cli import main

    run = tmp_path / "run"
    args = ["train", "--steps", "3", "--no-progress", "--out", str(run), "--set",
            "model.bottleneck=topdown", "model.topdown.groups=[2,3,4]", "model.latent_dim=9",
            "model.mlp.hidden=[16]", "train.figures=false", "train.eval_every=0"]
    assert main([*args, "model.kl.free_bits=[0.5,0.25,0.1]"]) == 0
    assert xae.load(run).regularizer.free_bits == [0.5, 0.25, 0.1]  # saved and read back
    capsys.readouterr()
    assert main([*args[:5], str(tmp_path / "bad"), *args[6:], "model.kl.free_bits=[1,2]"]) == 2
    err = capsys.readouterr().err
    assert "model.kl.free_bits" in err and "3 latent groups" in err and "Traceback" not in err
    assert main([*args[:5], str(tmp_path / "x"), *args[6:], "model.kl.free_bits=lots"]) == 2
    assert "a number like 0.5 or a list" in capsys.readouterr().err
