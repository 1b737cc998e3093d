"""No encoder: for a model with no code (``model.bottleneck=none``), which never reads its
input. It has no parameters and gives one constant feature per datum, on any data."""
from __future__ import annotations

import torch
from torch import nn


class NoEncoder(nn.Module):
    any_data = True  # images, vectors or token ids alike: it reads none of them
    out_features = 1

    def __init__(self, data_shape: tuple[int, ...]) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 1, device=x.device)
