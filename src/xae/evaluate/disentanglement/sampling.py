"""What the five metrics share: checks of the factor grid and the sample counts, codes of
fresh images of drawn factors, and the child random streams of one seed.

A *representation* is a function from a batch of images (a tensor, as
:meth:`FactorSource.images` returns them) to their codes, a float array ``(n, d)``; for a
model it is the posterior mean, flattened (:func:`model_representation`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from xae.data.factors import FactorSource
from xae.errors import XaeError

Representation = Callable[[torch.Tensor], np.ndarray]
CHUNK = 4096  # images rendered and encoded at once


def check_grid(source: FactorSource) -> None:
    """An error for a factor grid that leaves a factor constant: no metric can score it."""
    for name, size in zip(source.names, source.sizes):
        if size < 2:
            raise XaeError(f"the factor grid leaves factor {name!r} constant ({size} value); "
                           f"the disentanglement metrics need every factor to take 2 values "
                           f"or more: use a grid where it varies")


def need(count: int, minimum: int, what: str) -> int:
    """``count`` if it is an integer of at least ``minimum``, else an XaeError naming both."""
    if isinstance(count, bool) or not isinstance(count, int) or count < minimum:
        raise XaeError(f"{what} must be at least {minimum} for this estimator, got {count!r}; "
                       f"raise it")
    return count


def codes_of(source: FactorSource, represent: Representation,
             factors: np.ndarray) -> np.ndarray:
    """The codes ``(n, d)`` (float64) of the images of ``factors`` ``(n, F)``, in chunks."""
    out = []
    for i in range(0, len(factors), CHUNK):
        z = np.asarray(represent(source.images(factors[i:i + CHUNK])), dtype=np.float64)
        if z.ndim != 2 or z.shape[0] != len(factors[i:i + CHUNK]):
            raise XaeError(f"the representation must map n images to an (n, d) array of codes, "
                           f"got shape {z.shape} for {len(factors[i:i + CHUNK])} images")
        out.append(z)
    return np.concatenate(out)


def factor_codes(source: FactorSource, represent: Representation, n: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform draws of the grid: their codes ``(n, d)`` and factors ``(n, F)``."""
    factors = np.asarray(source.sample_factors(n, rng), dtype=np.int64)
    return codes_of(source, represent, factors), factors


def labelled_sample(source: FactorSource, represent: Representation, n: int,
                    rng: np.random.Generator, what: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`factor_codes` for a classifier per factor: an error when a factor takes a single
    value among the ``n`` points (``what`` names the count to raise)."""
    z, y = factor_codes(source, represent, n, rng)
    for name, column in zip(source.names, y.T):
        if len(np.unique(column)) < 2:
            raise XaeError(f"factor {name!r} takes a single value in the {n} points of {what}; "
                           f"a classifier needs 2 or more: raise {what}")
    return z, y


def need_two_dims(z: np.ndarray, metric: str) -> None:
    """A gap between the best and second-best code dimension needs two of them."""
    if z.shape[1] < 2:
        raise XaeError(f"{metric} compares the two most informative code dimensions; this code "
                       f"has {z.shape[1]}: it needs a latent of 2 dimensions or more")


def model_representation(model: torch.nn.Module, batch_size: int = 256) -> Representation:
    """The model's posterior mean (:meth:`Autoencoder.latent_mean`), flattened per image."""
    from xae.model import inference

    def represent(x: torch.Tensor) -> np.ndarray:
        with inference(model) as device:
            parts = [model.latent_mean(x[i:i + batch_size].to(device)).flatten(1).double().cpu()
                     for i in range(0, len(x), batch_size)]
        return torch.cat(parts).numpy()

    return represent
