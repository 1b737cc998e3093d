"""How a discrete bottleneck uses its codebook, from the index grids it produces.

- ``code_usage``: the fraction of the K codes used at least once (averaged over residual
  stages). Unused ("dead") codes are capacity the model pays for and never uses.
- ``code_perplexity``: exp of the entropy of the empirical code distribution (averaged over
  stages): the number of equally used codes that would give the same entropy, ≤ K.
- ``code_bits_per_image``: the length of one image's index stream under a uniform code
  distribution, positions × stages × log2 K; a code prior (``xae prior fit``) is scored
  against it.
"""
from __future__ import annotations

import math

import torch


def code_counts(indices: torch.Tensor, codebook_size: int, stages: int = 1) -> torch.Tensor:
    """Counts (S, K) of each code per stage over an index grid (N, P) or (N, P, S)."""
    per_stage = indices.reshape(-1, stages).long()
    offset = torch.arange(stages, device=indices.device) * codebook_size
    flat = (per_stage + offset).flatten()
    return torch.bincount(flat, minlength=stages * codebook_size).view(stages, codebook_size)


def usage_metrics(counts: torch.Tensor) -> dict[str, float]:
    """``code_usage`` and ``code_perplexity`` from counts (S, K)."""
    counts = counts.double()
    p = counts / counts.sum(-1, keepdim=True).clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    return {"code_usage": float((counts > 0).double().mean()),
            "code_perplexity": float(entropy.exp().mean())}


def code_metrics(indices: torch.Tensor, quantizer: object) -> dict[str, float]:
    """Usage, perplexity and uniform bits per image for the index grids of ``quantizer``."""
    k, s = quantizer.codebook_size, quantizer.stages
    out = usage_metrics(code_counts(indices, k, s))
    out["code_bits_per_image"] = quantizer.positions * s * math.log2(k)
    return out
