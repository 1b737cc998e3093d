"""DIP-VAE (Kumar et al. 2018): the VAE's KL plus a penalty that moments-matches the aggregate
posterior's covariance to the prior's identity ("disentangled inferred prior").

With C the covariance of the codes over the batch, the penalty (their eq. 6 and 7) is

    λ_od · Σ_{i≠j} C_ij²  +  λ_d · Σ_i (C_ii − 1)²,

where, from the posterior means μ(x) and variances σ²(x) of the batch (covariances biased, 1/B),

    DIP-VAE-I:   C = Cov_p(x)[μ(x)]
    DIP-VAE-II:  C = E_p(x)[diag σ²(x)] + Cov_p(x)[μ(x)]   (the covariance of q(z)).

The penalty is a property of the batch, so every sample carries the same value (term ``dip``);
the KL is term ``kl``. Their settings: λ_d = 10·λ_od for DIP-VAE-I and λ_d = λ_od for
DIP-VAE-II (disentanglement_lib's ``lambda_d_factor`` of 10 and 1).
"""
from __future__ import annotations

import torch

from xae import checks as C
from xae.errors import XaeError
from xae.outputs import BottleneckOutput, Term
from xae.priors.base import Prior
from xae.regularizers.base import Rate, Regularizer
from xae.regularizers.kl import ESTIMATOR_KEY, KL

KINDS = ("i", "ii")


def code_covariance(mean: torch.Tensor, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """(D, D): the batch covariance (1/B) of the means ``mean`` (B, D), plus the mean of the
    posterior variances exp(``logvar``) on the diagonal when ``logvar`` is given (DIP-VAE-II)."""
    centred = mean - mean.mean(0, keepdim=True)
    cov = centred.T @ centred / mean.shape[0]
    if logvar is not None:
        cov = cov + torch.diag(logvar.exp().mean(0))
    return cov


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """λ_od·Σ_{i≠j} C_ij² + λ_d·Σ_i (C_ii − 1)², a scalar."""
    diag = torch.diagonal(cov)
    off = (cov**2).sum() - (diag**2).sum()
    return lambda_od * off + lambda_d * ((diag - 1.0) ** 2).sum()


class DIP(Regularizer):
    """rate = KL(q(z|x) ‖ p(z)) + the DIP penalty of the batch; see the module's docstring.

    Parameters
    ----------
    kind : ``i`` (the covariance of the posterior means) or ``ii`` (of the aggregate posterior).
    lambda_od : λ_od ≥ 0, the weight of the squared off-diagonal covariances.
    lambda_d : λ_d ≥ 0, the weight of the squared deviations of the variances from 1.
    estimator : of the KL part (see :class:`~xae.regularizers.kl.KL`).
    """

    needs_posterior = True
    KEYS = {"kind": ("i: penalise Cov[μ(x)]; ii: Cov[μ(x)] + E[diag σ²(x)], the covariance "
                     "of q(z)", C.one_of(KINDS)),
            "lambda_od": ("λ_od, the weight of Σ_{i≠j} C_ij²", C.NON_NEGATIVE_FLOAT),
            "lambda_d": ("λ_d, the weight of Σ_i (C_ii − 1)² (the paper: 10·λ_od for i, "
                         "λ_od for ii)", C.NON_NEGATIVE_FLOAT),
            "estimator": ESTIMATOR_KEY}

    def __init__(self, *, kind: str = "i", lambda_od: float = 10.0, lambda_d: float = 100.0,
                 estimator: str = "analytic") -> None:
        super().__init__()
        if kind not in KINDS:
            raise XaeError(f"model.dip.kind '{kind}' is unknown; use i (DIP-VAE-I) or ii "
                           f"(DIP-VAE-II)")
        for name, v in (("lambda_od", lambda_od), ("lambda_d", lambda_d)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                raise XaeError(f"model.dip.{name} must be a number ≥ 0, got {v!r}")
        self.kind, self.lambda_od, self.lambda_d = kind, float(lambda_od), float(lambda_d)
        self.kl = KL(estimator=estimator)

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        """Two rate terms, ``kl`` and ``dip`` (the batch's penalty on every sample)."""
        b = out.z.shape[0]
        if b < 2:
            raise XaeError(f"DIP-VAE penalises the covariance of the codes over the batch and "
                           f"needs batches of at least 2, got {b}; raise train.batch_size "
                           f"(and keep the data set from leaving a last batch of 1)")
        q = out.posterior
        cov = code_covariance(q.mean, q.logvar if self.kind == "ii" else None)
        penalty = dip_penalty(cov, self.lambda_od, self.lambda_d).expand(b)
        kl = self.kl(out, prior).terms["rate"]
        what = "Cov[μ(x)]" if self.kind == "i" else "Cov[μ(x)] + E[diag σ²(x)]"
        return Rate({"kl": kl, "dip": Term(penalty, "rate", note=f"DIP-VAE-{self.kind.upper()} "
                                           f"penalty on {what} (Kumar et al. 2018)")})
