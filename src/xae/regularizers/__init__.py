"""Regularizers: ``(bottleneck_output, prior) -> rate`` per sample and per dimension, (B, D) or (B, 1)."""
from __future__ import annotations

from xae.regularizers.base import Regularizer
from xae.regularizers.kl import KL, NoRegularizer
from xae.regularizers.mmd import MMD
from xae.regularizers.tc import TotalCorrelation

REGULARIZERS: dict[str, type[Regularizer]] = {
    "kl": KL, "mmd": MMD, "tc": TotalCorrelation, "none": NoRegularizer,
}

__all__ = ["Regularizer", "KL", "MMD", "NoRegularizer", "TotalCorrelation", "REGULARIZERS"]
