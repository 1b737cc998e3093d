"""Presets: a paper's model as a named set of config values, never a class of its own."""
from __future__ import annotations

import difflib
from typing import Any

from xae.config import Config, apply, resolve_key
from xae.errors import XaeError

PRESETS: dict[str, dict[str, Any]] = {
    # Plain autoencoder: deterministic code, no regularizer.
    "ae": {"model.bottleneck": "deterministic", "model.regularizer": "none"},
    # VAE (Kingma & Welling 2014): diagonal Gaussian posterior, N(0, I) prior, analytic KL.
    "vae": {"model.bottleneck": "gaussian", "model.regularizer": "kl"},
    # β-VAE (Higgins et al. 2017): the VAE with the KL weighed by β > 1 (β = 4 in their Fig. 1).
    "beta-vae": {"model.bottleneck": "gaussian", "model.regularizer": "kl", "beta.value": 4.0},
    # Linear VAE (Lucas et al. 2019): linear encoder and decoder, Gaussian likelihood with a
    # learned scalar σ; its optimum is probabilistic PCA (Tipping & Bishop 1999).
    "linear-vae": {
        "model.bottleneck": "gaussian", "model.regularizer": "kl", "model.hidden": [],
        "model.likelihood": "gaussian", "model.scale": "scalar", "model.latent_dim": 2,
        "data.name": "linear-gaussian", "train.lr": 1e-2, "train.epochs": 50,
    },
    # IWAE (Burda et al. 2016): the importance-weighted bound with K = 50 samples, on their
    # one-stochastic-layer MLP (two tanh layers of 200 units, 50 latents).
    "iwae": {
        "model.bottleneck": "gaussian", "model.regularizer": "kl", "model.objective": "iwae",
        "model.iw_samples": 50, "model.hidden": [200, 200], "model.activation": "tanh",
        "model.latent_dim": 50,
    },
    # VAE with a learned mixture-of-Gaussians prior (the MoG baseline of Tomczak & Welling
    # 2018): KL by Monte Carlo, samples drawn from the same learned mixture.
    "mog-vae": {"model.bottleneck": "gaussian", "model.regularizer": "kl", "model.prior": "mog",
                "model.prior_components": 10},
}


def preset(name: str, **overrides: Any) -> Config:
    """A :class:`Config` for preset ``name`` with keyword overrides.

    Keywords may be short (``latent_dim=16``, ``epochs=5``) or dotted via a dict
    (``**{"model.latent_dim": 16}``); ``data="mnist"`` sets the data set's name.
    """
    if name not in PRESETS:
        near = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise XaeError(f"unknown preset '{name}'{hint} (choices: {', '.join(PRESETS)})")
    cfg = apply(Config(preset=name), PRESETS[name])
    updates = {}
    for key, value in overrides.items():
        if key == "data" and isinstance(value, str):
            key = "data.name"
        updates[resolve_key(key)] = value
    return apply(cfg, updates)
