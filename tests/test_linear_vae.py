"""The linear VAE recovers probabilistic PCA (Tipping & Bishop 1999; Lucas et al. 2019).

Trained end to end on data from a known pPCA model, the learned noise scale must approach the
true σ and the importance-weighted log-likelihood must approach the exact marginal
log N(x; μ, WWᵀ + σ²I), which the data set computes in closed form.
"""
from __future__ import annotations

from pathlib import Path

import torch

import xae
from xae.data import load


def test_linear_vae_recovers_ppca(tmp_path: Path) -> None:
    cfg = xae.preset("linear-vae", progress=False, figures=False)
    run = xae.train(cfg, tmp_path / "run")
    model = xae.load(run)
    data = load(model.config.data)
    exact = data.info["log_likelihood_test"]
    sigma = model.likelihood.log_scale.exp().item()
    assert abs(sigma - data.info["sigma"]) < 0.03
    torch.manual_seed(0)
    iw = xae.log_likelihood(model, data.test_x, k=200).mean().item()
    elbo = -xae.evaluate_model(model, data.test_x).metrics["neg_elbo"]
    assert elbo <= iw + 0.05  # the ELBO is the looser bound
    assert abs(iw - exact) < 0.15  # a learned model, so close to but not at the optimum
