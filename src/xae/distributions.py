"""Diagonal Gaussian q(z|x) = N(μ, diag σ²), parameterised by the mean and the log-variance."""
from __future__ import annotations

import math
from typing import Any

import torch

from xae.outputs import Term

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """A batch of diagonal Gaussians; every method is per sample unless it says per dimension.
    It is a posterior q(z|x) or a prior computed at run time (p(z_g | z_<g) of a hierarchy).

    Parameters
    ----------
    mean, logvar : (B, D) tensors. The reparameterised sample is z = μ + σ·ε, ε ~ N(0, I)
        (Kingma & Welling 2014, eq. 10).
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mean = mean
        self.logvar = logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def sample(self, k: int | None = None) -> torch.Tensor:
        """A reparameterised draw, (B, D); or (k, B, D) when ``k`` is given."""
        shape = self.mean.shape if k is None else (k, *self.mean.shape)
        return self.mean + self.std * torch.randn(shape, dtype=self.mean.dtype,
                                                  device=self.mean.device)

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z_j; μ_j, σ_j²) for each dimension; ``z`` may carry leading sample dims."""
        return -0.5 * ((z - self.mean) ** 2 / self.var + self.logvar + LOG_2PI)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_prob_per_dim(z).sum(-1)

    def entropy(self) -> torch.Tensor:
        return 0.5 * (self.logvar + 1.0 + LOG_2PI).sum(-1)

    factorized = True  # log_prob_per_dim exists

    def kl(self, other: Any) -> torch.Tensor | None:
        """KL(self ‖ other) per dimension, (B, D), in closed form, or None where there is
        none: against another diagonal Gaussian, ½[log σ_p² − log σ_q² + (σ_q² + (μ_q −
        μ_p)²)/σ_p² − 1]; against a prior piece, whatever closed form that prior has."""
        if isinstance(other, DiagonalGaussian):
            return 0.5 * (other.logvar - self.logvar
                          + (self.var + (self.mean - other.mean) ** 2) / other.var - 1.0)
        return other.kl(self)

    def tempered(self, temperature: float) -> "DiagonalGaussian":
        """The same means with the standard deviations scaled by ``temperature``."""
        return DiagonalGaussian(self.mean, self.logvar + 2 * math.log(temperature))

    def reshape(self, *shape: int) -> "DiagonalGaussian":
        return DiagonalGaussian(self.mean.reshape(*shape), self.logvar.reshape(*shape))

    def detach(self) -> "DiagonalGaussian":
        return DiagonalGaussian(self.mean.detach(), self.logvar.detach())


def pairwise_log_prob(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z_m; μ_n, diag σ_n²) for every pair: z (M, D) against N components → (M, N).

    Expands the square, −½ [z²·σ⁻² − 2 z·(μ σ⁻²) + Σ μ² σ⁻² + Σ log σ² + D log 2π], so memory
    is M × N, not M × N × D; mixtures of Gaussians (priors, aggregate posteriors) use it.

    The three terms of the square cancel where z is near μ_n and σ_n is small, so they are
    summed in float64 whatever the input's dtype: in float32 the rounding error, about
    1e-7·‖z‖²/σ², reached hundreds of nats for narrow components, and a VampPrior trained
    against that error by shrinking its components' variances (a loss going to −∞ with no
    gain in the true bound). The result has the dtype of ``z``.
    """
    zd, md, lv = z.double(), mean.double(), logvar.double()
    inv = torch.exp(-lv)
    const = (md.pow(2) * inv).sum(-1) + lv.sum(-1) + mean.shape[-1] * LOG_2PI
    return (-0.5 * (zd.pow(2) @ inv.T - 2 * zd @ (md * inv).T + const)).to(z.dtype)


def mixture_log_prob(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor,
                     log_weights: torch.Tensor | None = None) -> torch.Tensor:
    """log Σ_c π_c N(z; μ_c, diag σ_c²) for ``z`` of shape (..., D) against C components
    (means and log-variances (C, D)); ``log_weights`` (C,) are log π_c, uniform when None.
    The one mixture-of-Gaussians density: mixture and VampPrior priors, the aggregate
    posterior of the holes measure and β-TCVAE's estimate of q(z) all use it."""
    comp = pairwise_log_prob(z.reshape(-1, z.shape[-1]), means, logvars)
    if log_weights is None:
        log_p = torch.logsumexp(comp, -1) - math.log(comp.shape[-1])
    else:
        log_p = torch.logsumexp(comp + log_weights.to(comp.dtype), -1)
    return log_p.view(z.shape[:-1])


class Categorical:
    """A batch of categorical distributions over K codes at each of P positions (the posterior
    of the Gumbel-softmax bottleneck).

    Parameters
    ----------
    logits : (B, P, K) unnormalised log-probabilities.
    """

    discrete = True
    factorized = False

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def kl(self, other: Any) -> torch.Tensor | None:
        """KL(self ‖ other) per position, (B, P), where ``other`` (the code prior) has a
        closed form."""
        return other.kl(self)

    @property
    def log_probs(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, -1)

    def entropy(self) -> torch.Tensor:
        """H(q) per position, (B, P), in nats."""
        lp = self.log_probs
        return -(lp.exp() * lp).sum(-1)

    def kl_uniform(self) -> torch.Tensor:
        """KL(q ‖ uniform over K) = log K − H(q) per position, (B, P)."""
        return math.log(self.logits.shape[-1]) - self.entropy()


def kl_divergence(q: Any, p: Any, z: torch.Tensor, estimator: str = "analytic") -> Term:
    """KL(q ‖ p) per sample as a rate term: the one place that chooses how.

    In closed form when ``estimator`` is ``analytic`` and the pair has one (``q.kl(p)``);
    otherwise the one-sample Monte Carlo estimate log q(z) − log p(z) at the reparameterised
    ``z`` the decoder sees (Kingma & Welling 2014, eq. 6), per dimension when both factorize.
    The term's note says which was used.
    """
    if estimator == "analytic":
        closed = q.kl(p)
        if closed is not None:
            return Term(closed.sum(-1), "rate", per_dim=closed, note="KL, analytic")
    if q.factorized and p.factorized:
        per_dim = q.log_prob_per_dim(z) - p.log_prob_per_dim(z)
        return Term(per_dim.sum(-1), "rate", per_dim=per_dim, note="KL, Monte Carlo (1 sample)")
    return Term(q.log_prob(z) - p.log_prob(z), "rate", note="KL, Monte Carlo (1 sample)")
