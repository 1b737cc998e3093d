"""Data with known factors of variation: the oracle the disentanglement metrics need.

A source whose images are drawn from a grid of discrete factors (dSprites-like shapes, …)
puts a :class:`FactorSource` in ``Dataset.info["factors"]`` and the factor indices of each
sample in ``info["train_factors"]`` / ``info["test_factors"]`` (int64, ``(N, F)``). The
metrics (:mod:`xae.evaluate.disentanglement`) need both: the labels of a fixed sample
(MIG, DCI, SAP) and fresh images drawn for chosen factor values (BetaVAE and FactorVAE
scores), as disentanglement_lib's ground-truth data offer them.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from xae.errors import XaeError

FACTORS = "factors"
TRAIN_FACTORS = "train_factors"
TEST_FACTORS = "test_factors"


@runtime_checkable
class FactorSource(Protocol):
    """A grid of discrete factors and a renderer of its points."""

    names: tuple[str, ...]
    """One name per factor, e.g. ``("shape", "scale", "orientation", "x", "y")``."""
    sizes: tuple[int, ...]
    """The number of values of each factor (every one ≥ 2)."""

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points of the grid drawn uniformly: int64 indices, ``(n, F)``."""
        ...

    def images(self, factors: np.ndarray) -> torch.Tensor:
        """The images of the given factor indices ``(n, F)``: float32, ``(n, *shape)``."""
        ...


def factor_source(info: dict, what: str) -> FactorSource:
    """The data's factor source, or an XaeError saying that ``what`` needs one."""
    source = info.get(FACTORS)
    if not isinstance(source, FactorSource):
        raise XaeError(f"{what} needs data with known factors of variation (e.g. --data "
                       f"dsprites); this data set has none")
    return source
