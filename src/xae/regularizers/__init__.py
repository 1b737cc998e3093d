"""Regularizers: ``(bottleneck_output, prior) -> rate`` per sample and per dimension, (B, D) or (B, 1)."""
from __future__ import annotations

from xae.regularizers.base import Regularizer
from xae.regularizers.kl import KL, NoRegularizer

REGULARIZERS: dict[str, type[Regularizer]] = {"kl": KL, "none": NoRegularizer}

__all__ = ["Regularizer", "KL", "NoRegularizer", "REGULARIZERS"]
