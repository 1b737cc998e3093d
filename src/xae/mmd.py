"""Maximum mean discrepancy between two samples (Gretton et al. 2012), one kernel module.

MMD²(P, Q) = E k(x, x') + E k(y, y') − 2 E k(x, y) with x, x' ~ P and y, y' ~ Q. The estimate
here is the unbiased U-statistic (Gretton et al. 2012, eq. 3): the diagonal terms k(x_i, x_i)
are left out, so it is zero in expectation when P = Q and can be slightly negative.

Kernels sum over a set of scales, as in the WAE paper (Tolstikhin et al. 2018, sec. 4): the
inverse multiquadric k(x, y) = Σ_s C_s / (C_s + ‖x − y‖²) with C_s = 2·D·s (for N(0, I) in D
dimensions E‖x − y‖² = 2D, so s = 1 matches the prior's own spread), and the Gaussian RBF
k(x, y) = Σ_s exp(−‖x − y‖² / C_s) with the same C_s. Kernel matrices are computed in blocks,
so samples of 10,000 points need only blocks of memory.
"""
from __future__ import annotations

from typing import Callable

import torch

from xae.errors import XaeError

SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BLOCK = 2048


def _sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """‖x_i − y_j‖², (N, M), clamped at zero against rounding."""
    return (x.pow(2).sum(-1, keepdim=True) + y.pow(2).sum(-1) - 2 * x @ y.T).clamp_min(0)


def imq(d2: torch.Tensor, dim: int, scales: tuple[float, ...] = SCALES) -> torch.Tensor:
    """Inverse multiquadric kernel values from squared distances ``d2``."""
    return sum(2 * dim * s / (2 * dim * s + d2) for s in scales)


def rbf(d2: torch.Tensor, dim: int, scales: tuple[float, ...] = SCALES) -> torch.Tensor:
    """Gaussian RBF kernel values from squared distances ``d2``."""
    return sum(torch.exp(-d2 / (2 * dim * s)) for s in scales)


KERNELS: dict[str, Callable[..., torch.Tensor]] = {"imq": imq, "rbf": rbf}


def _kernel_sum(x: torch.Tensor, y: torch.Tensor, kernel: Callable, scales: tuple,
                same: bool) -> torch.Tensor:
    """Σ_ij k(x_i, y_j) over all pairs (i ≠ j when ``same``), block by block."""
    total = x.new_zeros(())
    for i in range(0, x.shape[0], BLOCK):
        k = kernel(_sqdist(x[i:i + BLOCK], y), x.shape[1], scales)
        if same:
            rows = torch.arange(k.shape[0], device=k.device)
            k[rows, rows + i] = 0
        total = total + k.sum()
    return total


def mmd2(x: torch.Tensor, y: torch.Tensor, kernel: str = "imq",
         scales: tuple[float, ...] = SCALES) -> torch.Tensor:
    """Unbiased estimate of MMD² between samples ``x`` (N, D) and ``y`` (M, D); differentiable.

    Parameters
    ----------
    kernel : ``imq`` (inverse multiquadric) or ``rbf``; both summed over ``scales``.
    """
    if kernel not in KERNELS:
        raise XaeError(f"unknown MMD kernel '{kernel}'; use one of {', '.join(KERNELS)}")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2 or x.shape[1] != y.shape[1]:
        raise XaeError(f"MMD needs two samples of at least 2 points of the same dimension, "
                       f"got {tuple(x.shape)} and {tuple(y.shape)}")
    fn = KERNELS[kernel]
    kxx = _kernel_sum(x, x, fn, scales, same=True) / (n * (n - 1))
    kyy = _kernel_sum(y, y, fn, scales, same=True) / (m * (m - 1))
    kxy = _kernel_sum(x, y, fn, scales, same=False) / (n * m)
    return kxx + kyy - 2 * kxy
