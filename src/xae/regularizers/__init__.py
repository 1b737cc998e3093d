"""Regularizers: ``(bottleneck_output, prior, step) -> Rate``, named rate terms per sample (and
per dimension where they split), plus the losses of any optimizer of their own."""
from __future__ import annotations

from xae.regularizers.base import Rate, Regularizer
from xae.regularizers.capacity import Capacity
from xae.regularizers.dip import DIP
from xae.regularizers.factor import FactorTC
from xae.regularizers.kl import KL, NoRegularizer
from xae.regularizers.mmd import MMD
from xae.regularizers.tc import TotalCorrelation

REGULARIZERS: dict[str, type[Regularizer]] = {
    "kl": KL, "mmd": MMD, "tc": TotalCorrelation, "factor": FactorTC, "dip": DIP,
    "capacity": Capacity, "none": NoRegularizer,
}

__all__ = ["Capacity", "DIP", "FactorTC", "Rate", "Regularizer", "KL", "MMD", "NoRegularizer", "TotalCorrelation", "REGULARIZERS"]
