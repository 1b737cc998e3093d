"""The contract of the discrete bottlenecks (VQ, residual VQ, FSQ, LFQ, Gumbel-softmax).

A quantizer maps each of P positions' d-vectors to one of K codes. As a bottleneck it owns a
linear map from the encoder's features to P·d values (Gumbel-softmax then maps each
position's d values to K logits with one layer shared by all positions, like the 1×1
convolution of DALL-E's dVAE), quantizes every position with :meth:`Quantizer.quantize` and
hands the decoder the P codes side by side, z of shape (B, P·d). Built with ``in_features=None`` it has
no map of its own and quantizes given vectors: the stages of residual VQ are built that way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from xae.bottlenecks.base import Bottleneck
from xae.errors import XaeError, positive_int
from xae.nets.common import init_linear
from xae.outputs import BottleneckOutput


@dataclass
class Quantized:
    """What :meth:`Quantizer.quantize` returns for N vectors.

    codes : (N, d) the quantized vectors, with gradients straight through to the input.
    indices : (N,) long code indices, or (N, S) for S residual stages.
    aux : (N,) the quantizer's own loss per vector (commitment, codebook, entropy), in the
        units of the objective; zeros when it has none.
    logits : (N, K) categorical logits for quantizers with a posterior (Gumbel-softmax).
    """

    codes: torch.Tensor
    indices: torch.Tensor
    aux: torch.Tensor
    logits: torch.Tensor | None = None


class Quantizer(Bottleneck):
    """Base class: subclasses set ``codebook_size`` and implement ``quantize`` and
    ``indices_to_codes``; ``stages`` > 1 only for residual VQ."""

    discrete = True
    stages = 1
    codebook_size: int
    aux_name = "quantizer_loss"  # the name of its auxiliary term ("" when it has none)

    def __init__(self, in_features: int | None, latent_dim: int, code_dim: int) -> None:
        super().__init__(in_features or 0, latent_dim)
        d = positive_int(code_dim, f"{type(self).__name__}'s code size (code_dim)")
        if latent_dim % d:
            raise XaeError(f"model.latent_dim {latent_dim} must be a multiple of the code size "
                           f"{d} ({type(self).__name__} reads z as latent_dim / {d} positions "
                           f"of {d} values); change model.latent_dim or the quantizer's size")
        self.code_dim, self.positions = d, latent_dim // d
        self.proj = None if in_features is None else init_linear(
            nn.Linear(in_features, self.positions * d), None)

    @property
    def bits_per_position(self) -> float:
        """log2 of the number of distinct codes a position can take (over all stages)."""
        return self.stages * math.log2(self.codebook_size)

    @property
    def restarts_done(self) -> int | None:
        """Dead codes re-seeded so far (VQ, also as residual stages); None when this
        quantizer never restarts codes."""
        counters = [m.restarts for m in self.modules()
                    if isinstance(getattr(m, "restarts", None), torch.Tensor)]
        return int(sum(int(c.sum()) for c in counters)) if counters else None

    def quantize(self, z: torch.Tensor, step: int | None = None) -> Quantized:
        """Quantize N vectors z (N, d) (Gumbel-softmax: N × K logits); ``step`` is the training step (None outside
        training)."""
        raise NotImplementedError

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors (..., d) of indices (...) (or (..., S) for residual stages)."""
        raise NotImplementedError

    def indices_to_z(self, indices: torch.Tensor) -> torch.Tensor:
        """The decoder's input (B, P·d) for an index grid (B, P) (or (B, P, S))."""
        return self.indices_to_codes(indices).flatten(1)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """The encoder's features (B, F) → the N = B·P vectors (N, d) to quantize."""
        return self.proj(h).view(h.shape[0] * self.positions, self.code_dim)

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        if self.proj is None:
            raise XaeError("this quantizer was built without an input map (in_features=None) "
                           "and quantizes vectors with .quantize(z); build it with the "
                           "encoder's feature size to use it as a bottleneck")
        b = h.shape[0]
        q = self.quantize(self.project(h), step)
        posterior = None
        if q.logits is not None:
            from xae.distributions import Categorical

            posterior = Categorical(q.logits.view(b, self.positions, -1))
        return BottleneckOutput(z=q.codes.reshape(b, -1), posterior=posterior,
                                indices=q.indices.view(b, self.positions, *q.indices.shape[1:]),
                                aux={self.aux_name: q.aux.view(b, self.positions).sum(1)}
                                if self.aux_name else {})

    def mode(self, h: torch.Tensor) -> torch.Tensor:
        """The code itself; in eval mode the most likely code per position where the
        posterior is categorical (Gumbel-softmax)."""
        out = self(h)
        if out.posterior is not None:
            return self.indices_to_z(out.posterior.logits.argmax(-1))
        return out.z
