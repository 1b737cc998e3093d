"""The nets of a top-down ResNet VAE (Vahdat & Kautz 2020, NVAE; Child 2021, VDVAE): a
bottom-up residual encoder that keeps a feature map at every scale, and a top-down residual
decoder that is the generative path itself.

Scales, finest first: the data's H×W halved by a strided stem, then halved again (rounding up)
once per further scale, so 28×28 data with three scales has maps of 14×14, 7×7 and 4×4.
``groups`` lists how many latent groups sit at each scale, coarsest (top) first; each group
is a ``z_channels``×h×w map. The decoder starts from a learned state at the top scale and, for
each group in turn, computes its prior p(z_l | z_<l) from the state (l > 1; the top group's
prior is the model's prior piece), takes z_l from a caller (the posterior while encoding,
the prior while sampling, given codes while decoding), adds a projection of z_l to the state
and runs residual cells; between scales the state is upsampled. A transposed convolution
gives the likelihood's parameters at full size. The three pieces named ``hvae`` (encoder,
bottleneck, decoder) share the section ``model.hvae``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from xae import checks as C
from xae.distributions import DiagonalGaussian
from xae.errors import XaeError

KEYS = {"channels": ("width of the residual path at every scale", C.POSITIVE),
        "groups": ("latent groups at each scale, coarsest (top) scale first; one scale per "
                   "entry, each halving H and W", C.each(C.POSITIVE, min_len=1)),
        "z_channels": ("channels of each latent group's map", C.POSITIVE),
        "cells": ("residual cells per scale in the encoder and per group in the decoder",
                  C.POSITIVE)}
"""The settings of the hvae encoder, bottleneck and decoder (the section ``model.hvae``)."""

SOFT_LIMIT = 5.0


def soft_clamp(x: torch.Tensor) -> torch.Tensor:
    """5·tanh(x/5): bounds a log-variance (or its correction) smoothly, so one large
    activation cannot make a KL overflow (NVAE's safeguard)."""
    return SOFT_LIMIT * torch.tanh(x / SOFT_LIMIT)


@dataclass(frozen=True)
class Plan:
    """Where every latent group sits: ``grids`` one (h, w) per scale, top first;
    ``groups`` the number of groups per scale; ``group_scale`` each group's scale."""

    channels: int
    z_channels: int
    cells: int
    grids: tuple[tuple[int, int], ...]
    groups: tuple[int, ...]

    @property
    def group_scale(self) -> list[int]:
        return [s for s, n in enumerate(self.groups) for _ in range(n)]

    @property
    def group_grids(self) -> list[tuple[int, int]]:
        return [self.grids[s] for s in self.group_scale]

    @property
    def sizes(self) -> list[int]:
        """Each group's size, z_channels·h·w, top first."""
        return [self.z_channels * h * w for h, w in self.group_grids]

    @property
    def latent_dim(self) -> int:
        return sum(self.sizes)


def plan(data_shape: tuple[int, ...], channels: int, groups: list[int], z_channels: int,
         cells: int) -> Plan:
    """The scales and groups of ``model.hvae`` on data of ``data_shape``, checked."""
    if len(data_shape) != 3 or data_shape[1] % 2 or data_shape[2] % 2:
        raise XaeError(f"model.encoder=hvae needs images shaped (C, H, W) with even H and W; "
                       f"this data is {tuple(data_shape)}: use the mlp or conv nets")
    counts = [int(g) for g in groups]
    if not counts or min(counts) < 1:
        raise XaeError(f"model.hvae.groups must list at least one positive number of groups "
                       f"per scale, got {groups!r}")
    h, w = data_shape[1] // 2, data_shape[2] // 2
    fine_first = [(h, w)]
    for _ in counts[1:]:
        if fine_first[-1] == (1, 1):
            raise XaeError(f"model.hvae.groups has {len(counts)} scales, but {h}×{w} maps "
                           f"reach 1×1 after {len(fine_first)}; list fewer scales")
        fine_first.append(tuple(math.ceil(v / 2) for v in fine_first[-1]))
    return Plan(int(channels), int(z_channels), int(cells), tuple(reversed(fine_first)),
                tuple(counts))


def check_latent_dim(p: Plan, latent_dim: int, data_shape: tuple[int, ...]) -> None:
    if latent_dim != p.latent_dim:
        grids = " + ".join(f"{n}×{p.z_channels}×{h}×{w}" for n, (h, w) in zip(p.groups, p.grids))
        raise XaeError(f"model.latent_dim must be the size of the hvae's latent groups on "
                       f"{data_shape[1]}×{data_shape[2]} data, {grids} = {p.latent_dim} "
                       f"(model.hvae.groups {list(p.groups)}, model.hvae.z_channels "
                       f"{p.z_channels}), got {latent_dim}")


def flat(m: torch.Tensor) -> torch.Tensor:
    """A map (N, C, h, w) flattened position by position, (N, h·w·C)."""
    return m.permute(0, 2, 3, 1).reshape(m.shape[0], -1)


def unflat(z: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`flat`."""
    return z.reshape(z.shape[0], *grid, -1).permute(0, 3, 1, 2)


def gaussian_map(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A (N, 2C, h, w) map of means and raw log-variances, each flattened (N, h·w·C)."""
    mean, logvar = params.chunk(2, dim=1)
    return flat(mean), flat(logvar)


class Cell(nn.Module):
    """x + conv(act(conv(act(x)))), 3×3 convolutions; the last one's initial weights scaled
    by ``scale`` (1/√(cells in the net), as VDVAE scales its residual branches) so the
    residual stream's variance does not grow with depth."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        last = nn.Conv2d(channels, channels, 3, padding=1)
        with torch.no_grad():
            last.weight.mul_(scale)
        self.net = nn.Sequential(nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                 nn.SiLU(), last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class HVAEEncoder(nn.Module):
    """Bottom-up: a stride-2 stem, then residual cells at each scale with average pooling
    between scales. Its features are every scale's map, top first, flattened side by side
    (B, F); :meth:`maps` gives them back as maps."""

    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], *, channels: int = 32,
                 groups: list[int] = [1, 2, 2], z_channels: int = 4, cells: int = 1) -> None:
        super().__init__()
        self.plan = p = plan(data_shape, channels, groups, z_channels, cells)
        scale = 1 / math.sqrt(p.cells * len(p.grids))
        self.stem = nn.Conv2d(data_shape[0], p.channels, 4, stride=2, padding=1)
        self.stages = nn.ModuleList(_cells(p.channels, p.cells, scale) for _ in p.grids)
        self.out_features = p.channels * sum(h * w for h, w in p.grids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, feats = self.stem(x), []
        for i, stage in enumerate(self.stages):
            if i:
                s = F.avg_pool2d(s, 2, ceil_mode=True)
            feats.append(stage(s))
        return torch.cat([f.flatten(1) for f in reversed(feats)], 1)

    def maps(self, h: torch.Tensor) -> list[torch.Tensor]:
        """The features (N, F) as one map per scale, top first."""
        c = self.plan.channels
        parts = h.split([c * gh * gw for gh, gw in self.plan.grids], dim=-1)
        return [part.reshape(h.shape[0], c, *grid) for part, grid in zip(parts, self.plan.grids)]


Choose = Callable[[int, torch.Tensor, "DiagonalGaussian | None"], torch.Tensor]
"""What the top-down path asks for each group: given the group's index, the state (N, C, h, w)
and its prior (None for the top group), the group's code (N, size)."""


class HVAEDecoder(nn.Module):
    """Top-down: the generative path (see the module's docstring). ``forward(z)`` decodes
    given codes; :meth:`walk` lets a caller choose each group's code as the path goes."""

    KEYS = KEYS

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int,
                 out_channels_per_channel: int = 1, *, channels: int = 32,
                 groups: list[int] = [1, 2, 2], z_channels: int = 4, cells: int = 1) -> None:
        super().__init__()
        self.plan = p = plan(data_shape, channels, groups, z_channels, cells)
        check_latent_dim(p, latent_dim, data_shape)
        n = len(p.sizes)
        scale = 1 / math.sqrt(p.cells * n)
        self.start = nn.Parameter(torch.zeros(1, p.channels, *p.grids[0]))
        self.priors = nn.ModuleList(_zero(nn.Sequential(
            nn.SiLU(), nn.Conv2d(p.channels, 2 * p.z_channels, 3, padding=1)))
            for _ in range(n - 1))
        self.inject = nn.ModuleList(nn.Conv2d(p.z_channels, p.channels, 1) for _ in range(n))
        self.cells = nn.ModuleList(_cells(p.channels, p.cells, scale) for _ in range(n))
        self.out = nn.Sequential(nn.SiLU(), nn.ConvTranspose2d(
            p.channels, data_shape[0] * out_channels_per_channel, 4, stride=2, padding=1))

    def prior(self, i: int, s: torch.Tensor) -> DiagonalGaussian:
        """p(z_i | z_<i) from the state, for groups below the top (i ≥ 1)."""
        mean, logvar = gaussian_map(self.priors[i - 1](s))
        return DiagonalGaussian(mean, soft_clamp(logvar))

    def walk(self, n: int, choose: Choose) -> torch.Tensor:
        """Down the path for ``n`` data, each group's code from ``choose``; returns the
        likelihood's parameters."""
        p = self.plan
        s = self.start.expand(n, -1, -1, -1)
        for i, grid in enumerate(p.group_grids):
            if tuple(s.shape[-2:]) != grid:
                s = F.interpolate(s, size=grid, mode="nearest")
            z = choose(i, s, self.prior(i, s) if i else None)
            s = self.cells[i](s + self.inject[i](unflat(z, grid)))
        if tuple(s.shape[-2:]) != p.grids[-1]:
            s = F.interpolate(s, size=p.grids[-1], mode="nearest")
        return self.out(s)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        codes = z.split(self.plan.sizes, dim=-1)
        return self.walk(z.shape[0], lambda i, s, prior: codes[i])

    @property
    def last_layer(self) -> torch.Tensor:
        """The weight of the layer that emits θ (for an adversarial critic's weight)."""
        return self.out[-1].weight


def _cells(channels: int, n: int, scale: float) -> nn.Sequential:
    return nn.Sequential(*(Cell(channels, scale) for _ in range(n)))


def _zero(net: nn.Sequential) -> nn.Sequential:
    """The last layer starting at zero: a conditional prior that starts as N(0, I) (VDVAE)."""
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net
