"""KL(q(z|x) ‖ p(z)) per latent group, with free bits (Kingma et al. 2016, eq. 15).

How each KL is computed (closed form or one-sample Monte Carlo) is decided in one place,
:func:`xae.distributions.kl_divergence`. A single group's term is ``rate``; the groups of a
hierarchy give one term each, ``rate/<group>``, against the prior its top-down path computed.
Free bits: each dimension's KL (each group's, where the KL does not split over dimensions),
averaged over the batch, enters the loss as max(λ·d, KL) with d its number of dimensions. λ is
one number for every group, or a list with one λ per latent group, top first (as NVAE and
VDVAE give the top groups a larger budget); a list must match the model's groups, which the
build checks.
"""
from __future__ import annotations

import torch
from torch import nn

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


def free_bits_on(value: float | list[float]) -> bool:
    """Whether a free-bits setting (one λ or one per group) clips anything."""
    return any(v > 0 for v in (value if isinstance(value, (list, tuple)) else [value]))


ESTIMATORS = ("analytic", "mc")
ESTIMATOR_KEY = ("the KL: analytic (Monte Carlo where the prior has no closed form) or mc",
                 C.one_of(ESTIMATORS))
FREE_BITS_KEY = ("λ, nats per latent dimension below which the KL is not penalised (per "
                 "dimension, or per group where a KL does not split)", C.NON_NEGATIVE_FLOAT)
FREE_BITS_PER_GROUP_KEY = (FREE_BITS_KEY[0] + "; a list gives one λ per latent group, top first",
                           C.number_or_each(C.NON_NEGATIVE_FLOAT, "one per latent group"))


class KL(Regularizer):
    """The rate is KL(q ‖ p) of each latent group, in nats.

    Parameters
    ----------
    estimator : ``analytic`` (closed form where the pair has one, else Monte Carlo) or ``mc``.
    free_bits : λ ≥ 0, nats per latent dimension below which the KL is not penalised; or a
        list with one λ per latent group of a hierarchy, top first.
    """

    needs_posterior = True
    is_kl = True
    KEYS = {"estimator": ESTIMATOR_KEY, "free_bits": FREE_BITS_PER_GROUP_KEY}

    def __init__(self, *, estimator: str = "analytic",
                 free_bits: float | list[float] = 0.0) -> None:
        super().__init__()
        per_group = isinstance(free_bits, (list, tuple))
        values = [float(v) for v in free_bits] if per_group else [float(free_bits)]
        if not values or not all(v >= 0 for v in values):
            raise XaeError(f"model.kl.free_bits must be ≥ 0 nats per dimension (one number, "
                           f"or a list of them, one per latent group), got {free_bits}")
        self.estimator = estimator
        self.free_bits: float | list[float] = values if per_group else values[0]

    def bind(self, model: nn.Module) -> None:
        """A list of λ must have one value per latent group of the model's code (checked
        here for a hierarchy that says how many groups it has, else at the first forward
        pass, from its groups)."""
        n = model.bottleneck.num_groups
        if n is not None or not model.hierarchical:
            self._check_groups(n)

    def _check_groups(self, n: int | None) -> None:
        if not isinstance(self.free_bits, list) or len(self.free_bits) == n:
            return
        lam = self.free_bits
        if n is None:
            raise XaeError(f"model.kl.free_bits {lam} gives one λ per latent group, but this "
                           f"model's code has no latent groups; write one number, e.g. "
                           f"model.kl.free_bits={lam[0]:g}")
        example = (lam + lam[-1:] * n)[:n]
        raise XaeError(f"model.kl.free_bits has {len(lam)} value{'s' * (len(lam) != 1)} "
                       f"{lam}, but the model has {n} latent groups; write {n} values, top "
                       f"group first, e.g. model.kl.free_bits={example}, or one number for "
                       f"every group")

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        lam = self.free_bits
        self._check_groups(None if out.groups is None else len(out.groups))
        if out.groups is None:
            term = kl_divergence(out.posterior, prior, out.z, self.estimator)
            return Rate({"rate": _clip(term, lam, out.z.shape[-1])})
        lams = lam if isinstance(lam, list) else [lam] * len(out.groups)
        terms = {}
        for g, lam_g in zip(out.groups, lams):
            p = g.prior if g.prior is not None else prior
            term = kl_divergence(g.posterior, p, g.z, self.estimator)
            terms[f"rate/{g.name}"] = _clip(term, lam_g, g.z.shape[-1])
        return Rate(terms)


class NoRegularizer(Regularizer):
    """No pull towards the prior (the plain autoencoder): no rate term."""

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        return Rate({})
