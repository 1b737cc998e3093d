"""The blocks of the autoencoder of latent diffusion (Rombach et al. 2022) as diffusers lays
them out in ``AutoencoderKL``: a ResNet block with GroupNorm and SiLU, the mid block (ResNet,
single-head self-attention, ResNet), and the down and up blocks.

Written for xae; the submodules carry diffusers' names (``resnets.0.norm1``,
``attentions.0.to_q``, ``downsamplers.0.conv``, …) so that a state dict maps onto diffusers'
key for key (:mod:`xae.nets.diffusers_layout`). Every GroupNorm has ε = 1e-6, as there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-6  # the GroupNorm ε of diffusers' Encoder and Decoder (resnet_eps)


def group_norm(groups: int, channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=EPS)


class ResnetBlock(nn.Module):
    """x + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))), the skip through a 1×1 convolution
    (``conv_shortcut``) when the width changes (diffusers' ``ResnetBlock2D`` with no time
    embedding, dropout 0 and output scale 1)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = (nn.Conv2d(in_channels, out_channels, 1)
                              if in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h


class SelfAttention(nn.Module):
    """One head of self-attention over the h·w positions of a map, after a GroupNorm, with a
    residual connection; the projections are linear layers on the channels (diffusers'
    ``Attention`` as the mid block of ``AutoencoderKL`` builds it)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.group_norm = group_norm(groups, channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = self.group_norm(x).view(b, c, h * w).transpose(1, 2)  # (B, h·w, C)
        out = F.scaled_dot_product_attention(self.to_q(seq), self.to_k(seq), self.to_v(seq))
        out = self.to_out[0](out).transpose(1, 2).reshape(b, c, h, w)
        return x + out


class MidBlock(nn.Module):
    """ResNet, self-attention (if ``attention``), ResNet, all at one width."""

    def __init__(self, channels: int, groups: int, attention: bool) -> None:
        super().__init__()
        self.attentions = nn.ModuleList([SelfAttention(channels, groups)] if attention else [])
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, groups)
                                      for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        for attn in self.attentions:
            x = attn(x)
        return self.resnets[1](x)


class Downsample(nn.Module):
    """A 3×3 convolution of stride 2 after padding one zero row and column at the bottom and
    right, so H and W halve exactly (diffusers' ``Downsample2D`` with ``padding=0``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour ×2, then a 3×3 convolution (diffusers' ``Upsample2D``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """``layers`` ResNet blocks (the first changes the width), then a stride-2 downsampler
    unless ``downsample`` is off (diffusers' ``DownEncoderBlock2D``)."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, groups: int,
                 downsample: bool) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(in_channels if i == 0 else out_channels,
                                                  out_channels, groups) for i in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample(out_channels)] if downsample else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (*self.resnets, *self.downsamplers):
            x = block(x)
        return x


class UpBlock(nn.Module):
    """``layers`` ResNet blocks (the first changes the width), then a nearest ×2 upsampler
    unless ``upsample`` is off (diffusers' ``UpDecoderBlock2D``)."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, groups: int,
                 upsample: bool) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(in_channels if i == 0 else out_channels,
                                                  out_channels, groups) for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample(out_channels)] if upsample else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (*self.resnets, *self.upsamplers):
            x = block(x)
        return x
