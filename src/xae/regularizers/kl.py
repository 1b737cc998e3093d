"""KL(q(z|x) ‖ p(z)) per latent group, with free bits (Kingma et al. 2016, eq. 15).

How each KL is computed (closed form or one-sample Monte Carlo) is decided in one place,
:func:`xae.distributions.kl_divergence`. A single group's term is ``rate``; the groups of a
hierarchy give one term each, ``rate/<group>``, against the prior its top-down path computed.
Free bits: each dimension's KL (each group's, where the KL does not split over dimensions),
averaged over the batch, enters the loss as max(λ·d, KL) with d its number of dimensions.
"""
from __future__ import annotations

import torch

from xae import checks as C
from xae.distributions import kl_divergence
from xae.errors import XaeError
from xae.outputs import BottleneckOutput, Term
from xae.priors.base import Prior
from xae.regularizers.base import Rate, Regularizer


def free_bits(rate_per_dim: torch.Tensor, lam: float) -> torch.Tensor:
    """Per-sample rate for the loss whose batch mean is Σ_j max(λ, mean_b KL_bj).

    Dimensions whose batch-mean KL is below λ contribute the constant λ to every sample.
    """
    if lam <= 0:
        return rate_per_dim.sum(-1)
    below = rate_per_dim.mean(0, keepdim=True) < lam
    clipped = torch.where(below, torch.full_like(rate_per_dim, lam), rate_per_dim)
    return clipped.sum(-1)


def _clip(term: Term, lam: float, dims: int) -> Term:
    if lam > 0:
        if term.per_dim is not None:
            term.clipped = free_bits(term.per_dim, lam)
        else:  # one KL for the whole group: its floor is λ per dimension of the group
            floor = lam * dims
            term.clipped = term.value if term.value.mean() >= floor \
                else torch.full_like(term.value, floor)
    return term


ESTIMATORS = ("analytic", "mc")
ESTIMATOR_KEY = ("the KL: analytic (Monte Carlo where the prior has no closed form) or mc",
                 C.one_of(ESTIMATORS))
FREE_BITS_KEY = ("λ, nats per latent dimension below which the KL is not penalised (per "
                 "dimension, or per group where a KL does not split)", C.NON_NEGATIVE_FLOAT)


class KL(Regularizer):
    """The rate is KL(q ‖ p) of each latent group, in nats.

    Parameters
    ----------
    estimator : ``analytic`` (closed form where the pair has one, else Monte Carlo) or ``mc``.
    free_bits : λ ≥ 0, nats per latent dimension below which the KL is not penalised.
    """

    needs_posterior = True
    is_kl = True
    KEYS = {"estimator": ESTIMATOR_KEY, "free_bits": FREE_BITS_KEY}

    def __init__(self, *, estimator: str = "analytic", free_bits: float = 0.0) -> None:
        super().__init__()
        if free_bits < 0:
            raise XaeError(f"model.kl.free_bits must be ≥ 0 nats per dimension, got "
                           f"{free_bits}")
        self.estimator, self.free_bits = estimator, float(free_bits)

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        if out.groups is None:
            term = kl_divergence(out.posterior, prior, out.z, self.estimator)
            return Rate({"rate": _clip(term, self.free_bits, out.z.shape[-1])})
        terms = {}
        for g in out.groups:
            p = g.prior if g.prior is not None else prior
            term = kl_divergence(g.posterior, p, g.z, self.estimator)
            terms[f"rate/{g.name}"] = _clip(term, self.free_bits, g.z.shape[-1])
        return Rate(terms)


class NoRegularizer(Regularizer):
    """No pull towards the prior (the plain autoencoder): no rate term."""

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        return Rate({})
