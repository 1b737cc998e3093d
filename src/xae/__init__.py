"""xae: regularized autoencoders — one composable model, a trainer, run folders and a CLI.

>>> import xae
>>> cfg = xae.preset("vae", data="digits", latent_dim=2)
>>> model = xae.build(cfg)

``xae.evaluate_model`` measures a model on a test batch; ``xae.evaluate`` is the subpackage of
every evaluation (``xae.evaluate.fid``, ``xae.evaluate.images``, …). ``xae.attributes(model,
x, labels)`` learns attribute directions in the latent space; ``xae.latent(model, x, c)``
gives each datum's latent mean (covariate-corrected for a model with a covariate); ``xae.edits`` is the subpackage of
edits along them (``xae.edits.edit``, ``xae.edits.thickness``, …).
"""
from __future__ import annotations

from xae.config import Config
from xae.cpu import configure_cpu
from xae.errors import XaeError
from xae.model import Autoencoder
from xae.outputs import AEOutput, BottleneckOutput, EvalResult, LossOutput, Term
from xae.presets import PRESETS, preset
from xae.registry import build
from xae.train.checkpoint import load
from xae.train.loop import train
from xae.evaluate.diagnostics import evaluate as evaluate_model
from xae.evaluate.likelihood import likelihood_report, log_likelihood
from xae.edits.directions import attributes
from xae.latents import latent

__version__ = "0.1.0"

__all__ = [
    "AEOutput", "Autoencoder", "BottleneckOutput", "Config", "EvalResult", "LossOutput",
    "PRESETS", "Term", "XaeError", "attributes", "build", "configure_cpu", "evaluate_model",
    "latent", "likelihood_report", "load", "log_likelihood", "preset", "train",
]
