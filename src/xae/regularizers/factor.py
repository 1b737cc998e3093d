"""FactorVAE (Kim & Mnih 2018): the VAE's KL plus γ times a density-ratio estimate of the
total correlation, from a discriminator on the codes with an optimizer of its own.

The discriminator d(z) is a logit: the log-odds that z was drawn from the aggregate posterior
q(z) rather than from the product of its marginals q̄(z) = Π_j q(z_j). At its optimum
d(z) = log q(z) − log q̄(z), so TC(z) = KL(q(z) ‖ q̄(z)) ≈ E_q[d(z)] (their eq. 3); the
rate term ``tc`` is d(z) per sample (weight γ), evaluated with the discriminator frozen so
that the model's loss sends it no gradient. The discriminator learns on its own loss
(returned under ``discriminator``): binary cross-entropy between the batch's codes (label 1)
and the same codes with every dimension permuted over the batch independently (label 0),
draws from q̄(z) (their Algorithm 2, with the permuted batch taken from the same codes,
detached). Their settings: γ = 6.4 to 40, Adam lr 1e-4 with β = (0.5, 0.9), six hidden
layers of 1000 units with leaky ReLU (slope 0.2); both are trained at every step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.optim import OptimizerSpec, OwnsOptimizer, frozen
from xae.outputs import BottleneckOutput, Term
from xae.priors.base import Prior
from xae.regularizers.base import Rate, Regularizer
from xae.regularizers.kl import ESTIMATOR_KEY, FREE_BITS_KEY, KL


class Discriminator(OwnsOptimizer, nn.Module):
    """An MLP z ↦ logit, stepped by its own Adam."""

    optimizer_name = "discriminator"

    def __init__(self, latent_dim: int, hidden: list[int], lr: float,
                 betas: tuple[float, float]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip([latent_dim, *hidden], hidden):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden[-1] if hidden else latent_dim, 1))
        self.spec = OptimizerSpec(lr, betas)

    def optimizer_spec(self) -> OptimizerSpec:
        return self.spec

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Each column of ``z`` (B, D) shuffled over the batch on its own: a draw from the product
    of the marginals (Kim & Mnih 2018, Algorithm 1)."""
    b, d = z.shape
    idx = torch.argsort(torch.rand(b, d, device=z.device), dim=0)
    return torch.gather(z, 0, idx)


class FactorTC(Regularizer):
    """rate = KL(q(z|x) ‖ p(z)) + γ·TC estimate per sample; see the module's docstring.

    Parameters
    ----------
    gamma : γ ≥ 0, the weight of the total-correlation estimate.
    hidden : the discriminator's hidden widths.
    lr, beta1, beta2 : its Adam's learning rate and betas.
    start : the training step from which the discriminator learns and γ applies (0: from
        the first).
    estimator, free_bits : of the KL part (see :class:`~xae.regularizers.kl.KL`).
    """

    needs_posterior = True
    KEYS = {"gamma": ("γ, the weight of the total-correlation estimate", C.NON_NEGATIVE_FLOAT),
            "hidden": ("the discriminator's hidden widths", C.each(C.POSITIVE, min_len=1)),
            "lr": ("the discriminator's Adam learning rate", C.POSITIVE_FLOAT),
            "beta1": ("the discriminator's Adam β1", C.between(0.0, 1.0, hi_open=True)),
            "beta2": ("the discriminator's Adam β2", C.between(0.0, 1.0, hi_open=True)),
            "start": ("the step from which the discriminator learns and γ applies",
                      C.NON_NEGATIVE),
            "estimator": ESTIMATOR_KEY, "free_bits": FREE_BITS_KEY}

    def __init__(self, *, gamma: float = 6.4, hidden: list[int] = [1000] * 6,
                 lr: float = 1e-4, beta1: float = 0.5, beta2: float = 0.9, start: int = 0,
                 estimator: str = "analytic", free_bits: float = 0.0) -> None:
        super().__init__()
        if not gamma >= 0:
            raise XaeError(f"model.factor.gamma must be ≥ 0, got {gamma}")
        self.gamma, self.start = float(gamma), int(start)
        self.kl = KL(estimator=estimator, free_bits=free_bits)
        self.free_bits = float(free_bits)
        self._settings = (list(hidden), float(lr), (float(beta1), float(beta2)))
        self.discriminator: Discriminator | None = None

    def bind(self, model: nn.Module) -> None:
        """The discriminator's input is the model's code."""
        hidden, lr, betas = self._settings
        self.discriminator = Discriminator(model.latent_dim, hidden, lr, betas)

    def forward(self, out: BottleneckOutput, prior: Prior, step: int | None = None) -> Rate:
        if self.discriminator is None:
            raise XaeError("this FactorVAE regularizer has no discriminator yet; build the "
                           "model with xae.build (or pass it to Autoencoder), which binds it")
        if out.z.shape[0] < 2:
            raise XaeError("FactorVAE permutes the codes over the batch and needs batches of "
                           "at least 2; raise train.batch_size")
        on = step is None or step >= self.start
        kl = self.kl(out, prior).terms["rate"]
        tc = Term(frozen(self.discriminator, out.z), "rate", self.gamma if on else 0.0,
                  note="TC, density ratio of a discriminator (Kim & Mnih 2018)")
        losses = {}
        if on and self.training:  # in training: the discriminator's own step
            z = out.z.detach()
            real, fake = self.discriminator(z), self.discriminator(permute_dims(z))
            losses["discriminator"] = 0.5 * (
                F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        return Rate({"kl": kl, "tc": tc}, losses=losses)
