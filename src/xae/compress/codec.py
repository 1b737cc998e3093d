"""Images to a ``.xae`` file and back: the coders of :mod:`bbans` and :mod:`lossy` behind one
pair of functions, with the file's header (:mod:`fileformat`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xae.compress import bbans, lossy
from xae.compress.buckets import DEFAULT_BITS
from xae.compress.exact import weights_hash
from xae.compress.fileformat import read, write
from xae.errors import XaeError


@dataclass
class Written:
    """What :func:`compress` wrote: the file's size, the coded words' bits, the start-up bits
    (lossless) and the dimensions coded."""

    file_bytes: int
    payload_bits: int
    startup_bits: int
    dims: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def bits_per_dim(self) -> float:
        """The whole file's bits per data dimension (header and start-up bits included)."""
        return 8 * self.file_bytes / self.dims

    @property
    def data_bits_per_dim(self) -> float:
        """The coded words' bits per dimension less the start-up bits: what the images cost."""
        return (self.payload_bits - self.startup_bits) / self.dims


def check_shape(model: torch.nn.Module, x: torch.Tensor, what: str) -> None:
    if tuple(x.shape[1:]) != tuple(model.data_shape):
        raise XaeError(f"{what} have shape {tuple(x.shape)}, one sample {tuple(x.shape[1:])}, "
                       f"but the run takes samples of shape {tuple(model.data_shape)}; give "
                       f"data of the run's shape")
    if len(x) == 0:
        raise XaeError(f"{what} hold no samples; give at least one")


def compress(model: torch.nn.Module, x: torch.Tensor, path: str | Path, *,
             lossy_coding: bool = False, step: float | None = None, bits: int = DEFAULT_BITS,
             block: int = bbans.DEFAULT_BLOCK, raw: dict[str, Any] | None = None) -> Written:
    """Code ``x`` (N, *data_shape) into the file ``path``: losslessly with BB-ANS (``bits``
    per latent dimension, ``block`` images per pass), or, with ``lossy_coding``, through the
    quantized latent: a continuous one on a grid of ``step`` Δ (default
    :data:`lossy.DEFAULT_STEP`), a discrete run's codes as they are (no ``step``). ``raw``:
    the input's dtype and shape, kept so that a lossless decode gives back the same array."""
    check_shape(model, x, "the images")
    step = lossy.check_options(model, lossy_coding, step)
    meta: dict[str, Any] = {"n": len(x), "data_shape": list(model.data_shape), "raw": raw,
                            "torch": torch.__version__}
    if not lossy_coding:
        chain = bbans.encode(model, x, bits=bits, block=block)
        meta.update(mode="lossless", bits=chain.bits, runs=chain.runs, seed=chain.seed)
        words, startup = chain.words, chain.startup_bits
    else:
        code = lossy.encode(model, x, step)
        meta.update(mode="lossy", kind=code.kind, prior=code.prior, step=code.step)
        words, startup = code.words, 0
    size = write(path, weights_hash(model), meta, words)
    return Written(size, 32 * len(words), startup, x.numel(), meta)


def decompress(model: torch.nn.Module, path: str | Path) -> tuple[torch.Tensor, dict[str, Any]]:
    """The images (lossless) or reconstructions (lossy), (N, *data_shape) float32, held by the
    file at ``path``, and its metadata."""
    meta, words = read(path, weights_hash(model))
    try:
        n, mode = int(meta["n"]), meta["mode"]
        if tuple(meta["data_shape"]) != tuple(model.data_shape):
            raise XaeError(f"'{path}' holds samples of shape {tuple(meta['data_shape'])} and "
                           f"the run's are {tuple(model.data_shape)}")
        if mode == "lossless":
            chain = bbans.Chain(words, [tuple(r) for r in meta["runs"]], int(meta["bits"]),
                                int(meta["seed"]))
            if sum(bbans.blocks_of(chain.runs)) != n:
                raise KeyError("runs")
            return _decode_chain(model, chain, meta), meta
        code = lossy.LossyCode(words, meta["kind"], meta["prior"], float(meta["step"]), n)
    except (KeyError, TypeError, ValueError):
        raise XaeError(f"'{path}' has a damaged header; compress the images again") from None
    dim = int(model.bottleneck.positions * model.bottleneck.stages) if code.kind == "codes" \
        else int(model.latent_dim)
    idx = lossy.decode_indices(model, code, dim)
    return lossy.reconstruct_codes(model, idx, code.step), meta


def _decode_chain(model: torch.nn.Module, chain: bbans.Chain,
                  meta: dict[str, Any]) -> torch.Tensor:
    """The lossless decode; where it fails, say when the file came from another torch build,
    whose float64 arithmetic may differ in the last bit and so derail the coder."""
    try:
        return bbans.decode(model, chain, tuple(model.data_shape))
    except XaeError as e:
        made = meta.get("torch")
        if made and made != torch.__version__:
            raise XaeError(f"{e}; it was written with torch {made} and this is torch "
                           f"{torch.__version__}: decompress with the torch that compressed "
                           f"it") from None
        raise


def as_raw(x: torch.Tensor, raw: dict[str, Any] | None) -> np.ndarray:
    """The decoded 0/1 images as the array they were read from: its dtype (uint8 as 0/255,
    bool as False/True) and its shape (channels last again where it was)."""
    a = x.numpy()
    if not raw:
        return a
    shape, dtype = tuple(raw["shape"]), np.dtype(raw["dtype"])
    if len(shape) == 4 and shape[1:] != a.shape[1:]:
        a = a.transpose(0, 2, 3, 1)
    a = a.reshape(shape)
    if dtype == np.uint8:
        return (a * 255).astype(np.uint8)
    return a.astype(dtype)


def bits_per_dim(nats: float, dims: int) -> float:
    return nats / (dims * math.log(2))
