"""q(z|x) of the test points as the explorer's page draws it: each point's posterior mean and
standard deviation, for its ellipse on the map and the samples it decodes.

The page projects N(μ, diag σ²) onto the map's plane (basis B, 2 × D): the ellipse of
N(B(μ − m), B diag(σ²) Bᵀ) at 1σ and 2σ, and draws z = μ + σ·ε in all D dimensions.
Only a diagonal Gaussian posterior has this, flat or the top group of a hierarchy (the group
the map of a hierarchy shows); every other code says why it has none.
"""
from __future__ import annotations

import numpy as np
import torch

from xae.distributions import DiagonalGaussian
from xae.model import Autoencoder, inference


def no_posterior(model: Autoencoder) -> str | None:
    """Why a click on a test point shows a single point rather than a distribution; None when
    q(z|x) is a flat diagonal Gaussian."""
    if model.discrete:
        return ("the code is discrete: the encoder picks one code for x (the nearest codebook "
                "entry), so q(z|x) puts all its mass on that single point")
    if not model.stochastic:
        return ("a plain autoencoder maps x to a single point z = f(x); there is no "
                "distribution around it to draw or sample, and nothing tells the decoder what "
                "lies between the points")
    return None


def posterior_arrays(model: Autoencoder, x: torch.Tensor, batch: int) -> np.ndarray | None:
    """(N, 2D) float32: the posterior means, then standard deviations, of ``x``'s rows (of
    the top group, D its size, for a hierarchy); None when :func:`no_posterior` has a
    reason. ``x`` is encoded ``batch`` rows at a time."""
    if no_posterior(model) is not None:
        return None
    rows = []
    with inference(model):
        for i in range(0, len(x), batch):
            out = model.encode(x[i:i + batch])
            q = out.groups[0].posterior if model.hierarchical else out.posterior
            if not isinstance(q, DiagonalGaussian):  # a bottleneck that broke its contract
                raise TypeError(f"a stochastic bottleneck returned {type(q).__name__}, not a "
                                "DiagonalGaussian")
            rows.append(torch.cat([q.mean, q.std], 1))
    return torch.cat(rows).float().numpy()
