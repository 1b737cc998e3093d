"""A bottleneck applied at every position of a feature map: the spatial latent.

The encoder's map (B, F, h, w) is read as B·h·w feature vectors of size F; the inner
bottleneck (Gaussian, deterministic or any quantizer) maps each to its C values, as a 1×1
convolution would (diffusers' ``quant_conv``; lucidrains' quantizers with ``channel_first``),
and the results are put back position by position: z (B, h·w·C) is the C×h×w map flattened
with the channels last, which is also how a quantizer lays out its positions' codes. Batch
statistics of the inner piece (k-means initialisation, dead-code restarts, LFQ's codebook
entropy) see every position of the batch.
"""
from __future__ import annotations

import torch

from xae.bottlenecks.base import Bottleneck
from xae.distributions import Categorical, DiagonalGaussian
from xae.errors import XaeError
from xae.outputs import BottleneckOutput


class Positionwise(Bottleneck):
    """``inner`` (built for F features and C = latent_dim / (h·w) values) at each of the h·w
    positions; ``latent_dim`` is the whole code's size C·h·w."""

    def __init__(self, inner: Bottleneck, grid: tuple[int, int]) -> None:
        h, w = grid
        super().__init__(inner.in_features, inner.latent_dim * h * w)
        if inner.hierarchical:
            raise XaeError("a hierarchy of latent groups cannot act per position of a map; "
                           "use a flat encoder (model.encoder=mlp or conv)")
        self.inner, self.grid = inner, (h, w)
        self.stochastic, self.discrete = inner.stochastic, inner.discrete
        self.has_posterior = inner.has_posterior
        if inner.discrete:  # the index grid: every position's codes, positions first
            self.positions = inner.positions * h * w
            self.codebook_size, self.stages = inner.codebook_size, inner.stages
            self.aux_name = inner.aux_name

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w)."""
        return (self.inner.latent_dim, *self.grid)

    @property
    def bits_per_position(self) -> float:
        return self.inner.bits_per_position

    @property
    def restarts_done(self) -> int | None:
        return self.inner.restarts_done

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        b, f = h.shape[:2]
        if tuple(h.shape[2:]) != self.grid:
            raise XaeError(f"the encoder's map is {tuple(h.shape[1:])}, not (F, {self.grid[0]}, "
                           f"{self.grid[1]}) as this bottleneck was built for")
        out = self.inner(self._fold(h), step=step)
        return BottleneckOutput(
            z=out.z.reshape(b, -1), posterior=self._gather(out.posterior, b),
            indices=None if out.indices is None
            else out.indices.reshape(b, -1, *out.indices.shape[2:]),
            aux={name: v.view(b, -1).sum(1) for name, v in out.aux.items()})

    def _gather(self, posterior: object, b: int) -> object:
        """The per-position posterior as the whole code's."""
        if posterior is None:
            return None
        if isinstance(posterior, Categorical):
            return Categorical(posterior.logits.reshape(b, -1, posterior.logits.shape[-1]))
        if isinstance(posterior, DiagonalGaussian):
            return posterior.reshape(b, -1)
        raise XaeError(f"a {type(posterior).__name__} posterior cannot be read per position")

    def mode(self, h: torch.Tensor) -> torch.Tensor:
        return self.inner.mode(self._fold(h)).reshape(h.shape[0], -1)

    @staticmethod
    def _fold(h: torch.Tensor) -> torch.Tensor:
        """The map (B, F, h, w) as B·h·w feature vectors, position by position."""
        return h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])

    def indices_to_z(self, indices: torch.Tensor) -> torch.Tensor:
        """The code (B, h·w·C) of an index grid (B, h·w·P[, S])."""
        return self.inner.indices_to_codes(indices).flatten(1)

    def extra_repr(self) -> str:
        return f"grid={self.grid}"
