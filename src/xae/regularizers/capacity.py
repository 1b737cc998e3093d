"""Annealed capacity (Burgess et al. 2018, eq. 8): the KL pulled towards a target C that rises
linearly from 0 to C_max over N training steps, instead of being pushed down:

    loss = distortion + γ·|KL − C|,    C = C_max·min(step / N, 1)

with KL the batch mean of KL(q(z|x) ‖ p(z)) (as disentanglement_lib's annealed VAE does: the
absolute value of the batch's mean, not the mean of per-sample absolute values). Their dSprites
setting: γ = 1000, C_max = 25 nats, N = 100,000 steps.

The rate term stays the KL (``rate``, per sample and per dimension, so the ELBO and the
per-dimension KL keep their meaning); what enters the loss in its place is the term's
``clipped`` value γ·s·(KL_i − C), with s = sign(mean KL − C) taken from the batch and held
constant, whose batch mean is γ·|mean KL − C| and whose gradient is that of γ·|mean KL − C|.
Below the target the sign flips and the loss pushes the KL up. C at each step is logged as the
metric ``capacity``; outside training (step None) C is C_max.
"""
from __future__ import annotations

import torch

from xae import checks as C
from xae.errors import XaeError
from xae.outputs import BottleneckOutput
from xae.priors.base import Prior
from xae.regularizers.base import Rate, Regularizer
from xae.regularizers.kl import ESTIMATOR_KEY, KL


def capacity_at(step: int | None, c_max: float, steps: int) -> float:
    """C = C_max·min(step / N, 1); C_max when ``step`` is None (outside training)."""
    return c_max if step is None else c_max * min(max(step, 0) / steps, 1.0)


def capacity_loss(kl: torch.Tensor, c: float, gamma: float) -> torch.Tensor:
    """Per sample, (B,): γ·s·(KL_i − C) with s = sign(mean KL − C), not differentiated; its
    batch mean is γ·|mean KL − C|."""
    sign = torch.sign(kl.mean() - c).detach()
    return gamma * sign * (kl - c)


class Capacity(Regularizer):
    """The KL with the annealed-capacity loss γ·|KL − C|; see the module's docstring.

    Parameters
    ----------
    gamma : γ > 0, the weight of |KL − C|.
    c_max : C_max ≥ 0 nats, the final capacity.
    ramp_steps : N ≥ 1, the steps over which C rises from 0 to C_max.
    estimator : of the KL (see :class:`~xae.regularizers.kl.KL`).
    """

    needs_posterior = True
    is_kl = True
    KEYS = {"gamma": ("γ, the weight of |KL − C|", C.POSITIVE_FLOAT),
            "c_max": ("C_max, nats: the capacity reached at the end of the ramp",
                      C.NON_NEGATIVE_FLOAT),
            "ramp_steps": ("N, the steps over which C rises linearly from 0 to C_max",
                           C.POSITIVE),
            "estimator": ESTIMATOR_KEY}

    def __init__(self, *, gamma: float = 1000.0, c_max: float = 25.0,
                 ramp_steps: int = 100_000, estimator: str = "analytic") -> None:
        super().__init__()
        for name, v, lo in (("gamma", gamma, "> 0"), ("c_max", c_max, "≥ 0")):
            bad = isinstance(v, bool) or not isinstance(v, (int, float)) \
                or not (v > 0 if lo == "> 0" else v >= 0) or v == float("inf")
            if bad:
                raise XaeError(f"model.capacity.{name} must be a finite number {lo}, got {v!r}")
        if isinstance(ramp_steps, bool) or not isinstance(ramp_steps, int) or ramp_steps < 1:
            raise XaeError(f"model.capacity.ramp_steps must be an integer ≥ 1 (the length of the "
                           f"ramp of C), got {ramp_steps!r}")
        self.gamma, self.c_max, self.ramp_steps = float(gamma), float(c_max), ramp_steps
        self.kl = KL(estimator=estimator)

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        """The term ``rate`` (the KL, its loss γ·|KL − C|) and the metric ``capacity``."""
        term = self.kl(out, prior).terms["rate"]
        c = capacity_at(step, self.c_max, self.ramp_steps)
        term.clipped = capacity_loss(term.value, c, self.gamma)
        term.note += f"; loss γ·|KL − C|, γ = {self.gamma:g}, C = {c:g} (Burgess et al. 2018)"
        return Rate({"rate": term}, metrics={"capacity": term.value.new_full(term.value.shape, c)})
