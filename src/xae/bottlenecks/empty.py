"""No code at all: z = 0 for every datum, so the decoder alone models p(x).

This is the KL = 0 limit of a VAE, the baseline every collapse study needs: with an
autoregressive decoder it is a language model of the decoder's size (the ``lstm-lm``
preset). Its rate is exactly 0, so log p(x) = log p(x | z = 0) exactly: the evaluation
reports neg_elbo = distortion (and perplexity for sentences) and needs no importance
sampling; "samples" decode z = 0.
"""
from __future__ import annotations

import torch
from torch import nn

from xae.bottlenecks.base import Bottleneck
from xae.outputs import BottleneckOutput


class Empty(Bottleneck):
    empty = True  # the evaluation reads: the rate is 0 and log p(x) = log p(x|0), exactly

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__(in_features, latent_dim)

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        return BottleneckOutput(z=h.new_zeros(h.shape[0], self.latent_dim))

    def sample_prior(self, prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
        device = next((p.device for p in prior.parameters()), torch.device("cpu"))
        return torch.zeros(n, self.latent_dim, device=device)
