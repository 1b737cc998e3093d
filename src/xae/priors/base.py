"""The prior contract."""
from __future__ import annotations

import torch
from torch import nn


class Prior(nn.Module):
    """p(z) over ``latent_dim`` dimensions.

    ``factorized`` priors also give ``log_prob_per_dim``; priors with a closed-form KL to a
    diagonal Gaussian posterior set ``has_analytic_kl`` and implement :meth:`kl`.
    """

    factorized: bool = False
    has_analytic_kl: bool = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not factorize over dimensions")

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def kl(self, posterior: object) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form KL")

    def _device(self) -> torch.device:
        buf = next(iter(self.buffers()), None)
        return buf.device if buf is not None else torch.device("cpu")
