"""The regularizer contract."""
from __future__ import annotations

import torch
from torch import nn

from xae.outputs import BottleneckOutput
from xae.priors.base import Prior


class Regularizer(nn.Module):
    """Returns the rate, in nats, per sample and per latent dimension where that is defined.

    The result has shape (B, D) when the rate splits over dimensions and (B, 1) otherwise.
    ``needs_posterior`` regularizers require a stochastic bottleneck. ``is_kl`` says the rate
    is KL(q(z|x) ‖ p(z)) itself (an exact value or an unbiased estimate), so that
    distortion + rate is the negative ELBO and a small rate means posterior collapse.
    """

    needs_posterior: bool = False
    is_kl: bool = False

    def __init__(self) -> None:
        super().__init__()

    def forward(self, out: BottleneckOutput, prior: Prior) -> torch.Tensor:
        raise NotImplementedError
