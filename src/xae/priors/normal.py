"""The standard normal prior N(0, I) with the closed-form KL of Kingma & Welling (2014), App. B."""
from __future__ import annotations

import torch

from xae.distributions import LOG_2PI, DiagonalGaussian
from xae.priors.base import Prior


class StandardNormal(Prior):
    factorized = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z**2 + LOG_2PI)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_prob_per_dim(z).sum(-1)

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self._anchor.device,
                           dtype=self._anchor.dtype)

    def sample_tempered(self, n: int, temperature: float) -> torch.Tensor:
        """N(0, τ² I) draws."""
        return temperature * self.sample(n)

    def kl(self, posterior: DiagonalGaussian) -> torch.Tensor:
        """KL(N(μ, σ²) ‖ N(0, 1)) per dimension: ½(μ² + σ² − 1 − log σ²), shape (B, D)."""
        return 0.5 * (posterior.mean**2 + posterior.var - 1.0 - posterior.logvar)
