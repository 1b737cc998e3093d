"""The likelihood contract shared by every observation model."""
from __future__ import annotations

import torch
from torch import nn


class Likelihood(nn.Module):
    """p(x|θ) where θ is what the decoder emits, shaped like the data.

    Subclasses implement :meth:`log_prob_elementwise` (broadcasting ``x`` against ``θ``),
    :meth:`mean` and :meth:`sample`; :meth:`log_prob` sums over all non-batch dimensions
    (in nats).
    """

    params_per_channel: int = 1  # decoder outputs per data channel (θ's channels / x's)
    density: bool = True  # False for a loss in a likelihood's place (no ELBO, no log p(x))
    # False where mean(θ) is not on the data's scale (counts: expression at a library of 10⁴)
    mean_in_data_space: bool = True

    def __init__(self, data_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """log p(x|θ) per sample, shape (B,)."""
        return self.log_prob_elementwise(x, theta).flatten(1).sum(-1)

    def log_prob_samples(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """log p(x_b|θ_kb) for K parameter sets per datum: θ (K, B, *data), x (B, *data) →
        (K, B), without copying ``x`` K times."""
        return self.log_prob_elementwise(x, theta).flatten(2).sum(-1)

    def mean(self, theta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
