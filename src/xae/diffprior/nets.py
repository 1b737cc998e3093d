"""The denoisers of the diffusion prior: v(x_t, t), a velocity with the shape of x_t.

Both embed the time t ∈ [0, 1] with the sinusoids of Vaswani et al. (2017) (at 1000·t, as the
DDPM code of Ho et al. 2020 embeds its integer steps) followed by a small MLP, and add the
embedding inside every residual block. Each block's last layer starts at zero, so the net
starts as a small perturbation of its input layer's map.

- :class:`MLPDenoiser` (flat codes): pre-norm residual MLP blocks.
- :class:`ConvDenoiser` (spatial codes, (C, h, w)): the residual block of the DDPM U-Net
  (GroupNorm, SiLU, 3×3 conv, + time, GroupNorm, SiLU, 3×3 conv) at the latent's resolution,
  with no down-sampling: 7×7 maps are too small to gain from it.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoids of 1000·t, (B,) → (B, dim): cos and sin at frequencies 10000^(−i/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    arg = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([arg.cos(), arg.sin()], -1)


class TimeMLP(nn.Module):
    def __init__(self, time_dim: int, width: int) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.net = nn.Sequential(nn.Linear(time_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(time_embedding(t, self.time_dim))


class MLPBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.lin1, self.time = nn.Linear(width, width), nn.Linear(width, width)
        self.lin2 = nn.Linear(width, width)
        nn.init.zeros_(self.lin2.weight)
        nn.init.zeros_(self.lin2.bias)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        u = torch.nn.functional.silu(self.lin1(self.norm(h)) + self.time(temb))
        return h + self.lin2(u)


class MLPDenoiser(nn.Module):
    """v(x, t) for flat codes x (B, D): ``layers`` residual blocks of width ``hidden``."""

    def __init__(self, dim: int, *, hidden: int, layers: int, time_dim: int) -> None:
        super().__init__()
        self.inp, self.temb = nn.Linear(dim, hidden), TimeMLP(time_dim, hidden)
        self.blocks = nn.ModuleList(MLPBlock(hidden) for _ in range(layers))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h, temb = self.inp(x), self.temb(t)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(channels), channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.time = nn.Linear(channels, channels)
        self.norm2 = nn.GroupNorm(_groups(channels), channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        silu = torch.nn.functional.silu
        u = self.conv1(silu(self.norm1(h))) + self.time(temb)[:, :, None, None]
        return h + self.conv2(silu(self.norm2(u)))


class ConvDenoiser(nn.Module):
    """v(x, t) for spatial codes x (B, C, h, w): ``blocks`` residual blocks of ``channels``."""

    def __init__(self, in_channels: int, *, channels: int, blocks: int, time_dim: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.temb = TimeMLP(time_dim, channels)
        self.blocks = nn.ModuleList(ResBlock(channels) for _ in range(blocks))
        self.out = nn.Sequential(nn.GroupNorm(_groups(channels), channels), nn.SiLU(),
                                 nn.Conv2d(channels, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h, temb = self.inp(x), self.temb(t)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)
