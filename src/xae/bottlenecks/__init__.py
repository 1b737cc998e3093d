"""Bottlenecks h -> z: ``forward(h) -> BottleneckOutput``."""
from __future__ import annotations

from xae.bottlenecks.base import Bottleneck
from xae.bottlenecks.deterministic import Deterministic
from xae.bottlenecks.empty import Empty
from xae.bottlenecks.fsq import FSQ
from xae.bottlenecks.gaussian import Gaussian
from xae.bottlenecks.gumbel import GumbelSoftmax
from xae.bottlenecks.hvae import HVAE
from xae.bottlenecks.ladder import Ladder
from xae.bottlenecks.lfq import LFQ
from xae.bottlenecks.quantizer import Quantized, Quantizer
from xae.bottlenecks.positionwise import Positionwise
from xae.bottlenecks.residual import ResidualVQ
from xae.bottlenecks.topdown import TopDown
from xae.bottlenecks.vq import VQ

BOTTLENECKS: dict[str, type[Bottleneck]] = {
    "deterministic": Deterministic, "gaussian": Gaussian, "fsq": FSQ, "lfq": LFQ,
    "gumbel": GumbelSoftmax, "vq": VQ, "rvq": ResidualVQ, "topdown": TopDown,
    "ladder": Ladder, "hvae": HVAE, "none": Empty,
}

__all__ = ["Bottleneck", "Deterministic", "Empty", "FSQ", "Gaussian", "GumbelSoftmax", "HVAE", "LFQ", "Ladder",
           "Positionwise", "Quantized", "Quantizer", "ResidualVQ", "TopDown", "VQ", "BOTTLENECKS"]
