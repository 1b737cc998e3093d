"""Bottlenecks h -> z: ``forward(h) -> BottleneckOutput``."""
from __future__ import annotations

from xae.bottlenecks.base import Bottleneck
from xae.bottlenecks.deterministic import Deterministic
from xae.bottlenecks.gaussian import Gaussian

BOTTLENECKS: dict[str, type[Bottleneck]] = {"deterministic": Deterministic, "gaussian": Gaussian}

__all__ = ["Bottleneck", "Deterministic", "Gaussian", "BOTTLENECKS"]
