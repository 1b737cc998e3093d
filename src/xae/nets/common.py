"""Pieces the encoder/decoder families share."""
from __future__ import annotations

from torch import nn

from xae import checks as C
from xae.errors import XaeError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus,
}


ACTIVATION_KEY = ("the activation after each layer", C.one_of(ACTIVATIONS))
"""The ``activation`` setting's help and check, the same in every net."""

# the gain that keeps activations' variance through a layer (torch.nn.init.calculate_gain)
GAINS: dict[str, str] = {"relu": "relu", "tanh": "tanh", "leaky_relu": "leaky_relu"}


def init_linear(layer: nn.Linear, act: str | None) -> nn.Linear:
    """Glorot-uniform weights scaled by the activation's gain, zero biases (Glorot & Bengio
    2010, eq. 16). torch's default, U(±1/√fan_in), shrinks the signal by about √3 per layer,
    so a deep MLP encoder starts out nearly blind to its input and its posteriors start out
    alike; the decoder then learns to ignore z before the code has any content."""
    gain = nn.init.calculate_gain(GAINS[act]) if act in GAINS else 1.0
    nn.init.xavier_uniform_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise XaeError(f"activation '{name}' (model.mlp.activation, model.conv.activation) is "
                       f"unknown; use one of {', '.join(ACTIVATIONS)}")
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
