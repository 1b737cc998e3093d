"""Test-set objective terms and the importance-weighted estimate of log p(x).

The IW estimate (Burda et al. 2016, eq. 8) with K samples from q(z|x):
log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x), a lower bound that tightens as K grows.
"""
from __future__ import annotations

import math

import torch

from xae.errors import XaeError
from xae.model import Autoencoder, inference
from xae.outputs import EvalResult


def _batches(x: torch.Tensor, batch_size: int):
    for i in range(0, x.shape[0], batch_size):
        yield x[i:i + batch_size]


def evaluate(model: Autoencoder, x: torch.Tensor, beta: float = 1.0,
             batch_size: int = 1000) -> EvalResult:
    """Average loss, distortion, rate and negative ELBO over ``x`` (nats per sample).

    Also reports bits per dimension of the negative ELBO and the number of active units
    (latent dimensions whose posterior mean varies over the data with variance > 0.01;
    Burda et al. 2016, sec. 5.2).
    """
    sums = {"loss": 0.0, "distortion": 0.0, "rate": 0.0}
    means = []
    with inference(model):
        for xb in _batches(x, batch_size):
            out = model(xb, beta=beta)
            sums["loss"] += out.loss.item() * xb.shape[0]
            sums["distortion"] += out.distortion.sum().item()
            sums["rate"] += out.rate.sum().item()
            means.append(out.posterior.mean if out.posterior is not None else out.z)
    n = x.shape[0]
    m = {k: v / n for k, v in sums.items()}
    m["neg_elbo"] = m["distortion"] + m["rate"]
    m["bits_per_dim"] = m["neg_elbo"] / (math.prod(model.data_shape) * math.log(2))
    mu = torch.cat(means)
    m["active_units"] = int((mu.var(0) > 0.01).sum().item()) if n > 1 else 0
    return EvalResult(metrics=m)


def log_likelihood(model: Autoencoder, x: torch.Tensor, k: int = 1000, batch_size: int = 100,
                   chunk: int = 100) -> torch.Tensor:
    """Importance-weighted estimate of log p(x), per sample (B,), with K posterior samples.

    Samples are drawn in chunks of ``chunk`` so that large K fits in memory.
    """
    if not model.stochastic:
        raise XaeError("log_likelihood needs a stochastic bottleneck (q(z|x)); this model is "
                       "deterministic, so it has no likelihood to estimate")
    if k < 1:
        raise XaeError(f"k must be at least 1, got {k}")
    out = []
    with inference(model):
        for xb in _batches(x, batch_size):
            q = model.encode(xb).posterior
            logw = []
            for start in range(0, k, chunk):
                z = q.sample(min(chunk, k - start))  # (c, B, D)
                theta = model.decode_params(z.flatten(0, 1))
                xr = xb.unsqueeze(0).expand(z.shape[0], *xb.shape).flatten(0, 1)
                lpx = model.likelihood.log_prob(xr, theta).view(z.shape[0], -1)
                logw.append(lpx + model.prior.log_prob(z) - q.log_prob(z))
            out.append(torch.logsumexp(torch.cat(logw), 0) - math.log(k))
    return torch.cat(out)
