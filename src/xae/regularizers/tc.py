"""β-TCVAE (Chen et al. 2018): the KL split into index-code MI, total correlation and
dimension-wise KL (their eq. 2), with the total correlation weighed by β (``weight``, the
setting ``model.tc.weight``; α = γ = 1).

For a batch z_i ~ q(z|x_i), i = 1..M, drawn from a data set of N points, the aggregate posterior
q(z) = (1/N) Σ_n q(z|x_n) and its marginals q(z_d) are estimated from the batch's posteriors
(their sec. 4.1 and App. C) as

    log q(z_i)   ≈ log Σ_j w_ij q(z_i | x_j)
    log q(z_id)  ≈ log Σ_j w_ij q(z_id | x_j)

with w_ii = 1/N for the datum's own posterior and w_ij = (N − 1) / (N (M − 1)) for the others,
the importance weights of a batch that holds x_i and M − 1 draws from the other N − 1 data.
The weights sum to one, so the estimate of q(z_i) is unbiased, and with N = M it is the exact
mixture of the batch's posteriors. (The minibatch-weighted form of the paper weighs every term
by 1/(NM); those weights sum to 1/N, which leaves every log-density low by about log N and adds
a constant (D − 1)·log N to the TC, with no effect on gradients but a meaningless value.)
Whatever the estimate, MI + TC + dimension-wise KL = log q(z_i|x_i) − log p(z_i), the
one-sample Monte Carlo KL, so ``weight`` = 1 is the VAE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from xae import checks as C
from xae.distributions import DiagonalGaussian
from xae.errors import XaeError
from xae.outputs import BottleneckOutput, Term
from xae.priors.base import Prior
from xae.regularizers.base import Rate, Regularizer


@dataclass
class TCTerms:
    """The three parts of the Monte Carlo KL per sample, (B,) each, in nats (Chen et al.
    2018, eq. 2): ``mi`` = log q(z|x) − log q(z) (index-code mutual information), ``tc`` =
    log q(z) − Σ_d log q(z_d) (total correlation), ``dim_kl`` = Σ_d log q(z_d) − log p(z_d)."""

    mi: torch.Tensor
    tc: torch.Tensor
    dim_kl: torch.Tensor


def _log_weights(m: int, n: int, like: torch.Tensor) -> torch.Tensor:
    """log w_ij, (M, M): 1/N on the diagonal (own posterior), (N − 1)/(N (M − 1)) elsewhere."""
    other = math.log(n - 1) - math.log(n) - math.log(m - 1)
    log_w = torch.full((m, m), other, dtype=like.dtype, device=like.device)
    return log_w.fill_diagonal_(-math.log(n))


def decompose(z: torch.Tensor, posterior: DiagonalGaussian, prior: Prior,
              dataset_size: int = 0) -> TCTerms:
    """MI, TC and dimension-wise KL of each sample of a batch (Chen et al. 2018, eq. 2, App. C).

    Parameters
    ----------
    z : (M, D) codes, z_i ~ q(z|x_i); M ≥ 2.
    posterior : the batch's q(z|x), (M, D) means and log-variances.
    prior : a factorized prior (``log_prob_per_dim``).
    dataset_size : N, the size of the data set the batch is drawn from; 0 takes the batch as
        the whole data set (N = M). A batch holds at least M distinct data, so N < M counts as M.

    Memory is M²·D for the pairwise per-dimension log-densities, computed once.
    """
    m = z.shape[0]
    if m < 2:
        raise XaeError(f"the total-correlation regularizer estimates q(z) from the other codes of "
                       f"the batch and needs batches of at least 2, got {m}; raise "
                       f"train.batch_size (and keep the data set from leaving a last batch of 1)")
    n = max(int(dataset_size), m)
    # log q(z_id | x_j) for every pair (i, j) and dimension d: (M, M, D)
    pairs = DiagonalGaussian(posterior.mean.unsqueeze(0), posterior.logvar.unsqueeze(0))
    log_qzd_pairs = pairs.log_prob_per_dim(z.unsqueeze(1))
    log_w = _log_weights(m, n, z)
    log_qz = torch.logsumexp(log_w + log_qzd_pairs.sum(-1), dim=1)
    log_qzd = torch.logsumexp(log_w.unsqueeze(-1) + log_qzd_pairs, dim=1)
    return TCTerms(mi=posterior.log_prob(z) - log_qz,
                   tc=log_qz - log_qzd.sum(-1),
                   dim_kl=(log_qzd - prior.log_prob_per_dim(z)).sum(-1))


def _check(weight: float, dataset_size: int) -> None:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
            or not weight >= 0 or math.isinf(weight):
        raise XaeError(f"model.tc.weight must be a number ≥ 0 (β of β-TCVAE, 1 = the VAE), "
                       f"got {weight!r}")
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < 0:
        raise XaeError(f"model.tc.dataset_size must be an integer ≥ 0 (the number of training "
                       f"points; 0 = the batch size), got {dataset_size!r}")


class TotalCorrelation(Regularizer):
    """rate = MI + β·TC + dimension-wise KL per sample (Chen et al. 2018, eq. 4 with
    α = γ = 1), estimated by :func:`decompose` over the batch.

    Parameters
    ----------
    weight : β ≥ 0, the weight of the total correlation (``model.tc.weight``); 1 gives the
        one-sample Monte Carlo KL (then ``is_kl`` is True). Kept as ``tc_weight``.
    dataset_size : N, the number of training points (0 = the batch size; training fills it
        in).
    """

    needs_posterior = True
    needs_factorized_prior = True
    KEYS = {"weight": ("β, the weight of the total correlation (1: the VAE)",
                       C.NON_NEGATIVE_FLOAT),
            "dataset_size": ("N, the training set's size (0: filled in by training)",
                             C.NON_NEGATIVE)}

    def __init__(self, *, weight: float = 6.0, dataset_size: int = 0) -> None:
        super().__init__()
        _check(weight, dataset_size)
        self.tc_weight = float(weight)
        self.dataset_size = dataset_size
        self.is_kl = self.tc_weight == 1.0

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        """Three rate terms, ``mi``, ``tc`` (weight β) and ``dim_kl``."""
        t = decompose(out.z, out.posterior, prior, self.dataset_size)
        return Rate({"mi": Term(t.mi, "rate"), "tc": Term(t.tc, "rate", self.tc_weight),
                     "dim_kl": Term(t.dim_kl, "rate")})
