"""The diffusers-layout encoder and decoder as xae pieces: they train and reload through
``xae.train``/``xae.load`` on the digits, take the sizes their blocks allow, and refuse the
others with an error naming the key to change. (The shape contract of every method is in
tests/test_contract.py; the parity with diffusers in tests/test_diffusers_layout.py.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import xae
from xae.config import apply


def _cfg(channels: list[int], latent_dim: int, groups: int = 4, **extra: object) -> xae.Config:
    return xae.preset("vae", encoder="diffusers", decoder="diffusers", **{
        "model.diffusers.block_out_channels": channels,
        "model.diffusers.norm_num_groups": groups, "model.diffusers.latent_channels": 2,
        "model.latent_dim": latent_dim, **extra})


def test_it_trains_on_the_digits_and_reloads_the_same_model(tmp_path: Path) -> None:
    cfg = apply(_cfg([8, 16], 32), {"train.steps": 30, "train.log_every": 5,
                                    "train.checkpoint_every": 30, "train.progress": False,
                                    "train.figures": False, "train.eval_every": 0,
                                    "train.lr": 3e-3})
    run = xae.train(cfg, tmp_path / "run")
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 30 and log[-1]["loss"] < log[0]["loss"]
    model = xae.load(run)
    assert model.latent_shape == (2, 4, 4) and model.encoder.out_features == 4
    again = xae.load(run)
    x = torch.rand(5, 1, 8, 8)
    z = torch.randn(5, 32)
    with torch.no_grad():
        assert torch.equal(model.decode(z), again.decode(z))
        assert torch.equal(model.latent_mean(x), again.latent_mean(x))
    fresh = xae.build(model.config)  # the loaded weights are the trained ones, not a new draw
    assert not torch.equal(fresh.decoder.conv_out.weight, model.decoder.conv_out.weight)


@pytest.mark.parametrize("channels,grid", [([8], 8), ([8, 8], 4), ([8, 8, 16], 2),
                                           ([8, 8, 16, 16], 1)])
def test_each_block_but_the_last_halves_the_map(channels: list[int], grid: int) -> None:
    model = xae.build(_cfg(channels, 2 * grid * grid))
    assert model.encoder.grid == model.decoder.grid == (grid, grid)
    x = torch.rand(3, 1, 8, 8)
    out = model(x)
    assert out.z.shape == (3, 2 * grid * grid) and out.x_mean.shape == x.shape
    out.loss.backward()


def test_the_mid_block_attention_can_be_off() -> None:
    on = xae.build(_cfg([8, 16], 32))
    off = xae.build(_cfg([8, 16], 32, **{"model.diffusers.mid_block_add_attention": False}))
    assert len(on.encoder.mid_block.attentions) == len(on.decoder.mid_block.attentions) == 1
    assert len(off.encoder.mid_block.attentions) == len(off.decoder.mid_block.attentions) == 0
    assert on.num_parameters() - off.num_parameters() == 2 * 4 * (16 * 16 + 16) + 2 * 2 * 16


def test_the_decoder_emits_every_parameter_the_likelihood_asks_for() -> None:
    cfg = _cfg([8, 16], 32, **{"model.likelihood": "gaussian"})
    model = xae.build(cfg, shape=(3, 8, 8))
    assert model.decoder(torch.randn(2, 32)).shape == (2, 3, 8, 8)


@pytest.mark.parametrize("channels,groups,latent_dim,shape,match", [
    ([8] * 5, 4, 2, (1, 8, 8), r"5 blocks in model.diffusers.block_out_channels .* divisible "
                               r"by 16, got 8×8"),
    ([8, 16, 16], 4, 32, (1, 10, 10), r"divisible by 4, got 10×10"),
    ([8, 12], 8, 32, (1, 8, 8), r"model.diffusers.norm_num_groups = 8 must divide .*\[12\]"),
    ([8, 16], 4, 30, (1, 8, 8), r"model.latent_dim must be 32, got 30"),
    ([8, 16], 4, 32, (64,), r"image data .* model.encoder=mlp"),
    ([8, 0], 4, 32, (1, 8, 8), r"model.diffusers.block_out_channels' must be a list of "
                                r"integers"),
])
def test_sizes_the_blocks_cannot_take_are_errors_naming_the_key(channels, groups, latent_dim,
                                                               shape, match) -> None:
    cfg = _cfg([8, 16], latent_dim, groups)
    cfg.model.diffusers.block_out_channels = channels  # past the config's own checks
    with pytest.raises(xae.XaeError, match=match):
        xae.build(cfg, shape=shape)
