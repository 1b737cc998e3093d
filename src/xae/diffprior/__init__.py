"""Diffusion priors over an autoencoder's continuous codes (``xae prior fit`` on a Gaussian or
deterministic run), trained by flow matching in the latent space scaled to unit variance.

>>> from xae.diffprior import fit_diffusion_prior
>>> fit_diffusion_prior("runs/conv-vae-mnist", steps=4000)   # writes RUN/diffusion_prior/
>>> model = xae.load("runs/conv-vae-mnist")                   # attaches it
>>> x = model.sample(16, source="fitted")
"""
from __future__ import annotations

from xae.diffprior.config import DiffusionPriorConfig
from xae.diffprior.fit import fit_diffusion_prior, fit_latents, load_diffusion_prior
from xae.diffprior.prior import DiffusionPrior

__all__ = ["DiffusionPrior", "DiffusionPriorConfig", "fit_diffusion_prior", "fit_latents",
           "load_diffusion_prior"]
