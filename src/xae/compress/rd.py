"""Rate–distortion points: the model's lossy coder, and JPEG and WebP at a matched rate.

Rates are bits per pixel (bpp): coded bits over N·H·W (all channels of a pixel together),
the coded words alone for the model (no header), the whole encoded file for JPEG and WebP.
Distortion is the PSNR of each image in dB (data in [0, 1]), averaged over the images.
JPEG and WebP code the images as one mosaic (a grid of the images side by side), so that a
format's header is paid once, not once per 28×28 image; their quality setting is searched by
bisection for the rate closest to the target without going over it (bpp grows with quality).
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch

from xae.compress import lossy
from xae.errors import XaeError
from xae.evaluate.images import psnr as psnr_per_image

FORMATS = ("JPEG", "WEBP")


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """The mean over images of each image's PSNR in dB (values clamped to [0, 1])."""
    return float(psnr_per_image(x.clamp(0, 1), y.clamp(0, 1)).mean())


def pixels(x: torch.Tensor) -> int:
    """N·H·W of images (N, C, H, W), or N·D of vectors."""
    return x.shape[0] * (math.prod(x.shape[2:]) if x.dim() == 4 else x.shape[1])


def model_point(model: torch.nn.Module, x: torch.Tensor, step: float) -> dict[str, float]:
    """The model's lossy coder at step Δ: bpp of the coded words and the PSNR of the decoded
    reconstructions (decoded from the words, not from the encoder's indices)."""
    code = lossy.encode(model, x, step)
    dim = int(lossy.quantize(model, x[:1], step).shape[1])
    rec = lossy.reconstruct_codes(model, lossy.decode_indices(model, code, dim), step)
    return {"step": step, "bpp": 32 * len(code.words) / pixels(x), "psnr": psnr(x, rec)}


def mosaic(x: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] as one uint8 picture, ⌈√N⌉ images wide (blank cells at
    the end), (rows·H, cols·W) for one channel or (…, 3) for three."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise XaeError(f"JPEG and WebP code images of 1 or 3 channels, (N, C, H, W); got "
                       f"{tuple(x.shape)}")
    n, c, h, w = x.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    a = np.zeros((rows * cols, h, w, c), np.uint8)
    a[:n] = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    a = a.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
    return a[..., 0] if c == 1 else a


def unmosaic(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`mosaic`: images shaped as ``like``, float in [0, 1]."""
    n, c, h, w = like.shape
    cols = a.shape[1] // w
    a = a.reshape(-1, h, cols, w, c).transpose(0, 2, 1, 3, 4).reshape(-1, h, w, c)[:n]
    return torch.from_numpy(a.astype(np.float32) / 255).permute(0, 3, 1, 2)


def codec_point(x: torch.Tensor, fmt: str, quality: int) -> dict[str, float]:
    """``fmt`` (JPEG or WEBP) at ``quality`` on the mosaic: bpp and mean PSNR."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(mosaic(x)).save(buf, format=fmt, quality=int(quality))
    dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L" if x.shape[1] == 1
                                                                        else "RGB"))
    return {"quality": int(quality), "bpp": 8 * buf.tell() / pixels(x),
            "psnr": psnr(x, unmosaic(dec.reshape(*dec.shape[:2], -1), x))}


def matched(x: torch.Tensor, fmt: str, bpp: float) -> dict[str, float | bool]:
    """``fmt`` at the highest quality (1 to 100) whose rate is at most ``bpp``; at quality 1
    when even that is above it (``matched`` False then)."""
    if fmt not in FORMATS:
        raise XaeError(f"the codec is one of {', '.join(FORMATS)}, got {fmt!r}")
    lo, hi = 1, 100
    best = codec_point(x, fmt, lo)
    if best["bpp"] > bpp:
        return {**best, "matched": False}
    while lo < hi:  # invariant: quality lo fits
        mid = (lo + hi + 1) // 2
        p = codec_point(x, fmt, mid)
        if p["bpp"] <= bpp:
            lo, best = mid, p
        else:
            hi = mid - 1
    return {**best, "matched": True}
