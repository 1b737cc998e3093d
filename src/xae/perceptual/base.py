"""What every perceptual distance is: a frozen module from two image batches to one distance
per image, and the SSIM distance, 1 − SSIM."""
from __future__ import annotations

import torch
from torch import nn

from xae.errors import XaeError
from xae.evaluate.images import ssim


class PerceptualDistance(nn.Module):
    """A distance between two batches of images, one value per image.

    ``distance(x, y)`` takes two tensors of one shape (B, C, H, W), C = 1 or 3, with values in
    [0, 1], and returns (B,) in the inputs' dtype. It is differentiable in both inputs, so it
    can serve as a loss; its own weights are frozen (no parameter requires a gradient).

    Subclasses set ``name`` (the config value that chose it), ``description`` (what a report
    should say was used) and ``min_side`` (the smallest height and width it accepts), and
    implement :meth:`distance` on validated inputs.
    """

    name: str = ""
    description: str = ""
    min_side: int = 1

    def check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Raise XaeError unless ``x`` and ``y`` are image batches this distance accepts."""
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise XaeError(f"{self.name} compares two tensors, got {type(x).__name__} and "
                           f"{type(y).__name__}")
        if x.shape != y.shape or x.dim() != 4:
            raise XaeError(f"{self.name} compares two batches of images (B, C, H, W) of one "
                           f"shape; got {tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[1] not in (1, 3):
            raise XaeError(f"{self.name} takes images with 1 or 3 channels (1-channel images "
                           f"are repeated to 3), got {x.shape[1]} channels")
        if min(x.shape[2:]) < self.min_side:
            raise XaeError(f"{self.name} needs images of at least {self.min_side}x"
                           f"{self.min_side} pixels (its network's depth), got "
                           f"{x.shape[2]}x{x.shape[3]}; upsample the images or choose "
                           f"another perceptual distance")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.check(x, y)
        return self.distance(x, y)

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SSIMDistance(PerceptualDistance):
    """1 − SSIM per image (:func:`xae.evaluate.images.ssim`: Wang et al. 2004, an 11x11
    Gaussian window with σ = 1.5, shrunk to fit smaller images), averaged over channels.

    0 for identical images; it can exceed 1 where the images are anti-correlated. A 1-channel
    image is scored as it is: repeating it to 3 channels gives the same mean over channels.
    """

    name = "ssim"
    description = "1 - SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5)"

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (1.0 - ssim(x, y)).to(x.dtype)
