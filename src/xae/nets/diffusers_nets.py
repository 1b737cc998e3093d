"""The encoder and decoder of latent diffusion's KL autoencoder (Rombach et al. 2022) in the
layout of diffusers' ``AutoencoderKL``, around a spatial code of ``latent_channels`` × h × w.

Encoder: conv_in, one down block per entry of ``block_out_channels`` (each with
``layers_per_block`` ResNet blocks and, except the last, a stride-2 downsampler), the mid block
(ResNet, self-attention if ``mid_block_add_attention``, ResNet), conv_norm_out, SiLU, conv_out
to 2·latent_channels features per position (diffusers' ``double_z``). The encoder is a
:class:`~xae.nets.conv_map.MapEncoder`: the build puts the bottleneck at each position, and
the ``gaussian`` bottleneck's linear map from those 2·C features to (mean, log σ²) is
diffusers' ``quant_conv`` (a 1×1 convolution), so a Gaussian code maps onto AutoencoderKL
exactly (:mod:`xae.nets.diffusers_layout`).

Decoder: post_quant_conv (a 1×1 convolution on the code, as ``AutoencoderKL.decode`` applies
before its decoder), conv_in, the mid block, one up block per width in reverse (each with
``layers_per_block + 1`` ResNet blocks and, except the last, nearest ×2 and a convolution),
conv_norm_out, SiLU, conv_out to the likelihood's parameters θ.

A map shrinks by 2^(len(block_out_channels) − 1): 28×28 → 7×7 with three blocks, as
Stable Diffusion's four blocks take 512×512 → 64×64. The settings keep diffusers' names and
are shared by both nets (``model.diffusers``); ``model.latent_dim`` must be
latent_channels·h·w.

``pixel_range`` says which images the nets' layers see. ``unit`` (the default): the layers read
x in [0, 1], as the rest of xae, and conv_out emits θ. ``signed``: the layers are diffusers'
functions of images in [−1, 1], as Stable Diffusion's VAE was trained: the encoder feeds
2x − 1 to conv_in and the decoder returns θ = (y + 1)/2 of conv_out's output y. Both maps sit
outside the layers, so the weights are the same in either case; ``signed`` is how an imported
AutoencoderKL (:mod:`xae.import_diffusers`) computes exactly what diffusers does (the
map 2x − 1 cannot be folded into conv_in's weights: its zero padding is not mapped).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.nets.common import widths
from xae.nets.conv_map import MapEncoder, to_map
from xae.nets.diffusers_blocks import DownBlock, MidBlock, UpBlock, group_norm

SECTION = "model.diffusers"
KEYS = {"block_out_channels": ("the width of each down block (up blocks in reverse); every "
                               "block but the last halves H and W",
                               C.each(C.POSITIVE, min_len=1)),
        "layers_per_block": ("ResNet blocks per down block (the up blocks have one more)",
                             C.POSITIVE),
        "latent_channels": ("C, the code's channels at each position: model.latent_dim must "
                            "be C·h·w", C.POSITIVE),
        "norm_num_groups": ("groups of every GroupNorm; each width must be a multiple",
                            C.POSITIVE),
        "mid_block_add_attention": ("self-attention in the mid blocks", None),
        "pixel_range": ("the images the layers see: unit, x in [0, 1] and θ from conv_out; "
                        "signed, diffusers' [−1, 1] (the encoder reads 2x − 1, θ = (y + 1)/2 "
                        "of conv_out's y)", C.one_of(("unit", "signed")))}
"""The settings of the diffusers-layout encoder and decoder (section ``model.diffusers``)."""


def layout(data_shape: tuple[int, ...], block_out_channels: list[int], norm_num_groups: int,
           mid_block_add_attention: bool) -> tuple[list[int], tuple[int, int]]:
    """The checked widths and the code's grid (h, w), or an error naming the key to change."""
    if len(data_shape) != 3:
        raise XaeError(f"the diffusers nets need image data shaped (C, H, W); this data is "
                       f"{data_shape}: use model.encoder=mlp and model.decoder=mlp")
    chans = widths(block_out_channels, f"{SECTION}.block_out_channels")
    if not isinstance(mid_block_add_attention, bool):
        raise XaeError(f"{SECTION}.mid_block_add_attention must be true or false, got "
                       f"{mid_block_add_attention!r}")
    bad = [c for c in chans if c % norm_num_groups]
    if bad:
        raise XaeError(f"{SECTION}.norm_num_groups = {norm_num_groups} must divide every width "
                       f"of {SECTION}.block_out_channels {chans}; {bad} are not multiples")
    _, h, w = data_shape
    f = 2 ** (len(chans) - 1)
    if h % f or w % f:
        raise XaeError(f"{len(chans)} blocks in {SECTION}.block_out_channels halve H and W "
                       f"{len(chans) - 1} times, so they need H and W divisible by {f}, got "
                       f"{h}×{w}; use fewer blocks")
    return chans, (h // f, w // f)


class DiffusersEncoder(MapEncoder):
    """x (B, C_x, H, W) → features (B, 2·latent_channels, h, w)."""

    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], *,
                 block_out_channels: list[int] = [32, 64, 64], layers_per_block: int = 1,
                 latent_channels: int = 4, norm_num_groups: int = 8,
                 mid_block_add_attention: bool = True, pixel_range: str = "unit") -> None:
        super().__init__()
        chans, self.grid = layout(data_shape, block_out_channels, norm_num_groups,
                                  mid_block_add_attention)
        self.signed, g = pixel_range == "signed", norm_num_groups
        self.conv_in = nn.Conv2d(data_shape[0], chans[0], 3, padding=1)
        self.down_blocks = nn.ModuleList([
            DownBlock(chans[max(i - 1, 0)], c, layers_per_block, g, i < len(chans) - 1)
            for i, c in enumerate(chans)])
        self.mid_block = MidBlock(chans[-1], g, mid_block_add_attention)
        self.conv_norm_out = group_norm(g, chans[-1])
        self.conv_out = nn.Conv2d(chans[-1], 2 * latent_channels, 3, padding=1)
        self.out_features = 2 * latent_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(2 * x - 1 if self.signed else x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class DiffusersDecoder(nn.Module):
    """z (B, h·w·latent_channels), the map flattened with channels last → θ (B,
    C_x·``out_channels_per_channel``, H, W)."""

    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int,
                 out_channels_per_channel: int = 1, *,
                 block_out_channels: list[int] = [32, 64, 64], layers_per_block: int = 1,
                 latent_channels: int = 4, norm_num_groups: int = 8,
                 mid_block_add_attention: bool = True, pixel_range: str = "unit") -> None:
        super().__init__()
        chans, self.grid = layout(data_shape, block_out_channels, norm_num_groups,
                                  mid_block_add_attention)
        self.signed, (h, w) = pixel_range == "signed", self.grid
        if latent_dim != latent_channels * h * w:
            raise XaeError(f"the diffusers nets give a {latent_channels}×{h}×{w} code "
                           f"({SECTION}.latent_channels × the {h}×{w} grid of "
                           f"{SECTION}.block_out_channels), so model.latent_dim must be "
                           f"{latent_channels * h * w}, got {latent_dim}")
        g, rev = norm_num_groups, list(reversed(chans))
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)
        self.conv_in = nn.Conv2d(latent_channels, rev[0], 3, padding=1)
        self.mid_block = MidBlock(rev[0], g, mid_block_add_attention)
        self.up_blocks = nn.ModuleList([
            UpBlock(rev[max(i - 1, 0)], c, layers_per_block + 1, g, i < len(rev) - 1)
            for i, c in enumerate(rev)])
        self.conv_norm_out = group_norm(g, rev[-1])
        self.conv_out = nn.Conv2d(rev[-1], data_shape[0] * out_channels_per_channel, 3,
                                  padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(self.post_quant_conv(to_map(z, self.grid)))
        x = self.mid_block(x)
        for block in self.up_blocks:
            x = block(x)
        y = self.conv_out(F.silu(self.conv_norm_out(x)))
        return (y + 1) / 2 if self.signed else y

    @property
    def last_layer(self) -> torch.Tensor:
        """The weight of the layer that emits θ (for an adversarial critic's weight)."""
        return self.conv_out.weight
