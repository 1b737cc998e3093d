"""Likelihoods p(x|z): ``log_prob(x, θ)`` per sample, ``mean(θ)``, ``sample(θ)``."""
from __future__ import annotations

from xae.likelihoods.base import Likelihood
from xae.likelihoods.bernoulli import Bernoulli
from xae.likelihoods.categorical import Categorical
from xae.likelihoods.counts import NegativeBinomial, Poisson, ZeroInflatedNB
from xae.likelihoods.discretized import DiscretizedLogistic
from xae.likelihoods.location_scale import Gaussian, Laplace
from xae.likelihoods.reconstruction import Reconstruction

LIKELIHOODS: dict[str, type[Likelihood]] = {
    "bernoulli": Bernoulli, "categorical": Categorical, "discretized": DiscretizedLogistic,
    "gaussian": Gaussian, "laplace": Laplace, "reconstruction": Reconstruction, "poisson": Poisson,
    "nb": NegativeBinomial, "zinb": ZeroInflatedNB,
}

__all__ = ["Likelihood", "Bernoulli", "Categorical", "DiscretizedLogistic", "NegativeBinomial",
           "Poisson", "ZeroInflatedNB", "Gaussian", "Laplace",
           "Reconstruction", "LIKELIHOODS"]
