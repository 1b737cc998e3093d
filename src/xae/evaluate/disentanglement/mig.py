"""The mutual information gap (Chen et al. 2018), as disentanglement_lib computes it
(``mig.py``, ``utils.py``): each code dimension cut into equal-width histogram bins, its
discrete mutual information with every factor, and per factor the gap between the two most
informative dimensions over the factor's entropy, averaged over factors."""
from __future__ import annotations

import numpy as np

from xae.data.factors import FactorSource
from xae.evaluate.disentanglement.sampling import (Representation, labelled_sample, need,
                                                   need_two_dims)

NUM_BINS = 20


def histogram_discretize(z: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Each column of ``z`` ``(n, d)`` as bin numbers 1..``num_bins`` of its own equal-width
    histogram (the top edge falls in the last bin)."""
    out = np.zeros(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        edges = np.histogram_bin_edges(z[:, j], num_bins)
        out[:, j] = np.digitize(z[:, j], edges[:-1])
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Discrete mutual information (nats) ``(d, F)`` of each code column with each factor."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(f, c) for f in factors.T] for c in codes.T])


def entropies(factors: np.ndarray) -> np.ndarray:
    """The empirical entropy (nats) of each factor column."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(f, f) for f in factors.T])


def mig_of(z: np.ndarray, factors: np.ndarray, num_bins: int = NUM_BINS) -> dict:
    """MIG of codes ``z`` ``(n, d)`` against their factors ``(n, F)``, with the matrix of
    normalised mutual information ``(d, F)`` the figure of the factor–latent MI uses."""
    info = mutual_information(histogram_discretize(z, num_bins), factors)
    top = np.sort(info, axis=0)[::-1]
    h = entropies(factors)
    return {"mig": float(np.mean((top[0] - top[1]) / h)),
            "normalized_mi": (info / h).tolist()}


def mig_score(source: FactorSource, represent: Representation, rng: np.random.Generator,
              *, num_train: int = 10_000, num_bins: int = NUM_BINS) -> dict:
    """MIG on ``num_train`` uniform draws of the grid (at least ``num_bins`` of them, and
    every factor must take two values among them: its entropy is the denominator)."""
    need(num_bins, 2, "the MIG histogram's bins")
    need(num_train, num_bins, f"MIG's sample size (with {num_bins} bins)")
    z, y = labelled_sample(source, represent, num_train, rng, "MIG's sample size")
    need_two_dims(z, "MIG")
    return mig_of(z, y, num_bins)
