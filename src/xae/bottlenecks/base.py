"""The bottleneck contract."""
from __future__ import annotations

import torch
from torch import nn

from xae.outputs import BottleneckOutput


class Bottleneck(nn.Module):
    """Maps encoder features (B, F) to a latent code (B, D).

    ``stochastic`` bottlenecks return a Gaussian posterior q(z|x) that regularizers and
    likelihood bounds use; deterministic ones return ``posterior=None``. ``discrete`` ones
    (see :mod:`xae.bottlenecks.quantizer`) also return code indices, and ``has_posterior``
    is set where the posterior is categorical (Gumbel-softmax), for the KL to the code prior.
    """

    stochastic: bool = False
    discrete: bool = False
    has_posterior: bool = False

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.latent_dim = latent_dim

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        """``step`` is the training step, passed by the trainer to bottlenecks with schedules
        (the Gumbel-softmax temperature); None outside training."""
        raise NotImplementedError

    def zero_aux(self, h: torch.Tensor) -> torch.Tensor:
        return h.new_zeros(h.shape[0])
