"""Bernoulli likelihood on logits (binary or [0,1]-valued pixels; Kingma & Welling 2014, App. C.1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xae.likelihoods.base import Likelihood


class Bernoulli(Likelihood):
    """log p(x|θ) = x·log σ(θ) + (1−x)·log(1−σ(θ)) = x·θ − softplus(θ), from the logits θ.

    The second form is stable for any θ, broadcasts ``x`` against ``θ`` and takes two fused
    passes over memory (faster than ``binary_cross_entropy_with_logits`` on expanded targets).
    """

    def __init__(self, data_shape: tuple[int, ...]) -> None:
        super().__init__(data_shape)

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return x * theta - F.softplus(theta)

    def mean(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(theta)

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(theta))
