"""Return types: one dataclass per kind of result, never tuples of varying length."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class BottleneckOutput:
    """What a bottleneck returns.

    Attributes
    ----------
    z : the latent code fed to the decoder, (B, D).
    posterior : q(z|x) as a distribution object (``mean``, ``logvar``, ``std``, ``sample()``,
        ``mode()``, ``log_prob()``), or None for deterministic and discrete bottlenecks.
    indices : code indices for discrete bottlenecks, else None.
    aux_loss : per-sample auxiliary loss (B,) added to the objective (e.g. commitment), zeros
        when the bottleneck has none.
    """

    z: torch.Tensor
    posterior: Any | None = None
    indices: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None


@dataclass
class AEOutput:
    """The result of ``model(x, beta)``: the scalar loss and its per-sample terms, in nats.

    ``rate`` is the unclipped regularizer (the KL for VAEs); ``loss`` uses the free-bits-clipped
    rate when free bits are on. ``elbo`` is ``-(distortion + rate)`` per sample and is a lower
    bound on log p(x) only for models with a proper likelihood and a KL rate. With a
    K-sample objective (IWAE) distortion and rate are averages over the K samples, ``z`` and
    ``x_mean`` belong to the first sample, and ``ess`` (B,) is the effective sample size of
    the importance weights, between 1 and K.
    """

    loss: torch.Tensor
    distortion: torch.Tensor
    rate: torch.Tensor
    rate_per_dim: torch.Tensor | None
    z: torch.Tensor
    posterior: Any | None
    x_mean: torch.Tensor
    aux_loss: torch.Tensor
    beta: float
    indices: torch.Tensor | None = None
    ess: torch.Tensor | None = None

    @property
    def elbo(self) -> torch.Tensor:
        return -(self.distortion + self.rate)


@dataclass
class EvalResult:
    """Test-set averages (nats per sample unless the name says otherwise), the mean rate of
    each latent dimension where the regularizer defines one, and diagnostic warnings (e.g.
    posterior collapse)."""

    metrics: dict[str, float] = field(default_factory=dict)
    rate_per_dim: list[float] | None = None
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]
