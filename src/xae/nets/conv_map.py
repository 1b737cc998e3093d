"""Convolutional nets around a spatial latent: the encoder keeps its last feature map
(B, F, h, w) and the decoder starts from a C×h×w code with a convolution, so no layer
flattens a map into a vector (as the autoencoders of latent diffusion, Rombach et al. 2022).

The stages are those of :mod:`xae.nets.conv` (4×4 convolutions of stride 2, each halving H
and W). The bottleneck acts on each of the h·w positions alone (see
:mod:`xae.bottlenecks.positionwise`), and the code travels between the pieces as the map
flattened position by position, (B, h·w·C): :func:`to_map` gives the (B, C, h, w) view.
"""
from __future__ import annotations

import torch
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.nets.common import ACTIVATION_KEY
from xae.nets.common import activation as make_activation
from xae.nets.common import widths
from xae.nets.conv import _grid, up_stages

KEYS = {"channels": ("conv widths, each conv halving H and W; the code is a map at the last "
                     "stage's h×w", C.each(C.POSITIVE, min_len=1)),
        "activation": ACTIVATION_KEY}
"""The settings of the map encoder and decoder, which share the section ``model.conv_map``."""


def to_map(z: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """A spatial code (B, h·w·C), flattened position by position, as its map (B, C, h, w)."""
    h, w = grid
    return z.view(z.shape[0], h, w, -1).permute(0, 3, 1, 2)


class MapEncoder(nn.Module):
    """An encoder whose features are a map (B, F, h, w), not a vector: ``grid`` = (h, w) and
    ``out_features`` = F, the features of each position. The build puts the bottleneck at
    every position (:class:`~xae.bottlenecks.positionwise.Positionwise`)."""

    grid: tuple[int, int]
    out_features: int


class ConvMapEncoder(MapEncoder):
    """Convolutions down to a feature map (B, F, h, w)."""

    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], *, channels: list[int] = [32, 64],
                 activation: str = "relu") -> None:
        super().__init__()
        chans = widths(channels, "model.conv_map.channels")
        f, h, w = _grid(data_shape, chans)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip([data_shape[0], *chans[:-1]], chans)):
            layers.append(nn.Conv2d(a, b, 4, stride=2, padding=1))
            if i < len(chans) - 1:  # the map itself is linear in the last stage
                layers.append(make_activation(activation))
        self.net = nn.Sequential(*layers)
        self.grid, self.out_features = (h, w), f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvMapDecoder(nn.Module):
    """A C×h×w code (C = latent_dim / (h·w)) → a 3×3 convolution to the last stage's width →
    transposed convolutions up to the data (``out_channels_per_channel`` parameters per data
    channel, as the likelihood asks)."""

    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int,
                 out_channels_per_channel: int = 1, *, channels: list[int] = [32, 64],
                 activation: str = "relu") -> None:
        super().__init__()
        chans = widths(channels, "model.conv_map.channels")
        _, h, w = _grid(data_shape, chans)
        if latent_dim % (h * w):
            raise XaeError(f"a spatial code on the {h}×{w} grid of model.conv_map.channels "
                           f"needs model.latent_dim to be a multiple of {h * w} (channels × "
                           f"{h * w} positions), got {latent_dim}")
        self.grid, c = (h, w), latent_dim // (h * w)
        self.net = nn.Sequential(
            nn.Conv2d(c, chans[-1], 3, padding=1), make_activation(activation),
            *up_stages(chans, data_shape[0] * out_channels_per_channel, activation))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(to_map(z, self.grid))

    @property
    def last_layer(self) -> torch.Tensor:
        """The weight of the layer that emits θ (an adversarial critic weighs its term by the
        gradients there)."""
        return self.net[-1].weight

