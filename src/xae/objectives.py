"""How the named per-sample terms combine into the loss: the ELBO and the IWAE bound.

ELBO (Kingma & Welling 2014, eq. 3): L(x) = E_q[log p(x|z)] − β·KL(q(z|x) ‖ p(z)); the loss
is −L, i.e. distortion + β·rate (+ any auxiliary bottleneck loss).

IWAE (Burda et al. 2016, eq. 8): with K samples z_k ~ q(z|x) and log w_k = log p(x|z_k) −
β·(log q(z_k|x) − log p(z_k)), L_K(x) = log (1/K) Σ_k w_k; at β = 1 a lower bound on log p(x)
that tightens as K grows, and equal to the (Monte Carlo) ELBO at K = 1.

Terms come by name (see :class:`xae.outputs.Term`); an objective only reads their kinds:
distortion terms count once, rate terms β times, auxiliary terms once.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from xae import checks as C
from xae.errors import positive_int
from xae.outputs import Term


def _kind_sum(terms: dict[str, Term], kind: str) -> torch.Tensor | float:
    """Σ weight·value (free-bits-clipped where clipped) of the terms of one kind."""
    return sum((t.weight * t.for_loss for t in terms.values() if t.kind == kind), 0.0)


class ELBO(nn.Module):
    """loss_b = Σ distortion terms + β·Σ rate terms + Σ aux terms (each with its weight); the
    model returns the batch mean."""

    samples, importance_weighted = 1, False

    def __init__(self) -> None:
        super().__init__()

    def forward(self, terms: dict[str, Term], beta: float) -> torch.Tensor:
        return (_kind_sum(terms, "distortion") + beta * _kind_sum(terms, "rate")
                + _kind_sum(terms, "aux"))


class IWAE(nn.Module):
    """loss_b = −log (1/K) Σ_k exp(−(distortion_kb + β·rate_kb)) + aux_b, from (K, B)
    distortion and rate terms (the rate here is log q(z_k|x) − log p(z_k)) and (B,) aux."""

    importance_weighted = True
    KEYS = {"samples": ("importance samples K", C.between(1, 10_000))}

    def __init__(self, *, samples: int = 5) -> None:
        super().__init__()
        self.samples = positive_int(samples, "model.iwae.samples")

    def forward(self, terms: dict[str, Term], beta: float) -> torch.Tensor:
        log_w = -(_kind_sum(terms, "distortion") + beta * _kind_sum(terms, "rate"))
        return -(torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])) + _kind_sum(terms,
                                                                                    "aux")


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    """(Σ_k w_k)² / Σ_k w_k² per datum from log-weights (K, B): between 1 and K."""
    return torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))


OBJECTIVES: dict[str, type[nn.Module]] = {"elbo": ELBO, "iwae": IWAE}

