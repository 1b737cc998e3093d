"""Checks of a trained model against closed-form answers (``xae check``).

``ppca``: the linear VAE against maximum-likelihood probabilistic PCA (Tipping & Bishop 1999)
and its own exact marginal likelihood. ``gradients``: the variance of the reparameterization
and score-function gradient estimators of the same expectation (Mohamed et al. 2020).
"""
from __future__ import annotations
