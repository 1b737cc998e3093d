"""Gaussian and Laplace likelihoods with a fixed, learned scalar or learned per-pixel scale.

Mean squared error is the Gaussian likelihood with a fixed σ: −log p(x|μ) = ‖x−μ‖²/(2σ²) +
const, so minimising ``MSE + β·KL`` is the VAE with σ² = β/2 up to a constant factor: β and
the observation variance play the same role (Lucas et al. 2019, Rybkin et al. 2021). Learning
σ (``scale='scalar'`` or ``'pixel'``) lets the model pick that balance itself
(the σ-VAE of Rybkin et al. 2021); the linear VAE with a learned scalar σ is probabilistic PCA.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.likelihoods.base import Likelihood

SCALES = ("fixed", "scalar", "pixel")


class LocationScale(Likelihood):
    """Shared scale handling: ``log_scale`` is a buffer (fixed) or a parameter (learned).
    ``SECTION`` is the config section of the subclass's settings, for error messages."""

    SECTION: str
    KEYS = {"scale": ("the scale: fixed (at sigma), or learned: one scalar or per pixel",
                      C.one_of(SCALES)),
            "sigma": ("the fixed scale (the learned one's start)", C.POSITIVE_FLOAT)}

    def __init__(self, data_shape: tuple[int, ...], *, scale: str = "fixed",
                 sigma: float = 1.0) -> None:
        super().__init__(data_shape)
        if scale not in SCALES:
            raise XaeError(f"{self.SECTION}.scale '{scale}' is unknown; use one of "
                           f"{', '.join(SCALES)}")
        if not sigma > 0:
            raise XaeError(f"{self.SECTION}.sigma must be positive, got {sigma}")
        shape = self.data_shape if scale == "pixel" else ()
        init = torch.full(shape, math.log(sigma))
        if scale == "fixed":
            self.register_buffer("log_scale", init)
        else:
            self.log_scale = nn.Parameter(init)
        self.scale_mode = scale

    def mean(self, theta: torch.Tensor) -> torch.Tensor:
        return theta


class Gaussian(LocationScale):
    """log N(x; μ=θ, σ²) = −(x−μ)²/(2σ²) − log σ − ½ log 2π, per element."""

    SECTION = "model.gaussian"

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        inv_var = torch.exp(-2.0 * self.log_scale)
        return -0.5 * (x - theta) ** 2 * inv_var - self.log_scale - 0.5 * math.log(2 * math.pi)

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        return theta + torch.exp(self.log_scale) * torch.randn_like(theta)


class Laplace(LocationScale):
    """log Laplace(x; μ=θ, b) = −|x−μ|/b − log 2b, per element (L1 reconstruction)."""

    SECTION = "model.laplace"

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return -(x - theta).abs() * torch.exp(-self.log_scale) - self.log_scale - math.log(2.0)

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        # u ~ U(−1+eps, 1): never exactly −1, so log1p(−|u|) stays finite
        u = torch.empty_like(theta).uniform_(torch.finfo(theta.dtype).eps - 1, 1)
        return theta - torch.exp(self.log_scale) * u.sign() * torch.log1p(-u.abs())
