"""The plain autoencoder's bottleneck: a linear map to z, no posterior."""
from __future__ import annotations

import torch
from torch import nn

from xae.bottlenecks.base import Bottleneck
from xae.outputs import BottleneckOutput


class Deterministic(Bottleneck):
    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__(in_features, latent_dim)
        self.proj = nn.Linear(in_features, latent_dim)

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        return BottleneckOutput(z=self.proj(h))
