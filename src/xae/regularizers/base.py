"""The regularizer contract."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from xae.outputs import BottleneckOutput, Term
from xae.priors.base import Prior


@dataclass
class Rate:
    """What a regularizer returns: its rate terms by name (kind ``rate``, (B,) each, with
    their per-dimension parts where they split), the scalar losses of its own optimizers by
    optimizer name (e.g. a discriminator's), and extra per-sample metrics."""

    terms: dict[str, Term]
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def total(self) -> torch.Tensor | float:
        """Σ weight·value over the terms, per sample (0.0 when there are none)."""
        return sum((t.weight * t.value for t in self.terms.values()), 0.0)

    @property
    def per_dim(self) -> torch.Tensor | None:
        """The terms' per-dimension parts side by side, or None when a term has none."""
        parts = [t.per_dim for t in self.terms.values()]
        return torch.cat(parts, -1) if parts and all(p is not None for p in parts) else None


class Regularizer(nn.Module):
    """Pulls the code towards the prior: ``forward(bottleneck_output, prior, step) -> Rate``
    (``step``: the training step, None outside training).

    ``needs_posterior`` regularizers require a stochastic bottleneck. ``is_kl`` says the rate
    is KL(q(z|x) ‖ p(z)) itself (an exact value or an unbiased estimate), so that
    distortion + rate is the negative ELBO and a small rate means posterior collapse.
    ``free_bits`` (λ nats per latent dimension) is a setting only of the regularizers whose
    rate is a KL per dimension or per group; for the others it is an error at build time.
    """

    needs_posterior: bool = False
    needs_factorized_prior: bool = False  # splits the KL over dimensions (β-TCVAE)
    is_kl: bool = False

    def __init__(self) -> None:
        super().__init__()

    def bind(self, model: nn.Module) -> None:
        """Called once by the model that owns this regularizer: one with networks sized by
        the code (FactorVAE's discriminator) builds them here."""

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        raise NotImplementedError
