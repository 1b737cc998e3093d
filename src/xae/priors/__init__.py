"""Priors p(z): ``log_prob(z)``, ``sample(n)``, and ``kl(posterior)`` where it has a closed form."""
from __future__ import annotations

from xae.priors.base import Prior
from xae.priors.codes import CodePrior
from xae.priors.flow import FlowPrior
from xae.priors.mixture import MixtureOfGaussians
from xae.priors.normal import StandardNormal
from xae.priors.vamp import VampPrior

PRIORS: dict[str, type[Prior]] = {
    "normal": StandardNormal, "mog": MixtureOfGaussians, "flow": FlowPrior,
    "vamp": VampPrior, "codes": CodePrior,
}

__all__ = ["CodePrior", "FlowPrior", "MixtureOfGaussians", "Prior", "StandardNormal", "VampPrior", "PRIORS"]
