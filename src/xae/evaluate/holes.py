"""Holes: where the aggregate posterior q(z) = E_x q(z|x) leaves the prior p(z) uncovered.

A prior sample that lands where no datum encodes decodes to garbage (Rezende & Viola 2018;
Tomczak & Welling 2018 motivate learned priors with it). Two measurements:

- ``holes_mmd``: the unbiased MMD² (inverse multiquadric kernel, :mod:`xae.mmd`) between one
  draw z ~ q(z|x) per datum and as many draws from p(z) (2000 of each at most), both divided
  per dimension by the prior draws' standard deviation. The kernel's scales are set for
  N(0, I); a learned prior fixes no units (the decoder absorbs any rescaling of z), and
  without the division a prior that shrank its latent space by half scored several times
  worse for the same match. Zero in expectation when q(z) = p(z). It is reported as it is,
  negative values included: the unbiased estimate scatters around its expectation, so it
  falls below zero when the two samples are indistinguishable at this sample size. (The
  biased estimate, never negative, sits about 0.003 above it at n = 2000 whatever the match,
  as large as the mismatches it should tell apart; clipping at zero would bias it upwards
  too.) Wherever the value is shown, a negative one is explained (:func:`mmd_note`).
- ``holes_fraction``: the fraction of prior samples whose aggregate-posterior density
  log q(z) = log (1/N) Σ_n q(z|x_n) is below τ, the density that 99% of encoded points exceed
  (τ is the 1st percentile of log q over draws z_m ~ q(z|x_m), each scored against the mixture
  of the *other* N − 1 posteriors, so an encoded point does not count its own component). When
  q(z) = p(z) the fraction is 0.01 by construction; larger means holes.

For 2-D latents :func:`xae.viz.holes_map` draws both densities and marks the holes, titled
with the very numbers of the metrics (it never estimates its own).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from xae.distributions import DiagonalGaussian, mixture_log_prob, pairwise_log_prob
from xae.mmd import mmd2

COVERAGE = 0.99  # τ is the density that this fraction of encoded points exceed
BLOCK = 1024
MMD_POINTS = 2000  # the MMD's cost grows with n², its standard error is already small here


NEGATIVE_MMD = ("it is an unbiased estimate of MMD², zero in expectation when q(z) = p(z), so "
                "it falls below 0 when the encoded and the prior samples are indistinguishable "
                "at this sample size")


def mmd_note(value: float) -> str | None:
    """Why ``holes_mmd`` = ``value`` is below zero (None when it is not)."""
    return f"holes_mmd = {value:.4g} is below 0: {NEGATIVE_MMD}" if value < 0 else None


@dataclass
class Holes:
    """The hole measurements and what they were computed from (for figures)."""

    mmd: float
    fraction: float | None
    log_tau: float | None
    prior_z: torch.Tensor
    encoded_z: torch.Tensor


def mixture_log_density(z: torch.Tensor, q: DiagonalGaussian,
                        leave_out_self: bool = False) -> torch.Tensor:
    """log (1/N) Σ_n N(z_m; μ_n, σ_n²) for each row of ``z`` (M, D), in float64, in blocks of
    ``BLOCK`` rows (:func:`~xae.distributions.mixture_log_prob`).

    With ``leave_out_self`` (M = N, z_m drawn from component m) component m is left out of
    row m's mixture and the mean is over the other N − 1.
    """
    mean, logvar = q.mean.double(), q.logvar.double()
    out = []
    for i in range(0, z.shape[0], BLOCK):
        zb = z[i:i + BLOCK].double()
        if not leave_out_self:
            out.append(mixture_log_prob(zb, mean, logvar))
            continue
        logn = pairwise_log_prob(zb, mean, logvar)  # a mixture without row m's own component
        rows = torch.arange(logn.shape[0], device=logn.device)
        logn[rows, rows + i] = -math.inf
        out.append(logn.logsumexp(-1) - math.log(q.mean.shape[0] - 1))
    return torch.cat(out)


def holes(model: object, posterior: DiagonalGaussian | None, codes: torch.Tensor,
          max_points: int = 5000) -> Holes:
    """Hole measurements from the test set's posteriors (or codes, for deterministic models).

    Parameters
    ----------
    model : the model (its prior is sampled).
    posterior : q(z|x) for the test set, or None for a deterministic bottleneck (then only the
        MMD is defined: a sum of point masses has no density to compare). For a hierarchy of
        latent groups q(z|x) is not one diagonal Gaussian, so only the MMD is measured there
        too (against ancestral draws of its prior).
    codes : one draw z ~ q(z|x) per datum (the code itself when deterministic), (N, D).
    max_points : at most this many data (the first ones) enter the density measurement, and
        at most ``MMD_POINTS`` of them the MMD.
    """
    codes = codes[:max_points]
    prior_z = model.sample_z(codes.shape[0]).to(codes.dtype)
    unit = prior_z.std(0).clamp_min(1e-12) if prior_z.shape[0] > 1 else 1.0
    mmd = float(mmd2(codes[:MMD_POINTS] / unit, prior_z[:MMD_POINTS] / unit, kernel="imq"))
    if posterior is None or codes.shape[0] < 2 or model.hierarchical:
        return Holes(mmd, None, None, prior_z, codes)
    q = DiagonalGaussian(posterior.mean[:max_points], posterior.logvar[:max_points])
    own = mixture_log_density(codes, q, leave_out_self=True)
    log_tau = float(torch.quantile(own, 1 - COVERAGE))
    fraction = float((mixture_log_density(prior_z, q) < log_tau).double().mean())
    return Holes(mmd, fraction, log_tau, prior_z, codes)
