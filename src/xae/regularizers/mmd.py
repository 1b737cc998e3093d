"""WAE-MMD (Tolstikhin et al. 2018, Algorithm 2) and InfoVAE (Zhao et al. 2019, eq. 6) in one piece.

The InfoVAE objective weighs the per-sample KL(q(z|x) ‖ p(z)) by (1 − α) and a divergence
between the aggregate posterior q(z) and the prior p(z) by (α + λ − 1); with the MMD as that
divergence (the MMD-VAE) the rate per sample is

    rate = (1 − α)·KL(q(z|x) ‖ p(z)) + (α + λ − 1)·MMD²(q(z), p(z)).

With α = λ = 1 (the defaults) only the MMD is left: the WAE-MMD penalty, whose λ is then the
model's β, and which needs no posterior (a deterministic encoder works). MMD² is the unbiased
estimate of :func:`xae.mmd.mmd2` between the batch's codes and as many fresh prior draws, a
property of the batch, so every sample carries the same value.
"""
from __future__ import annotations

import math

import torch

from xae import checks as C
from xae.errors import XaeError
from xae.mmd import KERNELS, mmd2
from xae.outputs import BottleneckOutput, Term
from xae.priors.base import Prior
from xae.regularizers.base import Rate, Regularizer
from xae.regularizers.kl import ESTIMATOR_KEY, KL


def _check_weights(alpha: float, lam: float) -> None:
    """Both InfoVAE weights, 1 − α and α + λ − 1, must be finite and non-negative."""
    if not (math.isfinite(alpha) and math.isfinite(lam)):
        raise XaeError(f"model.mmd.info_alpha and model.mmd.info_lambda must be finite "
                       f"numbers, got {alpha} and {lam}")
    if alpha > 1:
        raise XaeError(f"model.mmd.info_alpha is {alpha}, which gives the KL the negative "
                       f"weight 1 − α = {1 - alpha:g}; use model.mmd.info_alpha ≤ 1 (1 = WAE, "
                       f"no KL)")
    if alpha + lam - 1 < 0:
        raise XaeError(f"model.mmd.info_alpha + model.mmd.info_lambda − 1 is "
                       f"{alpha + lam - 1:g}, a negative MMD weight; raise "
                       f"model.mmd.info_lambda to at least {1 - alpha:g}")


class MMD(Regularizer):
    """(1 − α)·KL + (α + λ − 1)·MMD² per sample (Zhao et al. 2019, eq. 6; Tolstikhin
    et al. 2018, Algorithm 2).

    Parameters
    ----------
    kernel : ``imq`` (inverse multiquadric, the WAE paper's choice) or ``rbf``, from
        :mod:`xae.mmd`.
    info_alpha, info_lambda : α ≤ 1 and λ ≥ 1 − α. The KL part, when its weight 1 − α is not
        zero, is the :class:`~xae.regularizers.kl.KL` regularizer (with ``estimator``) summed
        over dimensions, and then the regularizer needs a stochastic bottleneck.
    """

    is_kl = False
    KEYS = {"kernel": ("the MMD's kernel", C.one_of(KERNELS)),
            "info_alpha": ("InfoVAE's α in (1 − α)·KL + (α + λ − 1)·MMD² (1: WAE, no KL)",
                           C.between(None, 1.0)),
            "info_lambda": ("InfoVAE's λ (α + λ ≥ 1)", C.FINITE),
            "estimator": ESTIMATOR_KEY}

    def __init__(self, *, kernel: str = "imq", info_alpha: float = 1.0,
                 info_lambda: float = 1.0, estimator: str = "analytic") -> None:
        super().__init__()
        if kernel not in KERNELS:
            raise XaeError(f"model.mmd.kernel '{kernel}' is unknown; use one of "
                           f"{', '.join(KERNELS)}")
        alpha, lam = float(info_alpha), float(info_lambda)
        _check_weights(alpha, lam)
        self.kernel = kernel
        self.kl_weight = 1.0 - alpha
        self.mmd_weight = alpha + lam - 1.0
        self.needs_posterior = self.kl_weight != 0
        self.kl = KL(estimator=estimator) if self.needs_posterior else None

    def mmd(self, z: torch.Tensor, prior: Prior) -> torch.Tensor:
        """MMD² between the codes ``z`` (B, D) and B fresh draws from ``prior``; a scalar."""
        if z.shape[0] < 2:
            raise XaeError(f"the MMD regularizer compares a batch of codes with prior draws and "
                           f"needs batches of at least 2, got {z.shape[0]}; raise "
                           f"train.batch_size (and keep the data set from leaving a last "
                           f"batch of 1)")
        return mmd2(z, prior.sample(z.shape[0]).to(z), kernel=self.kernel)

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        """Two rate terms, ``kl`` (weight 1 − α) and ``mmd`` (weight α + λ − 1, the batch's
        MMD² on every sample), each present only when its weight is not zero."""
        terms = {}
        if self.kl is not None:
            kl = self.kl(out, prior).terms["rate"]
            terms["kl"] = Term(kl.value, "rate", self.kl_weight, note=kl.note)
        if self.mmd_weight != 0:
            mmd = self.mmd(out.z, prior).expand(out.z.shape[0])
            terms["mmd"] = Term(mmd, "rate", self.mmd_weight, note=f"MMD², {self.kernel} kernel")
        return Rate(terms)
