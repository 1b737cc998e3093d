"""A learned mixture-of-Gaussians prior p(z) = Σ_c π_c N(z; m_c, diag s_c²).

Means, log-variances and mixture logits are parameters trained with the rest of the model
(as in the MoG baseline of Tomczak & Welling 2018, sec. 2.2). There is no closed-form KL to a
Gaussian posterior, so the KL regularizer uses its Monte Carlo estimate, log q(z|x) −
log p(z) at the reparameterized z; sampling draws from this same object.
"""
from __future__ import annotations

import torch
from torch import nn

from xae import checks as C
from xae.distributions import mixture_log_prob
from xae.errors import positive_int
from xae.priors.base import Prior


class MixtureOfGaussians(Prior):
    """``components`` diagonal Gaussians; means start spread as N(0, I) draws (fixed seed),
    unit variances, equal weights."""

    KEYS = {"components": ("number of Gaussians", C.POSITIVE)}

    def __init__(self, latent_dim: int, *, components: int = 10) -> None:
        super().__init__(latent_dim)
        components = positive_int(components, "model.mog.components")
        init = torch.randn(components, latent_dim, generator=torch.Generator().manual_seed(0))
        self.means = nn.Parameter(init)
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(components))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) for ``z`` of shape (..., D) (:func:`~xae.distributions.mixture_log_prob`)."""
        return mixture_log_prob(z, self.means, self.logvars, torch.log_softmax(self.logits, -1))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        c = torch.multinomial(torch.softmax(self.logits, -1), n, replacement=True)
        eps = torch.randn(n, self.latent_dim, device=self.means.device, dtype=self.means.dtype)
        return self.means[c] + torch.exp(0.5 * self.logvars[c]) * eps

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, components={self.means.shape[0]}"

