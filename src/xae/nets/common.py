"""Pieces the encoder/decoder families share."""
from __future__ import annotations

from torch import nn

from xae.errors import XaeError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise XaeError(f"model.activation '{name}' is unknown; use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def widths(values: list, key: str) -> list[int]:
    """Validate a list of layer widths from the config."""
    try:
        out = [int(v) for v in values]
    except (TypeError, ValueError):
        out = [0]
    if any(v <= 0 for v in out):
        raise XaeError(f"{key} must be a list of positive integers, got {values!r}")
    return out
