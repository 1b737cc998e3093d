"""The prior as the explorer's page can sample it: fresh draws per click, or a labelled bank.

:func:`page_prior` says how the page draws what ``model.sample_z(n, source=source)`` draws:

- ``{"kind": "normal"}``: N(0, I), the standard normal prior of a flat continuous code;
- ``{"kind": "mixture", "weights", "means", "scales"}``: a component by its weight, then
  mean + scale·ε: the mixture-of-Gaussians prior, and the VampPrior, whose components
  q(z | u_k) are computed once here, through the encoder in eval mode (as the draws are);
- ``{"kind": "flow", "file"}``: ε ~ N(0, I) through the flow prior's own ONNX graph
  ε (B, D) → z (B, D), exported as :mod:`xae.export` exports the decoder;
- ``{"kind": "bank", "why"}``: anything else. The page then draws rows of the fixed bank of
  prior draws made when the explorer started, and says so and why: a sampler is only ever
  the same distribution as ``sample_z``, never an approximation of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from xae.errors import XaeError
from xae.model import Autoencoder, inference
from xae.priors import FlowPrior, MixtureOfGaussians, StandardNormal, VampPrior

FLOW_FILE = "run/{index}/prior.onnx"
FLOW_NAMES = ("eps", "z")  # the flow graph's input and output
PARITY_TOL = 1e-4  # the largest |onnxruntime − torch| the exported flow may show


@dataclass(frozen=True)
class PagePrior:
    """A sampler spec for ``runs.json`` and, for a flow, its ONNX graph."""

    spec: dict[str, Any]
    graph: bytes | None = None

    @property
    def fresh(self) -> bool:
        return self.spec["kind"] != "bank"

    def file(self, index: int) -> str | None:
        """Where the site serves the graph of run ``index``; None without one."""
        return FLOW_FILE.format(index=index) if self.graph is not None else None

    def to_json(self, index: int) -> dict[str, Any]:
        return {**self.spec, "file": self.file(index)} if self.graph is not None else self.spec


def bank(why: str) -> PagePrior:
    return PagePrior({"kind": "bank", "why": why})


def page_prior(model: Autoencoder, source: str = "own", temperature: float = 1.0) -> PagePrior:
    """How the page draws ``model.sample_z(n, temperature, source)`` (``source``: own, fitted
    or auto, as :func:`xae.diffprior.choice.choose` takes it; see the module's docstring); a
    bank, saying why, where the page cannot draw exactly that."""
    from xae.bottlenecks.base import Bottleneck
    from xae.diffprior.choice import choose

    if choose(model, source) == "fitted":
        steps = model.prior.fitted.config.sample_steps
        return bank(f"the fitted diffusion prior's sampler integrates its flow over {steps} "
                    "Heun steps, which is not exported for the page")
    if temperature != 1:
        return bank(f"the draws are at temperature {temperature}, which the page's samplers "
                    "do not scale")
    if getattr(model.bottleneck, "empty", False):
        return bank("the code is empty: every draw is z = 0")
    if model.discrete:
        how = "by its fitted autoregressive model" \
            if getattr(model.prior, "ar", None) is not None else "uniformly"
        return bank(f"the code is discrete: the prior draws code indices {how}, which the "
                    "quantizer, not exported for the page, maps to codes")
    if model.hierarchical:
        return bank("the code is a hierarchy: the prior draws the top group, then each group "
                    "below from p(z_l | z_<l) down the top-down path, which is not exported "
                    "for the page")
    if type(model.bottleneck).sample_prior is not Bottleneck.sample_prior:
        return bank(f"the {type(model.bottleneck).__name__} bottleneck draws its code its own "
                    "way, which the page does not know")
    prior = model.prior
    if prior.latent_dim != model.latent_dim:
        return bank(f"the prior is over {prior.latent_dim} of the code's {model.latent_dim} "
                    "dimensions")
    kind = type(prior)  # exact types: a subclass may sample otherwise
    if kind is StandardNormal:
        return PagePrior({"kind": "normal"})
    if kind is MixtureOfGaussians:
        with inference(model):
            weights = torch.softmax(prior.logits, -1)
            return _mixture(weights, prior.means, torch.exp(0.5 * prior.logvars))
    if kind is VampPrior:
        with inference(model):  # the components as the bank's draws see them: in eval mode
            q = prior.components()
            k = q.mean.shape[0]
            return _mixture(q.mean.new_full((k,), 1.0 / k), q.mean, q.std)
    if kind is FlowPrior:
        return _flow(model, prior)
    return bank(f"the page has no sampler for the {kind.__name__} prior")


def _mixture(weights: torch.Tensor, means: torch.Tensor, scales: torch.Tensor) -> PagePrior:
    return PagePrior({"kind": "mixture", "weights": weights.tolist(), "means": means.tolist(),
                      "scales": scales.tolist()})


def _flow(model: Autoencoder, prior: FlowPrior) -> PagePrior:
    """The flow's transform ε → z as an ONNX graph (opset, dynamic batch and exporter as
    :mod:`xae.export`), checked against torch by onnxruntime where it is installed."""
    from xae.export import Method, graph_bytes, require_onnx

    try:
        require_onnx()
    except XaeError as e:
        return bank(f"the flow's graph could not be exported: {e}")
    with inference(model):
        graph = graph_bytes(Method(prior, "transform").eval(), prior.latent_dim, FLOW_NAMES,
                            "the flow prior", PARITY_TOL)
    return PagePrior({"kind": "flow"}, graph)
