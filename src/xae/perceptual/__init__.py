"""Perceptual distances between images that run offline.

``perceptual_distance(name)`` gives a frozen module; ``module(x, y)`` is one distance per image
(B,) for two batches (B, C, H, W) in [0, 1] with C = 1 or 3. The choices:

- ``stlpips-alex``, ``stlpips-vgg``: ST-LPIPS, the shift-tolerant learned perceptual distance
  of Ghildyal & Liu (2022), with AlexNet or VGG-16 trunks trained from scratch
  (:mod:`xae.perceptual.stlpips`). The weights come from the ``stlpips-pytorch`` wheel
  (``pip install 'xae[perceptual]'``). A 1-channel image is repeated to 3 channels. This is
  not LPIPS with ImageNet backbones; call it ST-LPIPS.
- ``ssim``: 1 − SSIM (:func:`xae.evaluate.images.ssim`).
- ``none``: no perceptual distance. It has no module: asking for one is an error, so a caller
  leaves the perceptual term out rather than adding zeros under a perceptual name.
"""
from __future__ import annotations

import torch

from xae.errors import XaeError
from xae.perceptual.base import PerceptualDistance, SSIMDistance
from xae.perceptual.stlpips import STLPIPS

#: Every value of a ``perceptual`` setting.
PERCEPTUAL: tuple[str, ...] = ("stlpips-alex", "stlpips-vgg", "ssim", "none")

__all__ = ["PERCEPTUAL", "PerceptualDistance", "SSIMDistance", "STLPIPS", "perceptual_distance"]


def perceptual_distance(name: str, device: str | torch.device = "cpu") -> PerceptualDistance:
    """The perceptual distance called ``name`` (one of :data:`PERCEPTUAL` except ``none``),
    frozen and in eval mode on ``device``.

    Raises
    ------
    XaeError
        For an unknown name (listing the choices), for ``none`` (which has no distance), and
        for ST-LPIPS when the ``stlpips-pytorch`` wheel is missing or its files differ from
        the ones xae checked.
    """
    if name == "none":
        raise XaeError("perceptual = none has no distance to compute; leave the perceptual "
                       "term out, or choose one of " + ", ".join(PERCEPTUAL[:-1]))
    if name == "ssim":
        return SSIMDistance().to(device)
    if name in ("stlpips-alex", "stlpips-vgg"):
        return STLPIPS.load(name.removeprefix("stlpips-"), device)
    raise XaeError(f"unknown perceptual distance {name!r}; choose one of "
                   + ", ".join(PERCEPTUAL))
