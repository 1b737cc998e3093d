"""Autoregressive priors over a discrete autoencoder's codes (``xae prior fit``).

>>> from xae.codeprior import fit_code_prior, load_code_prior
>>> fit_code_prior("runs/vq-vae-digits", epochs=20)          # writes RUN/code_prior/
>>> ar = load_code_prior("runs/vq-vae-digits")               # a CodeTransformer, or None
"""
from __future__ import annotations

from xae.codeprior.fit import fit_code_prior, load_code_prior
from xae.codeprior.transformer import CodePriorConfig, CodeTransformer

__all__ = ["CodePriorConfig", "CodeTransformer", "fit_code_prior", "load_code_prior"]
