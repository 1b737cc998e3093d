"""Convolutional encoder and decoder for images of any H×W divisible by 2^len(channels).

Each stage is a 4×4 convolution with stride 2 (halving H and W), as in the DCGAN-style VAEs of
Higgins et al. (2017, App. A.1); the decoder mirrors it with transposed convolutions.
"""
from __future__ import annotations

import torch
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.nets.common import ACTIVATION_KEY, widths
from xae.nets.common import activation as make_activation

KEYS = {"channels": ("conv widths, each conv halving H and W", C.each(C.POSITIVE)),
        "activation": ACTIVATION_KEY}
"""The settings of the conv encoder and decoder, which share the section ``model.conv``."""


def _grid(data_shape: tuple[int, ...], channels: list[int]) -> tuple[int, int, int]:
    if len(data_shape) != 3:
        raise XaeError(f"conv nets need image data shaped (C, H, W); this data is {data_shape}: "
                       f"use model.encoder=mlp and model.decoder=mlp")
    _, h, w = data_shape
    f = 2 ** len(channels)
    if h % f or w % f:
        raise XaeError(f"conv nets with {len(channels)} stages need H and W divisible by {f}, "
                       f"got {h}×{w}; change model.conv.channels (fewer stages) or use mlp nets")
    return channels[-1], h // f, w // f


def up_stages(chans: list[int], out_channels: int, activation: str) -> list[nn.Module]:
    """The decoder's transposed convolutions, each doubling H and W: the encoder's widths
    reversed, then ``out_channels`` (the likelihood's parameters), with no activation last."""
    rev = list(reversed(chans))
    layers: list[nn.Module] = []
    for a, b in zip(rev[:-1], rev[1:]):
        layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), make_activation(activation)]
    layers.append(nn.ConvTranspose2d(rev[-1], out_channels, 4, stride=2, padding=1))
    return layers


class ConvEncoder(nn.Module):
    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], *,
                 channels: list[int] = [32, 64], activation: str = "relu") -> None:
        super().__init__()
        chans = widths(channels, "model.conv.channels")
        c, h, w = _grid(data_shape, chans)
        layers: list[nn.Module] = []
        for a, b in zip([data_shape[0], *chans[:-1]], chans):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), make_activation(activation)]
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_features = c * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int,
                 out_channels_per_channel: int = 1, *, channels: list[int] = [32, 64],
                 activation: str = "relu") -> None:
        super().__init__()
        chans = widths(channels, "model.conv.channels")
        self.grid = _grid(data_shape, chans)
        layers = up_stages(chans, data_shape[0] * out_channels_per_channel, activation)
        self.fc = nn.Sequential(nn.Linear(latent_dim, self.grid[0] * self.grid[1] * self.grid[2]),
                                make_activation(activation))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(z.shape[0], *self.grid))

    @property
    def last_layer(self) -> torch.Tensor:
        """The weight of the layer that emits θ (an adversarial critic weighs its term by the
        gradients there)."""
        return self.net[-1].weight



