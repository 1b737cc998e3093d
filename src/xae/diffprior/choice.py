"""Which prior a command samples, ``own`` or ``fitted``, and the words that say so.

``xae sample``, ``xae eval`` and the explorer never choose silently: ``auto`` means the fitted
diffusion prior when the run has one (``xae prior fit``) and the model's own prior otherwise,
and every output names the prior it used.
"""
from __future__ import annotations

from torch import nn

from xae.errors import XaeError

CHOICES = ("auto", "own", "fitted")


def choose(model: nn.Module, choice: str = "auto") -> str:
    """``own`` or ``fitted`` for ``choice`` (auto, own or fitted); an error for ``fitted`` on
    a run with no fitted diffusion prior."""
    if choice not in CHOICES:
        raise XaeError(f"--prior {choice} is unknown; use one of {', '.join(CHOICES)}")
    fitted = model.prior.fitted
    if choice == "auto":
        return "fitted" if fitted is not None else "own"
    if choice == "fitted" and fitted is None:
        raise XaeError("the run has no fitted diffusion prior; fit one with `xae prior fit RUN` "
                       "(a continuous code), or sample the model's own prior with --prior own")
    return choice


def describe(model: nn.Module, source: str) -> str:
    """Words for the prior ``source`` of ``model``, e.g. ``the fitted diffusion prior (flow
    matching, 25 Heun steps)`` or ``the model's own prior (model.prior = normal)``."""
    if source == "fitted":
        steps = model.prior.fitted.config.sample_steps
        return f"the fitted diffusion prior (flow matching, {steps} Heun steps)"
    name = model.config.model.prior if model.config is not None else type(model.prior).__name__
    words = f"the model's own prior (model.prior = {name}"
    if model.discrete:
        words += ", autoregressive: fitted by xae prior fit" \
            if getattr(model.prior, "ar", None) is not None else ", uniform over the codes"
    if model.hierarchical:
        words += ", then down the top-down path"
    words += ")"
    from xae.regularizers import NoRegularizer

    if not (model.stochastic or model.discrete) and isinstance(model.regularizer,
                                                                NoRegularizer):
        words += ", which this autoencoder was never trained towards"
    return words
