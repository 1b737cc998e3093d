"""How the per-sample terms combine into the loss: the ELBO, with free bits on the rate.

ELBO (Kingma & Welling 2014, eq. 3): L(x) = E_q[log p(x|z)] − β·KL(q(z|x) ‖ p(z)); the loss
is −L, i.e. distortion + β·rate (+ any auxiliary bottleneck loss).

IWAE (Burda et al. 2016, eq. 8): with K samples z_k ~ q(z|x) and log w_k = log p(x|z_k) −
β·(log q(z_k|x) − log p(z_k)), L_K(x) = log (1/K) Σ_k w_k; at β = 1 a lower bound on log p(x)
that tightens as K grows, and equal to the (Monte Carlo) ELBO at K = 1.

Free bits (Kingma et al. 2016, eq. 15): each latent dimension's KL, averaged over the batch,
enters the loss as max(λ, KL_j); below λ the dimension gets no gradient towards the prior.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from xae import checks as C
from xae.errors import XaeError, positive_int


def free_bits(rate_per_dim: torch.Tensor, lam: float) -> torch.Tensor:
    """Per-sample rate for the loss whose batch mean is Σ_j max(λ, mean_b KL_bj).

    Dimensions whose batch-mean KL is below λ contribute the constant λ to every sample.
    """
    if lam <= 0:
        return rate_per_dim.sum(-1)
    below = rate_per_dim.mean(0, keepdim=True) < lam
    clipped = torch.where(below, torch.full_like(rate_per_dim, lam), rate_per_dim)
    return clipped.sum(-1)


class ELBO(nn.Module):
    """loss_b = distortion_b + β·rate_b + aux_b; the model returns the batch mean."""

    samples, importance_weighted = 1, False

    def __init__(self) -> None:
        super().__init__()

    def forward(self, distortion: torch.Tensor, rate: torch.Tensor, aux: torch.Tensor,
                beta: float) -> torch.Tensor:
        return distortion + beta * rate + aux


class IWAE(nn.Module):
    """loss_b = −log (1/K) Σ_k exp(−(distortion_kb + β·rate_kb)) + aux_b, from (K, B) terms
    (the rate here is the per-sample log q(z_k|x) − log p(z_k))."""

    importance_weighted = True
    KEYS = {"samples": ("importance samples K", C.between(1, 10_000))}

    def __init__(self, *, samples: int = 5) -> None:
        super().__init__()
        self.samples = positive_int(samples, "model.iwae.samples")

    def forward(self, distortion: torch.Tensor, rate: torch.Tensor, aux: torch.Tensor,
                beta: float) -> torch.Tensor:
        log_w = -(distortion + beta * rate)
        return -(torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])) + aux


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    """(Σ_k w_k)² / Σ_k w_k² per datum from log-weights (K, B): between 1 and K."""
    return torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))


OBJECTIVES: dict[str, type[nn.Module]] = {"elbo": ELBO, "iwae": IWAE}


def check_free_bits(lam: float) -> None:
    if lam < 0:
        raise XaeError(f"model.free_bits must be ≥ 0 nats per dimension, got {lam}")
