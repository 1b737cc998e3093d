"""How the per-sample terms combine into the loss: the ELBO, with free bits on the rate.

ELBO (Kingma & Welling 2014, eq. 3): L(x) = E_q[log p(x|z)] − β·KL(q(z|x) ‖ p(z)); the loss
is −L, i.e. distortion + β·rate (+ any auxiliary bottleneck loss).

Free bits (Kingma et al. 2016, eq. 15): each latent dimension's KL, averaged over the batch,
enters the loss as max(λ, KL_j); below λ the dimension gets no gradient towards the prior.
"""
from __future__ import annotations

import torch
from torch import nn

from xae.errors import XaeError


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

    def forward(self, distortion: torch.Tensor, rate: torch.Tensor, aux: torch.Tensor,
                beta: float) -> torch.Tensor:
        return distortion + beta * rate + aux


OBJECTIVES: dict[str, type[nn.Module]] = {"elbo": ELBO}


def check_free_bits(lam: float) -> None:
    if lam < 0:
        raise XaeError(f"model.free_bits must be ≥ 0 nats per dimension, got {lam}")
