"""Priors p(z): ``log_prob(z)``, ``sample(n)``, and ``kl(posterior)`` where it has a closed form."""
from __future__ import annotations

from xae.priors.base import Prior
from xae.priors.mixture import MixtureOfGaussians
from xae.priors.normal import StandardNormal

PRIORS: dict[str, type[Prior]] = {"normal": StandardNormal, "mog": MixtureOfGaussians}

__all__ = ["MixtureOfGaussians", "Prior", "StandardNormal", "PRIORS"]
