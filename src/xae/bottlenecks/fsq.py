"""Finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made
Simple", sec. 3): each of d dimensions is bounded and rounded to one of L_i levels, so the
implicit codebook is the grid of ∏ L_i codes, with no codebook to learn or collapse.

The code z (B, D) is read as P = D / d positions of d = ``len(levels)`` dimensions each. Per
dimension, bound(z) = tanh(z + s)·h − o with h = (L − 1)(1 − ε)/2, o = ½ for even L (else 0)
and s = tan(o / h) (the shift of the paper's reference code; it moves where z = 0 lands, not
the range; atanh(o / h) would be undefined for L = 2), so that rounding gives exactly L
integers; the rounded value is divided by ⌊L/2⌋, putting the codes in [−1, 1]. Rounding passes gradients straight through (the
gradient of round is taken as 1; ibid. eq. 1). Each position's index is the mixed-radix
number of its d digits (digit_i = level index, radix L_i). The encoder's features are
layer-normalised (no affine) before the linear map to z, so that z starts and stays within the
bound's unsaturated range (see ``FSQ.__init__``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from xae import checks as C
from xae.bottlenecks.quantizer import Quantized, Quantizer
from xae.errors import XaeError

EPS = 1e-3  # keeps the bound just inside the outer levels


def _check_levels(levels: object) -> list[int]:
    try:
        out = [int(v) for v in levels]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        out = []
    if not out or any(v < 2 for v in out) or any(float(v) != v for v in levels):  # type: ignore
        raise XaeError(f"model.fsq.levels must be a list of integers ≥ 2 (levels per "
                       f"dimension, e.g. [8, 5, 5, 5] for 1000 codes), got {levels!r}")
    return out


class FSQ(Quantizer):
    """P positions of d = len(levels) dimensions, each bounded and rounded.

    Parameters
    ----------
    levels : L_1..L_d (config ``model.fsq.levels``); ``latent_dim`` must be a multiple of d.
    """

    aux_name = ""  # no auxiliary loss
    KEYS = {"levels": ("levels per value (K = their product)",
                       C.each(C.between(2, 2**16), min_len=1))}

    def __init__(self, in_features: int | None, latent_dim: int, *,
                 levels: list[int] = [8, 5, 5, 5]) -> None:
        lv = _check_levels(levels)
        super().__init__(in_features, latent_dim, len(lv))
        self.codebook_size = math.prod(lv)
        # the bound saturates (tanh' ≈ 0) when z runs off, and from uncentred features (ReLU
        # outputs) Adam moves z by ~lr·F·mean(h) per step: on MNIST with the conv encoder z
        # left the bound's range within 50 steps and 1% of the codes stayed in use. Centring
        # and scaling each sample's features first keeps z where the levels are.
        self.norm = None if in_features is None else nn.LayerNorm(in_features,
                                                                   elementwise_affine=False)
        levels_t = torch.tensor(lv, dtype=torch.float32)
        half = (levels_t - 1) * (1 - EPS) / 2
        offset = (levels_t % 2 == 0).float() * 0.5
        self.register_buffer("levels", torch.tensor(lv), persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.tensor([1, *lv[:-1]]), 0),
                             persistent=False)
        self.register_buffer("half_range", half, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.register_buffer("shift", torch.tan(offset / half), persistent=False)
        self.register_buffer("width", torch.div(levels_t, 2, rounding_mode="floor"),
                             persistent=False)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """z (..., d) squashed into the range that rounds to exactly L_i integers."""
        return torch.tanh(z + self.shift) * self.half_range - self.offset

    def round(self, z: torch.Tensor) -> torch.Tensor:
        """Codes in [−1, 1] on the level grid, with straight-through gradients; z (..., d)."""
        b = self.bound(z)
        return (b + (torch.round(b) - b).detach()) / self.width

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., d) grid codes → (...) indices in [0, ∏ L_i)."""
        digits = torch.round(codes * self.width + self.width).long()
        return (digits * self.basis).sum(-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(...) indices → (..., d) grid codes, the inverse of :meth:`codes_to_indices`."""
        digits = torch.div(indices.unsqueeze(-1), self.basis, rounding_mode="floor") % self.levels
        return (digits.to(self.width.dtype) - self.width) / self.width

    def project(self, h: torch.Tensor) -> torch.Tensor:
        return super().project(self.norm(h))

    def quantize(self, z: torch.Tensor, step: int | None = None) -> Quantized:
        codes = self.round(z)
        return Quantized(codes, self.codes_to_indices(codes.detach()), z.new_zeros(z.shape[0]))

    def extra_repr(self) -> str:
        return (f"levels={self.levels.tolist()}, positions={self.positions}, "
                f"codebook_size={self.codebook_size}")
