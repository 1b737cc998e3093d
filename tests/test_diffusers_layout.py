"""The diffusers-layout nets against the real ``diffusers.AutoencoderKL``: a randomly
initialised AutoencoderKL's weights, loaded through the key mapping, give the same posterior
and the same decoded output, and the mapping round-trips bit for bit."""
from __future__ import annotations

import diffusers  # in the dev extra: `make test` has it
import pytest
import torch

import xae
from xae.nets.conv_map import to_map
from xae.nets.diffusers_layout import (diffusers_config, from_diffusers_state_dict,
                                       to_diffusers_state_dict)

TOL = 1e-5


def _model(shape: tuple[int, int, int], channels: list[int], groups: int, layers: int,
           attention: bool, latent_channels: int = 4, **extra: object) -> xae.Autoencoder:
    f = 2 ** (len(channels) - 1)
    cfg = xae.preset("vae", encoder="diffusers", decoder="diffusers", likelihood="gaussian", **{
        "model.diffusers.block_out_channels": channels, "model.diffusers.norm_num_groups": groups,
        "model.diffusers.layers_per_block": layers, "model.diffusers.latent_channels":
        latent_channels, "model.diffusers.mid_block_add_attention": attention,
        "model.latent_dim": latent_channels * (shape[1] // f) * (shape[2] // f), **extra})
    return xae.build(cfg, shape=shape).eval()


CASES = {  # the 28×28 model; three RGB blocks with two ResNets each and no attention
    "mnist-32-64": ((1, 28, 28), [32, 64], 8, 1, True),
    "rgb-3-blocks-no-attention": ((3, 16, 16), [8, 16, 16], 4, 2, False),
}


@pytest.fixture(params=list(CASES))
def pair(request) -> tuple[xae.Autoencoder, torch.nn.Module, tuple[int, ...]]:
    shape = CASES[request.param][0]
    model = _model(*CASES[request.param])
    torch.manual_seed(0)
    ref = diffusers.AutoencoderKL(**diffusers_config(model)).eval()
    from_diffusers_state_dict(model, ref.state_dict())
    return model, ref, shape


def test_the_config_builds_an_autoencoder_kl_with_the_same_keys_and_shapes(pair) -> None:
    model, ref, _ = pair
    ours, theirs = to_diffusers_state_dict(model), ref.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    # every parameter of the nets and the code is in the mapping, and nothing else
    nets = sum(p.numel() for m in (model.encoder, model.bottleneck, model.decoder)
               for p in m.parameters())
    assert sum(v.numel() for v in ours.values()) == nets == ref.num_parameters()


def test_the_posterior_and_the_decoder_equal_diffusers(pair) -> None:
    model, ref, shape = pair
    torch.manual_seed(1)
    x = torch.rand(4, *shape)
    with torch.no_grad():
        theirs = ref.encode(x).latent_dist
        q = model.encode(x).posterior
        grid = model.encoder.grid
        assert theirs.mean.shape == (4, model.latent_shape[0], *grid)
        mean_err = (to_map(q.mean, grid) - theirs.mean).abs().max().item()
        logvar_err = (to_map(q.logvar, grid) - theirs.logvar).abs().max().item()
        z = torch.randn_like(theirs.mean)
        out_err = (model.decoder(z.permute(0, 2, 3, 1).flatten(1))
                   - ref.decode(z).sample).abs().max().item()
        # the two differ where the weights differ: this is not a comparison of two zeros
        assert ref.decode(z).sample.std() > 0.01 and theirs.mean.std() > 0.01
    assert mean_err < TOL and logvar_err < TOL and out_err < TOL, (mean_err, logvar_err, out_err)


def test_the_mapping_round_trips_bit_for_bit(pair) -> None:
    model, ref, _ = pair
    theirs = ref.state_dict()
    ours = to_diffusers_state_dict(model)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    # and back: a fresh model loaded from that state dict has the same weights as the first
    fresh = xae.build(model.config)
    assert any(not torch.equal(a, b) for a, b in zip(fresh.parameters(), model.parameters()))
    from_diffusers_state_dict(fresh, ours)
    mine, again = model.state_dict(), fresh.state_dict()
    nets = [k for k in mine if k.split(".")[0] in ("encoder", "bottleneck", "decoder")]
    assert all(torch.equal(mine[k], again[k]) for k in nets)


def test_a_state_dict_that_does_not_fit_changes_nothing() -> None:
    model = _model(*CASES["mnist-32-64"])
    state = to_diffusers_state_dict(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    short = {k: v for k, v in state.items() if k != "quant_conv.bias"}
    with pytest.raises(xae.XaeError, match="missing.*quant_conv.bias"):
        from_diffusers_state_dict(model, short)
    wide = {**state, "decoder.conv_out.weight": torch.zeros(2, 32, 3, 3)}
    with pytest.raises(xae.XaeError, match=r"decoder.conv_out.weight is \(2, 32, 3, 3\)"):
        from_diffusers_state_dict(model, {k: v * 2 for k, v in wide.items()})
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("change,match", [
    ({"model.bottleneck": "deterministic", "model.regularizer": "none"}, "gaussian"),
    ({"model.decoder": "conv_map", "model.conv_map.channels": [16, 32]}, "model.decoder"),
])
def test_only_diffusers_nets_with_a_gaussian_code_map(change, match) -> None:
    cfg = xae.config.apply(_model(*CASES["mnist-32-64"]).config, change)
    with pytest.raises(xae.XaeError, match=match):
        to_diffusers_state_dict(xae.build(cfg))
