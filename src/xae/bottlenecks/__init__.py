"""Bottlenecks h -> z: ``forward(h) -> BottleneckOutput``."""
from __future__ import annotations

from xae.bottlenecks.base import Bottleneck
from xae.bottlenecks.deterministic import Deterministic
from xae.bottlenecks.fsq import FSQ
from xae.bottlenecks.gaussian import Gaussian

BOTTLENECKS: dict[str, type[Bottleneck]] = {
    "deterministic": Deterministic, "gaussian": Gaussian, "fsq": FSQ,
}

__all__ = ["Bottleneck", "Deterministic", "FSQ", "Gaussian", "BOTTLENECKS"]
