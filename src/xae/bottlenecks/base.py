"""The bottleneck contract."""
from __future__ import annotations

import torch
from torch import nn

from xae.outputs import BottleneckOutput


class Bottleneck(nn.Module):
    """Maps encoder features (B, F) to a latent code (B, D).

    ``stochastic`` bottlenecks return a posterior q(z|x) that regularizers and likelihood
    bounds use; deterministic ones return ``posterior=None``.
    """

    stochastic: bool = False

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.latent_dim = latent_dim

    def forward(self, h: torch.Tensor) -> BottleneckOutput:
        raise NotImplementedError

    def zero_aux(self, h: torch.Tensor) -> torch.Tensor:
        return h.new_zeros(h.shape[0])
