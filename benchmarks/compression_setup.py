"""What ``compression.py`` measures besides xae's own coder: the generic lossless compressors on
the same bits, the model it trains, and the rate–distortion figure.

How each lossless baseline is fed (N binary images of 28×28, bits/dim = 8·bytes / (N·784)):

- gzip, bz2, lzma (level 9, lzma's preset 9 | EXTREME): the pixels packed 8 to a byte with
  ``numpy.packbits``, image after image in raster order (the bytes of one long bit string);
- PNG: one 1-bit greyscale picture (Pillow mode "1", ``optimize=True``), the images tiled in
  a grid ⌈√N⌉ wide (:func:`xae.compress.rd.mosaic`), so the header is paid once;
- WebP lossless: the same mosaic as 8-bit greyscale (0/255), ``lossless=True``, ``quality=100``,
  ``method=6`` (its slowest, smallest setting).

Every baseline is decoded again and compared with the input: ``exact`` in the results.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mnist_elbo import CONFIG
from xae.compress.rd import mosaic, unmosaic

# The model: mnist_elbo.py's VAE ([512, 256], 32 latents, batch 200, KL warm-up, cosine lr;
# the fastest route to a low −ELBO here: 91.55 nats after 154 epochs in 10 minutes), with the
# standard-normal prior and the Bernoulli likelihood BB-ANS needs; trained longer, the cosine
# decay over the planned epochs, no held-out evaluations in training time.
MODEL_KEYS: dict[str, Any] = {**CONFIG, "train.eval_every": 0, "train.log_every": 3000,
                              "train.checkpoint_every": 30000}


def _generic(compress: Callable[[bytes], bytes], decompress: Callable[[bytes], bytes]
             ) -> Callable[[np.ndarray], tuple[int, bool]]:
    def run(x: np.ndarray) -> tuple[int, bool]:
        packed = np.packbits(x.reshape(-1)).tobytes()
        out = compress(packed)
        back = np.unpackbits(np.frombuffer(decompress(out), np.uint8))[:x.size]
        return len(out), bool(np.array_equal(back.reshape(x.shape), x))
    return run


def _pillow(fmt: str, **options: Any) -> Callable[[np.ndarray], tuple[int, bool]]:
    def run(x: np.ndarray) -> tuple[int, bool]:
        from PIL import Image

        t = torch.from_numpy(x).float()
        pic = mosaic(t)
        img = Image.fromarray(pic > 127) if fmt == "PNG" else Image.fromarray(pic)
        buf = io.BytesIO()
        img.save(buf, format=fmt, **options)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
        back = unmosaic(dec[..., None], t).numpy()
        return buf.tell(), bool(np.array_equal(back, x.astype(np.float32)))
    return run


LOSSLESS: dict[str, tuple[str, Callable[[np.ndarray], tuple[int, bool]]]] = {
    "gzip": ("packbits, gzip -9", _generic(lambda b: gzip.compress(b, 9), gzip.decompress)),
    "bz2": ("packbits, bz2 -9", _generic(lambda b: bz2.compress(b, 9), bz2.decompress)),
    "lzma": ("packbits, lzma preset 9e", _generic(
        lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress)),
    "png": ("1-bit PNG mosaic, optimize", _pillow("PNG", optimize=True)),
    "webp": ("8-bit WebP lossless mosaic, method 6",
             _pillow("WEBP", lossless=True, quality=100, method=6)),
}


def lossless_baselines(x: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Each baseline's bytes, bits/dim and exactness on binary images ``x`` (N, 1, H, W)."""
    a = x.numpy().astype(np.uint8)
    out = {}
    for name, (how, run) in LOSSLESS.items():
        size, exact = run(a)
        out[name] = {"how": how, "bytes": size, "bits_per_dim": 8 * size / a.size,
                     "exact": exact}
    return out


def figure(path: Path, model_points: list[dict], codec_curves: dict[str, list[dict]],
           matched: dict[str, list[dict]]) -> None:
    """PSNR against bits per pixel: the model's steps, each codec's quality sweep, and the
    codec points matched to the model's rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot([p["bpp"] for p in model_points], [p["psnr"] for p in model_points], "o-",
            label="xae VAE latent (Δ sweep)")
    for (fmt, pts), marker in zip(codec_curves.items(), "sd"):
        line = ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], marker + "--",
                       alpha=0.6, label=f"{fmt} (quality sweep)")
        m = [p for p in matched[fmt] if p["matched"]]
        if m:  # none where the codec's lowest rate is above every one of the model's
            ax.plot([p["bpp"] for p in m], [p["psnr"] for p in m], marker, ms=10, mfc="none",
                    color=line[0].get_color(), label=f"{fmt} at the model's rates")
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("Lossy coding of the MNIST test images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
