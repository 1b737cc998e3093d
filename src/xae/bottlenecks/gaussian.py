"""Diagonal Gaussian bottleneck (Kingma & Welling 2014): predicts μ and log σ², samples z = μ + σ·ε."""
from __future__ import annotations

import torch
from torch import nn

from xae.bottlenecks.base import Bottleneck
from xae.distributions import DiagonalGaussian
from xae.nets.common import init_linear
from xae.outputs import BottleneckOutput

LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(logvar) finite in float32


class Gaussian(Bottleneck):
    stochastic = True
    has_posterior = True

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__(in_features, latent_dim)
        self.proj = init_linear(nn.Linear(in_features, 2 * latent_dim), None)

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        mean, logvar = self.proj(h).chunk(2, dim=-1)
        posterior = DiagonalGaussian(mean, logvar.clamp(*LOGVAR_RANGE))
        return BottleneckOutput(z=posterior.sample(), posterior=posterior)
