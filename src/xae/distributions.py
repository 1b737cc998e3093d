"""Diagonal Gaussian q(z|x) = N(μ, diag σ²), parameterised by the mean and the log-variance."""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """A batch of diagonal Gaussians; every method is per sample unless it says per dimension.

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

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

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
