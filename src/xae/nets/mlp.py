"""Fully connected encoder and decoder (Kingma & Welling 2014, App. C). Empty ``hidden`` = linear."""
from __future__ import annotations

import math

import torch
from torch import nn

from xae import checks as C
from xae.nets.common import ACTIVATION_KEY, init_linear, widths
from xae.nets.common import activation as make_activation

KEYS = {"hidden": ("hidden widths, input side first (empty: a linear map)", C.each(C.POSITIVE)),
        "activation": ACTIVATION_KEY,
        "batch_norm": ("batch norm after each hidden layer's linear map (as scVI's nets)",
                       None),
        "dropout": ("dropout after each of the encoder's hidden layers (scVI: 0.1); the "
                    "decoder has none", C.between(0.0, 1.0, hi_open=True))}
"""The settings of the MLP encoder and decoder, which share the section ``model.mlp``."""


def _stack(sizes: list[int], act: str, batch_norm: bool = False,
           dropout: float = 0.0) -> list[nn.Module]:
    """Linear (+ batch norm) + activation (+ dropout) per hidden layer; with neither option
    the modules (and so the weights' names) are those of plain Linear+activation pairs."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers.append(init_linear(nn.Linear(a, b), act))
        layers += [nn.BatchNorm1d(b)] if batch_norm else []
        layers.append(make_activation(act))
        layers += [nn.Dropout(dropout)] if dropout else []
    return layers


class MLPEncoder(nn.Module):
    """Flattens the input and applies Linear+activation layers; ``out_features`` is the last width."""

    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], *, hidden: list[int] = [512],
                 activation: str = "relu", batch_norm: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [math.prod(data_shape), *widths(hidden, "model.mlp.hidden")]
        self.net = nn.Sequential(nn.Flatten(), *_stack(sizes, activation, batch_norm, dropout))
        self.out_features = sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """Mirror of the encoder: z -> hidden layers (reversed) -> a linear map to θ, data-shaped."""

    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int,
                 out_channels_per_channel: int = 1, *, hidden: list[int] = [512],
                 activation: str = "relu", batch_norm: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.out_shape = (data_shape[0] * out_channels_per_channel, *data_shape[1:])
        sizes = [latent_dim, *reversed(widths(hidden, "model.mlp.hidden"))]
        self.net = nn.Sequential(*_stack(sizes, activation, batch_norm),
                                 init_linear(nn.Linear(sizes[-1], math.prod(self.out_shape)),
                                             None))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)

    @property
    def last_layer(self) -> torch.Tensor:
        """The weight of the layer that emits θ (an adversarial critic weighs its term by the
        gradients there)."""
        return self.net[-1].weight

