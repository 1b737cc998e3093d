"""The VampPrior (Tomczak & Welling 2018, eq. 9): p(z) = (1/K) Σ_k q(z | u_k).

The prior is the mixture of the encoder's own posteriors at K learned pseudo-inputs u_k, so it
follows the aggregate posterior the encoder produces. It has no closed-form KL: the KL
regularizer takes its Monte Carlo estimate log q(z|x) − log p(z). ``log_prob`` and ``sample``
both go through the same encoder at the same pseudo-inputs, so what trains is what samples
(the design's warning against a VampPrior that trains one way and samples another).

The prior holds the pseudo-inputs; the encoder is lent to it by the model it belongs to
(:meth:`bind`), not registered as a submodule, so the encoder's weights live once in the
model's state and the module tree has no cycle.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from xae import checks as C
from xae.distributions import DiagonalGaussian, mixture_log_prob
from xae.errors import XaeError, positive_int
from xae.priors.base import Prior

PosteriorFn = Callable[[torch.Tensor], DiagonalGaussian]


class VampPrior(Prior):
    """``components`` pseudo-inputs of the data's shape, initialised as in the paper's code
    (N(0.05, 0.01²) per pixel, fixed seed) and trained with the rest of the model."""

    needs_posterior = True  # its components are q(z|u_k): a stochastic bottleneck
    needs_data_shape = True  # the pseudo-inputs' shape: built as (latent_dim, data_shape)
    KEYS = {"components": ("number of learned pseudo-inputs", C.POSITIVE)}

    def __init__(self, latent_dim: int, data_shape: tuple[int, ...] = (), *,
                 components: int = 500) -> None:
        super().__init__(latent_dim)
        k = positive_int(components, "model.vamp.components")
        if not data_shape:
            raise XaeError("the VampPrior needs the data's shape for its pseudo-inputs; "
                           "build the model with xae.build")
        init = 0.05 + 0.01 * torch.randn(k, *data_shape,
                                          generator=torch.Generator().manual_seed(0))
        self.pseudo_inputs = nn.Parameter(init)
        self._posterior: PosteriorFn | None = None

    def bind(self, model: nn.Module) -> None:
        """Lend the prior the map x ↦ q(z|x) of the model it belongs to."""
        self._posterior = model.posterior_of

    def components(self) -> DiagonalGaussian:
        """q(z | u_k) for every pseudo-input: means and log-variances (K, D)."""
        if self._posterior is None:
            raise XaeError("this VampPrior is not bound to an encoder; build the model with "
                           "xae.build (or pass the prior to Autoencoder), which binds it")
        q = self._posterior(self.pseudo_inputs)
        if q is None:
            raise XaeError("the VampPrior needs a stochastic bottleneck (model.bottleneck="
                           "gaussian): its components are the encoder's posteriors")
        return q

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log (1/K) Σ_k q(z | u_k) for ``z`` of shape (..., D)."""
        q = self.components()
        return mixture_log_prob(z, q.mean, q.logvar)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Pick a pseudo-input uniformly, then draw z ~ q(z | u_k)."""
        q = self.components()
        c = torch.randint(q.mean.shape[0], (n,), device=q.mean.device)
        return DiagonalGaussian(q.mean[c], q.logvar[c]).sample()

    def extra_repr(self) -> str:
        return (f"latent_dim={self.latent_dim}, components={self.pseudo_inputs.shape[0]}, "
                f"pseudo_input_shape={tuple(self.pseudo_inputs.shape[1:])}")
