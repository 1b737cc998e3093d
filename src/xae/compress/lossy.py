"""Lossy coding through a trained model's latent: quantize it, entropy-code it under a prior.

A continuous code (Gaussian posterior or deterministic, with the standard-normal prior) is
the posterior mean rounded to a grid of step Δ: index i = round(μ / Δ), clipped to ±R with
R·Δ ≥ :data:`RANGE` prior deviations, each coded under the prior's mass on its bin,
Φ((i + ½)Δ) − Φ((i − ½)Δ) (constriction's QuantizedGaussian with mean 0 and scale 1/Δ).
A discrete code (VQ, FSQ, LFQ, Gumbel, residual VQ) is its index grid, coded under the
uniform code prior or, when the run has one (``xae prior fit``), the fitted autoregressive
prior: the encoder runs it once over the whole grid, the decoder position by position on
grids of the same shape, unknown positions zero, so that causal attention gives bit-identical
probabilities. Decoding maps the indices back to z and runs the decoder: the reconstruction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from xae.compress.ans import Stack
from xae.compress.exact import float64_copy, reproducible
from xae.errors import XaeError
from xae.model import inference

DEFAULT_STEP = 0.5  # Δ of a continuous latent unless told
RANGE = 16.0        # prior deviations the grid covers on each side of 0
AR_BLOCK = 256      # index grids per pass of the fitted prior


@dataclass
class LossyCode:
    """The coded latent: the stack's words and how to read them (``kind`` gaussian or codes,
    ``prior`` normal, uniform or fitted, ``step`` Δ for a continuous code)."""

    words: np.ndarray
    kind: str
    prior: str
    step: float
    n: int


def lossy_kind(model: torch.nn.Module) -> str:
    """``codes`` for a discrete run, ``gaussian`` for a continuous one with the standard-normal
    prior; an XaeError naming what is needed otherwise."""
    from xae.priors.normal import StandardNormal

    if model.hierarchical:
        raise XaeError("lossy coding takes one latent group; this run's code is a hierarchy of "
                       "groups (ladder or hvae): use a one-group run")
    if model.discrete:
        return "codes"
    if type(model.prior) is not StandardNormal:
        raise XaeError(f"lossy coding of a continuous latent codes it under the standard-normal "
                       f"prior (model.prior=normal); this run has {type(model.prior).__name__}")
    return "gaussian"


def check_step(step: float) -> float:
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step <= 4:
        raise XaeError(f"--step Δ, the quantization step of the latent in prior deviations, "
                       f"must be a number in (0, 4], got {step!r}")
    return float(step)


def check_options(model: torch.nn.Module, lossy_coding: bool, step: float | None) -> float:
    """The step to use (0.0 where there is none), or an XaeError for a step that cannot
    apply: without lossy coding, or for a discrete run's codes."""
    if not lossy_coding:
        if step is not None:
            raise XaeError("a step Δ is the lossy coder's grid (--lossy --step); the lossless "
                           "coder has none: add --lossy or drop --step")
        return 0.0
    if lossy_kind(model) == "codes":
        if step is not None:
            raise XaeError("this run's code is discrete: its indices are coded as they are, "
                           "with no grid step; drop --step")
        return 0.0
    return check_step(DEFAULT_STEP if step is None else step)


def _grid(step: float) -> int:
    return math.ceil(RANGE / step)


def _ar(model: torch.nn.Module) -> torch.nn.Module | None:
    ar = getattr(model.prior, "ar", None)
    return None if ar is None else float64_copy(ar)


def quantize(model: torch.nn.Module, x: torch.Tensor, step: float) -> torch.Tensor:
    """The integer code of ``x``: (N, D) grid indices of the posterior mean, or the (N, T)
    flattened index grid of a discrete run."""
    kind = lossy_kind(model)
    with inference(model):
        if kind == "codes":
            idx = model.encode(x).indices
            return idx.reshape(idx.shape[0], -1).long().cpu()
        r = _grid(check_step(step))
        return torch.round(model.latent_mean(x) / step).clamp(-r, r).long().cpu()


def dequantize(model: torch.nn.Module, idx: torch.Tensor, step: float) -> torch.Tensor:
    """The code z of integer codes from :func:`quantize`."""
    device = next(model.parameters()).device
    if lossy_kind(model) == "codes":
        q = model.bottleneck
        grid = (q.positions, q.stages) if q.stages > 1 else (q.positions,)
        return q.indices_to_z(idx.view(idx.shape[0], *grid).to(device))
    return (idx.double() * step).to(device=device, dtype=next(model.parameters()).dtype)


def reconstruct_codes(model: torch.nn.Module, idx: torch.Tensor, step: float) -> torch.Tensor:
    """The decoder's mean at the dequantized codes: what a decoded file holds."""
    with inference(model):
        return model.decode(dequantize(model, idx, step)).cpu()


def encode(model: torch.nn.Module, x: torch.Tensor, step: float) -> LossyCode:
    idx = quantize(model, x, step)
    stack, kind = Stack(), lossy_kind(model)
    if kind == "gaussian":
        r = _grid(step)
        stack.push_gaussian(idx.reshape(-1).numpy(), r, 1.0 / step)
        return LossyCode(stack.words(), kind, "normal", step, len(idx))
    ar, k = _ar(model), int(model.bottleneck.codebook_size)
    if ar is None:
        stack.push_uniform(idx.reshape(-1).numpy(), k)
        return LossyCode(stack.words(), kind, "uniform", 0.0, len(idx))
    with reproducible():
        for start in reversed(range(0, len(idx), AR_BLOCK)):  # decoded first to last
            tok = idx[start:start + AR_BLOCK]
            probs = torch.softmax(ar(tok), -1)  # (b, T, K): position t from tokens < t
            stack.push_categorical(tok.T.reshape(-1).numpy(),
                                   probs.transpose(0, 1).reshape(-1, k).numpy())
    return LossyCode(stack.words(), kind, "fitted", 0.0, len(idx))


def decode_indices(model: torch.nn.Module, code: LossyCode, dim: int) -> torch.Tensor:
    """The integer codes (N, D or T) held by ``code``; ``dim``: the codes per image."""
    stack, n = Stack(code.words), code.n
    if code.kind == "gaussian":
        r = _grid(code.step)
        return torch.from_numpy(stack.pop_gaussian(n * dim, r, 1.0 / code.step)
                                .astype(np.int64)).view(n, dim)
    k = int(model.bottleneck.codebook_size)
    if code.prior == "uniform":
        return torch.from_numpy(stack.pop_uniform(n * dim, k).astype(np.int64)).view(n, dim)
    ar = _ar(model)
    if ar is None:
        raise XaeError("this file was coded under the run's fitted code prior, which the run "
                       "no longer has; refit it with `xae prior fit` is not enough (a new "
                       "fit gives other probabilities): decode with the run as it was")
    out = []
    with reproducible():
        for start in range(0, n, AR_BLOCK):
            b = min(AR_BLOCK, n - start)
            tok = torch.zeros(b, dim, dtype=torch.long)
            for t in range(dim):
                probs = torch.softmax(ar(tok)[:, t], -1)
                tok[:, t] = torch.from_numpy(stack.pop_categorical(probs.numpy()).astype(np.int64))
            out.append(tok)
    return torch.cat(out)
