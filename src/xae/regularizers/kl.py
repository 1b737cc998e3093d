"""KL(q(z|x) ‖ p(z)): closed form where the prior has one, else a one-sample Monte Carlo estimate.

The Monte Carlo estimate uses the same reparameterised z the decoder sees:
KL ≈ log q(z|x) − log p(z) (Kingma & Welling 2014, eq. 6), unbiased with gradients through z.
"""
from __future__ import annotations

import torch

from xae import checks as C
from xae.outputs import BottleneckOutput
from xae.priors.base import Prior
from xae.regularizers.base import Regularizer


ESTIMATORS = ("analytic", "mc")
ESTIMATOR_KEY = ("the KL: analytic (Monte Carlo where the prior has no closed form) or mc",
                 C.one_of(ESTIMATORS))


class KL(Regularizer):
    needs_posterior = True
    is_kl = True
    KEYS = {"estimator": ESTIMATOR_KEY}

    def __init__(self, *, estimator: str = "analytic") -> None:
        super().__init__()
        self.estimator = estimator

    def forward(self, out: BottleneckOutput, prior: Prior) -> torch.Tensor:
        q = out.posterior
        if getattr(q, "discrete", False):  # a categorical posterior: the code prior's closed form
            return prior.kl(q)
        if self.estimator == "analytic" and prior.has_analytic_kl:
            return prior.kl(q)
        if prior.factorized:
            return q.log_prob_per_dim(out.z) - prior.log_prob_per_dim(out.z)
        return (q.log_prob(out.z) - prior.log_prob(out.z)).unsqueeze(-1)


class NoRegularizer(Regularizer):
    """No pull towards the prior (the plain autoencoder): a zero rate."""

    def forward(self, out: BottleneckOutput, prior: Prior) -> torch.Tensor:
        return out.z.new_zeros(out.z.shape[0], 1)
