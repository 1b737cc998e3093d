"""The discretized logistic likelihood over 256 grey levels (PixelCNN++, Salimans et al. 2017,
with one component): a probability, not a density, for 8-bit data scaled to k/255.

Each value x = k/255 owns the bin [x − h, x + h], h = 1/510, and

    p(x|μ, s) = F((x + h − μ)/s) − F((x − h − μ)/s),   F the logistic CDF (the sigmoid),

with the first bin widened to −∞ and the last to +∞, so that the 256 probabilities of a pixel
sum to 1 exactly. −log₂ p(x) is then a code length in bits that a lossless compressor of the
same 8-bit image can be compared with (the input-complexity score of :mod:`xae.anomaly`). The
decoder gives the location μ of every pixel; the scale s is one learned value per pixel
(started at ``INIT_SCALE``). Data must lie on the 8-bit grid k/255 (:func:`check_on_grid`:
training and scoring refuse other data, e.g. the 17-level digits, rather than give numbers that
are no probabilities; quantize with round(255·x)/255 first).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xae.errors import XaeError
from xae.likelihoods.base import Likelihood

LEVELS = 256
HALF_BIN = 0.5 / (LEVELS - 1)
INIT_SCALE = 0.1


def check_on_grid(x: torch.Tensor, what: str) -> None:
    """Refuse data that are not 8-bit grey levels k/255 in [0, 1] (within 1e-4 of a level)."""
    off = (x * (LEVELS - 1) - torch.round(x * (LEVELS - 1))).abs() > (LEVELS - 1) * 1e-4
    if x.numel() and (bool(off.any()) or float(x.min()) < 0 or float(x.max()) > 1):
        raise XaeError(f"the discretized likelihood needs 8-bit data, values k/255 in [0, 1], "
                       f"but {what} has {int(off.sum())} values off that grid (range "
                       f"[{float(x.min()):.3g}, {float(x.max()):.3g}]); quantize them with "
                       f"round(255·x)/255, or use model.likelihood=gaussian")


def log_bin_probability(x: torch.Tensor, mu: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """log p(x|μ, s) per element: log(σ(a) − σ(b)) for a = (x + h − μ)/s and b = (x − h − μ)/s,
    computed on the side of the logistic where it does not cancel (σ(a) − σ(b) equals
    σ(−b) − σ(−a)), with the edge bins open: log σ(a) at x = 0, log σ(−b) at x = 1."""
    inv_s = torch.exp(-log_s)
    a, b = (x + HALF_BIN - mu) * inv_s, (x - HALF_BIN - mu) * inv_s
    right = (a + b) > 0  # mirror: both arguments to the left of the logistic's centre
    hi, lo = torch.where(right, -b, a), torch.where(right, -a, b)
    upper, lower = F.logsigmoid(hi), F.logsigmoid(lo)
    inner = upper + torch.log(-torch.expm1(torch.clamp(lower - upper, max=-1e-12)))
    first, last = x < HALF_BIN, x > 1 - HALF_BIN
    return torch.where(first, F.logsigmoid(a), torch.where(last, F.logsigmoid(-b), inner))


class DiscretizedLogistic(Likelihood):
    """See the module's docstring: θ is the location μ of every pixel, shaped like the data."""

    def __init__(self, data_shape: tuple[int, ...]) -> None:
        super().__init__(data_shape)
        self.log_scale = nn.Parameter(torch.full(self.data_shape, math.log(INIT_SCALE)))

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return log_bin_probability(x, theta, self.log_scale)

    def mean(self, theta: torch.Tensor) -> torch.Tensor:
        """The location, clamped to [0, 1] (the logistic's centre; the edge bins pull the
        exact mean of the discretized variable towards the middle)."""
        return theta.clamp(0.0, 1.0)

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        """A logistic draw around μ, rounded to the nearest level and clipped to [0, 1]."""
        u = torch.rand_like(theta).clamp(1e-6, 1 - 1e-6)
        x = theta + torch.exp(self.log_scale.detach()) * (torch.log(u) - torch.log1p(-u))
        return (x.clamp(0.0, 1.0) * (LEVELS - 1)).round() / (LEVELS - 1)
