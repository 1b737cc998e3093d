"""Synthetic data from a probabilistic PCA model with known parameters (Tipping & Bishop 1999).

z ~ N(0, I_k), x = W z + mu + sigma * eps with eps ~ N(0, I_d), so x ~ N(mu, W W^T + sigma^2 I)
(Tipping & Bishop 1999, eqs. 2-4). A linear VAE trained on it can be checked against the
exact marginal likelihood (Lucas et al. 2019, "Don't blame the ELBO!").
"""
from __future__ import annotations

import torch
from torch.distributions import MultivariateNormal

from xae.config import DataConfig
from xae.data.dataset import Dataset
from xae.data.split import check_fraction, is_finite_number
from xae.errors import XaeError, positive_int


def _check(cfg: DataConfig) -> None:
    """Raise XaeError for sizes and noise levels the model cannot use."""
    for key in ("n", "dim", "true_latent_dim"):
        positive_int(getattr(cfg, key), f"data.{key}", " for 'linear-gaussian'")
    if not is_finite_number(cfg.noise_std) or cfg.noise_std <= 0:
        raise XaeError(f"data.noise_std must be a positive number for 'linear-gaussian' (the "
                       f"covariance W W^T + sigma^2 I must be invertible), got {cfg.noise_std!r}")


def _sample(w: torch.Tensor, mu: torch.Tensor, sigma: float, n: int,
            generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` samples x = W z + mu + sigma * eps."""
    z = torch.randn(n, w.shape[1], generator=generator)
    eps = torch.randn(n, w.shape[0], generator=generator)
    return z @ w.T + mu + sigma * eps


def true_covariance(w: torch.Tensor, sigma: float) -> torch.Tensor:
    """The marginal covariance W W^T + sigma^2 I of the pPCA model (Tipping & Bishop, eq. 4)."""
    return w @ w.T + sigma**2 * torch.eye(w.shape[0], dtype=w.dtype, device=w.device)


def log_likelihood(x: torch.Tensor, w: torch.Tensor, mu: torch.Tensor,
                   sigma: float) -> torch.Tensor:
    """Exact log p(x) per sample under the pPCA model, computed in float64.

    Parameters
    ----------
    x : torch.Tensor
        Samples ``(N, d)``.
    w, mu, sigma
        The model's loading matrix ``(d, k)``, mean ``(d,)`` and noise standard deviation.

    Returns
    -------
    torch.Tensor
        ``(N,)`` log-densities in nats.
    """
    w64, mu64 = w.double(), mu.double()
    mvn = MultivariateNormal(mu64, covariance_matrix=true_covariance(w64, sigma))
    return mvn.log_prob(x.double())


def load_linear_gaussian(cfg: DataConfig) -> Dataset:
    """Draw ``cfg.n`` train samples and a test set from a pPCA model seeded by ``cfg.seed``.

    W (``dim`` x ``true_latent_dim``) and mu (``dim``) have N(0, 1) entries; the noise has
    standard deviation ``noise_std``. The test set has ``round(n * test_fraction)`` samples,
    drawn after the train set from the same generator.

    Parameters
    ----------
    cfg : DataConfig
        Uses ``n``, ``dim``, ``true_latent_dim``, ``noise_std``, ``test_fraction``, ``seed``.

    Returns
    -------
    Dataset
        Vectors ``(N, dim)`` without labels; ``info`` holds ``W``, ``mu``, ``sigma``, ``cov``
        (W W^T + sigma^2 I) and ``log_likelihood_test``, the exact average test
        log-likelihood in nats (a float).
    """
    _check(cfg)
    n_test = round(cfg.n * check_fraction(cfg.test_fraction))
    sigma = float(cfg.noise_std)
    generator = torch.Generator().manual_seed(cfg.seed)
    w = torch.randn(cfg.dim, cfg.true_latent_dim, generator=generator)
    mu = torch.randn(cfg.dim, generator=generator)
    train_x = _sample(w, mu, sigma, cfg.n, generator)
    test_x = _sample(w, mu, sigma, n_test, generator)
    info = {
        "W": w,
        "mu": mu,
        "sigma": sigma,
        "cov": true_covariance(w, sigma),
        "log_likelihood_test": float(log_likelihood(test_x, w, mu, sigma).mean())
        if n_test else float("nan"),
    }
    return Dataset("linear-gaussian", train_x, None, test_x, None, info)
