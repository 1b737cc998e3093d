"""Reconstruction quality: MSE, PSNR and SSIM, per image, batched in torch.

All three take two batches of the same shape and return one value per image (B,); the
reported figure is the mean over images. PSNR and SSIM assume values in [0, 1] (peak 1).

SSIM follows Wang, Bovik, Sheikh & Simoncelli (2004), eq. 13 with the recommended settings:
an 11x11 Gaussian window with σ = 1.5, C₁ = (0.01·L)², C₂ = (0.03·L)², L = 1, the local
statistics taken at every position where the window fits inside the image ("valid"), the
map averaged over positions (their mean SSIM, eq. 17) and over channels.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xae.errors import XaeError
from xae.evaluate.common import batches, progress_bar
from xae.model import Autoencoder, inference

#: PSNR is capped here (MSE floored at 10^-10): an exact reconstruction would otherwise give
#: +inf, which poisons averages and is not valid JSON.
PSNR_MAX_DB: float = 100.0


def _check_pair(x: torch.Tensor, y: torch.Tensor, min_dims: int = 2) -> None:
    if x.shape != y.shape or x.dim() < min_dims:
        raise XaeError(f"image metrics need two batches of the same shape with at least "
                       f"{min_dims} dimensions (batch first); got {tuple(x.shape)} and "
                       f"{tuple(y.shape)}")


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each sample, averaged over its values: (B,), float64."""
    _check_pair(x, y)
    return (x.double() - y.double()).square().flatten(1).mean(-1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image in dB, 10·log₁₀(1 / MSE), for data in [0, 1].

    Returns (B,), float64, capped at :data:`PSNR_MAX_DB` (identical images give the cap).
    Average the per-image values, as is usual, rather than taking the PSNR of the mean MSE.
    """
    floor = 10.0 ** (-PSNR_MAX_DB / 10)
    return -10.0 * torch.log10(mse(x, y).clamp_min(floor))


def ssim_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalized 2-D Gaussian window of SSIM, (size, size), float64."""
    k = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-k.square() / (2 * sigma**2))
    w = torch.outer(g, g)
    return w / w.sum()


def window_size(height: int, width: int, size: int = 11) -> int:
    """The window side used for an H x W image: ``size``, shrunk to the largest odd number
    that fits when the image is smaller (7 for the bundled 8x8 digits)."""
    fit = min(size, height, width)
    return fit if fit % 2 == 1 else fit - 1


def ssim(x: torch.Tensor, y: torch.Tensor, size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean structural similarity of each image (Wang et al. 2004), (B,), float64.

    Parameters
    ----------
    x, y : torch.Tensor
        Images (B, C, H, W) with values in [0, 1] (dynamic range L = 1).
    size, sigma : int, float
        Side and width of the Gaussian window; images smaller than ``size`` use the largest
        odd side that fits (see :func:`window_size`), with the same ``sigma``.
    k1, k2 : float
        C₁ = k1², C₂ = k2².

    Notes
    -----
    With local means μ, variances σ² and covariance σ_xy under the window,
    SSIM = (2μₓμᵧ + C₁)(2σₓᵧ + C₂) / ((μₓ² + μᵧ² + C₁)(σₓ² + σᵧ² + C₂)), averaged over the
    valid window positions and the channels. Identical images give exactly 1.
    """
    _check_pair(x, y, min_dims=4)
    if x.dim() != 4:
        raise XaeError(f"ssim needs images (B, C, H, W), got shape {tuple(x.shape)}")
    c, h, w = x.shape[1:]
    side = window_size(h, w, size)
    kernel = ssim_window(side, sigma).to(x.device).expand(c, 1, side, side)
    x, y = x.double(), y.double()

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x.square()
    var_y = local_mean(y * y) - mu_y.square()
    cov_xy = local_mean(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
                / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)))
    return ssim_map.flatten(1).mean(-1)


def _in_unit_range(x: torch.Tensor) -> bool:
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    return lo >= 0.0 and hi <= 1.0


def reconstruction_quality(model: Autoencoder, x: torch.Tensor, batch_size: int = 1000,
                           progress: bool = False) -> dict[str, float]:
    """MSE, PSNR and SSIM of ``model.reconstruct(x)`` against ``x``, averaged over samples.

    Parameters
    ----------
    model : Autoencoder
        Run in eval mode under no_grad, in batches of ``batch_size``.
    x : torch.Tensor
        Data of the model's shape, on any device.
    progress : bool
        Show a bar with rate and ETA on stderr.

    Returns
    -------
    dict[str, float]
        Always ``mse``. For images (C, H, W) whose values lie in [0, 1] the reconstructions
        are clamped to [0, 1] (as they would be displayed) before every metric, and ``psnr``
        (dB, peak 1) and ``ssim`` are added; other data (vectors, or images outside [0, 1])
        have no known peak, so they get the MSE of the raw reconstructions only.
    """
    if x.shape[0] == 0:
        raise XaeError("reconstruction_quality got no samples; pass at least one")
    images = len(model.data_shape) == 3 and _in_unit_range(x)
    metrics = {"mse": mse, "psnr": psnr, "ssim": ssim} if images else {"mse": mse}
    sums = dict.fromkeys(metrics, 0.0)
    with inference(model) as device, \
            progress_bar(x.shape[0], "reconstructions", progress) as bar:
        for xb in batches(x, batch_size):
            xb = xb.to(device)
            x_hat = model.reconstruct(xb)
            if images:
                x_hat = x_hat.clamp(0.0, 1.0)
            for name, fn in metrics.items():
                sums[name] += float(fn(x_hat, xb).sum())
            bar.update(xb.shape[0])
    out = {name: total / x.shape[0] for name, total in sums.items()}
    if not all(math.isfinite(v) for v in out.values()):
        raise XaeError(f"reconstruction metrics are not finite ({out}); the model produces "
                       f"NaN or infinite reconstructions: check its training")
    return out
