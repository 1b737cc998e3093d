"""Input complexity L(x): the bits a standard lossless compressor spends on x quantized to
8 bits (Serrà et al. 2020). PNG (Pillow, compression level 9) for images of 1, 3 or 4
channels; zlib (level 9) and lzma (preset 9) for any shape, on the raw bytes of the 8-bit
values. Each length counts the compressor's whole output, headers included, as a file would.
"""
from __future__ import annotations

import io
import lzma
import zlib

import numpy as np
import torch

from xae.errors import XaeError

COMPRESSORS: tuple[str, ...] = ("png", "zlib", "lzma")
_PNG_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def quantize(x: torch.Tensor) -> np.ndarray:
    """Values in [0, 1] as uint8 levels round(255·x) (an XaeError for values outside)."""
    if x.numel() and not (float(x.min()) >= 0.0 and float(x.max()) <= 1.0):
        raise XaeError(f"the complexity score compresses 8-bit images and needs data in [0, 1]; "
                       f"this data spans [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    return (x.detach().double().cpu().numpy() * 255).round().astype(np.uint8)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    pil = Image.fromarray(image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1),
                          _PNG_MODES[image.shape[0]])
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def compressed(image: np.ndarray, compressor: str) -> bytes:
    """One 8-bit sample (C, H, W) or (D,) compressed by ``compressor``."""
    if compressor == "png":
        return _png(image)
    if compressor == "zlib":
        return zlib.compress(image.tobytes(), 9)
    if compressor == "lzma":
        return lzma.compress(image.tobytes(), preset=9)
    raise XaeError(f"unknown compressor '{compressor}'; use one of {', '.join(COMPRESSORS)}")


def check_compressor(compressor: str, data_shape: tuple[int, ...]) -> None:
    """An XaeError unless ``compressor`` exists and can code samples of ``data_shape``."""
    if compressor not in COMPRESSORS:
        raise XaeError(f"unknown compressor '{compressor}'; use one of {', '.join(COMPRESSORS)}")
    if compressor == "png" and (len(data_shape) != 3 or data_shape[0] not in _PNG_MODES):
        raise XaeError(f"PNG codes images of 1, 3 or 4 channels, (C, H, W); this data's samples "
                       f"are {tuple(data_shape)}: use --compressor zlib or lzma")


def code_length_bits(x: torch.Tensor, compressor: str = "png") -> np.ndarray:
    """L(x) in bits, 8 × the compressed bytes, for every sample of ``x`` (N, *shape) in
    [0, 1], quantized to 8 bits first."""
    check_compressor(compressor, tuple(x.shape[1:]))
    q = quantize(x)
    return np.array([8.0 * len(compressed(img, compressor)) for img in q])
