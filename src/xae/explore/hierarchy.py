"""A hierarchy in the explorer: the map shows the top group z₁ alone, and the page completes
each top-group latent it decodes with the groups below, by one of two rules (a toggle):

- *drawn from the prior*: z_l = μ_l + σ_l·ε_l of p(z_l | z_<l) down the hierarchy, by the
  graph ``descend.onnx`` (the bottleneck's :meth:`descend`: input [z₁, ε] (B, D), output the
  code (B, D)), ε drawn in the page and kept until redrawn;
- *the picked image's posterior*: the lower groups of the picked test point's code (its
  posterior means down the path, given its own top group), sent as ``lower.bin``.
"""
from __future__ import annotations


import numpy as np
import torch
from torch import nn

from xae.model import Autoencoder, inference

NAMES = ("top_noise", "z")  # the graph's input and output


def top_dim(model: Autoencoder) -> int:
    """The size of the top group (the prior piece's), the map's latent."""
    return int(model.prior.latent_dim)


class _Descend(nn.Module):
    def __init__(self, model: Autoencoder) -> None:
        super().__init__()  # the whole model: an hvae's descent walks the decoder's path
        self.model, self.top = model, top_dim(model)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.model.bottleneck.descend(t[:, :self.top], t[:, self.top:])


def descend_graph(model: Autoencoder) -> bytes:
    """``descend.onnx`` for a hierarchical ``model`` (exported as :mod:`xae.export` exports
    the decoder), checked against torch where onnxruntime is installed."""
    from xae.export import graph_bytes

    with inference(model):
        return graph_bytes(_Descend(model).eval(), model.latent_dim, NAMES,
                           "the hierarchy's descent")


def lower_groups(z: np.ndarray, model: Autoencoder) -> np.ndarray:
    """The groups below the top of codes ``z`` (N, D), as float32 (N, D − top)."""
    return np.ascontiguousarray(z[:, top_dim(model):], dtype=np.float32)
