"""Return types: one dataclass per kind of result, never tuples of varying length."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class LatentGroup:
    """One group of latents, of a hierarchy (or the one group of a flat or spatial code).

    Attributes
    ----------
    name : the group's name, used in its rate term ("rate/<name>" when there are several).
    z : (B, d) the group's sample, or (K, B, d) when the bottleneck drew K per datum.
    posterior : q(z_g | x, z_<g) as a distribution object.
    prior : p(z_g | z_<g) as a distribution object computed at run time (by the top-down
        path of a hierarchy), or None for the model's own prior piece.
    """

    name: str
    z: torch.Tensor
    posterior: Any
    prior: Any | None = None


@dataclass
class BottleneckOutput:
    """What a bottleneck returns.

    Attributes
    ----------
    z : the latent code fed to the decoder, (B, D) (a spatial code travels as its map
        flattened position by position; a hierarchy as its groups side by side).
    posterior : q(z|x) as a distribution object (``mean``, ``logvar``, ``std``, ``sample()``,
        ``mode()``, ``log_prob()``, ``kl(other)``), or None for deterministic and discrete
        bottlenecks.
    indices : code indices for discrete bottlenecks, else None.
    aux : the bottleneck's own per-sample loss terms (B,) by name (e.g. VQ's ``commitment``),
        added to the objective; empty when it has none.
    groups : the latent groups of a hierarchy, top first; None for a single group.
    theta : the likelihood's parameters for z, where the bottleneck ran the decoder itself
        (a hierarchy whose decoder is its generative path, :mod:`xae.bottlenecks.hvae`), so
        the model does not decode z a second time; None otherwise.
    """

    z: torch.Tensor
    posterior: Any | None = None
    indices: torch.Tensor | None = None
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
    groups: list[LatentGroup] | None = None
    theta: torch.Tensor | None = None

    @property
    def aux_loss(self) -> torch.Tensor:
        """The sum of the auxiliary terms per sample (zeros when there are none)."""
        return sum(self.aux.values(), self.z.new_zeros(self.z.shape[0]))


@dataclass
class Term:
    """One named loss term.

    Attributes
    ----------
    value : (B,) per sample, in nats (or the units of the piece that made it).
    kind : ``distortion`` (enters the loss as is), ``rate`` (weighed by β) or ``aux``.
    weight : the term's own weight inside its kind (e.g. FactorVAE's γ on its TC estimate).
    per_dim : (B, d) the term split over latent dimensions, where it splits.
    clipped : the value the loss uses in place of ``value`` where the regularizer says so
        (free bits' clip; the annealed capacity's γ·|KL − C|); None: ``value``.
    note : how the value was computed (e.g. ``KL, analytic``), shown by ``xae eval``.
    """

    value: torch.Tensor
    kind: str
    weight: float = 1.0
    per_dim: torch.Tensor | None = None
    clipped: torch.Tensor | None = None
    note: str = ""

    @property
    def for_loss(self) -> torch.Tensor:
        return self.value if self.clipped is None else self.clipped


@dataclass
class LossOutput:
    """The result of ``model(x, beta)``: the scalar loss, its named per-sample terms, and
    the losses of the model's other optimizers (in the spirit of scvi-tools' LossOutput).

    ``terms`` holds every term by name (``distortion``; ``rate`` or one rate term per latent
    group or part; the bottleneck's auxiliary terms); ``losses`` holds a scalar for each
    other optimizer that steps this time (e.g. ``discriminator``); ``metrics`` per-sample
    extras (``ess``, the effective sample size of a K-sample objective). ``distortion``,
    ``rate`` and ``aux_loss`` are the sums over the terms of each kind (``rate`` with each
    term's weight, unclipped); ``elbo`` is −(distortion + rate), a lower bound on log p(x) only
    for a proper likelihood and a KL rate. With a K-sample objective the terms are averages
    over the K samples and ``z`` and ``x_mean`` belong to the first sample.
    """

    loss: torch.Tensor
    terms: dict[str, Term]
    z: torch.Tensor
    posterior: Any | None
    x_mean: torch.Tensor
    beta: float
    indices: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    groups: list[LatentGroup] | None = None

    def _sum(self, kind: str, weighted: bool = False) -> torch.Tensor:
        parts = [t.value * (t.weight if weighted else 1.0) for t in self.terms.values()
                 if t.kind == kind]
        return sum(parts[1:], parts[0]) if parts else self.loss.new_zeros(self.z.shape[0])

    @property
    def distortion(self) -> torch.Tensor:
        return self._sum("distortion")

    @property
    def rate(self) -> torch.Tensor:
        return self._sum("rate", weighted=True)

    @property
    def aux_loss(self) -> torch.Tensor:
        return self._sum("aux")

    @property
    def rate_per_dim(self) -> torch.Tensor | None:
        """(B, D): the rate of each latent dimension, where every rate term splits over the
        code's dimensions (their per-dimension parts side by side, each of weight 1), else
        None."""
        rates = [t for t in self.terms.values() if t.kind == "rate"]
        if not rates or any(t.per_dim is None or t.weight != 1.0 for t in rates):
            return None
        parts = [t.per_dim for t in rates]
        per_dim = torch.cat(parts, -1)
        return per_dim if per_dim.shape[-1] == self.z.shape[-1] else None

    @property
    def ess(self) -> torch.Tensor | None:
        return self.metrics.get("ess")

    @property
    def elbo(self) -> torch.Tensor:
        return -(self.distortion + self.rate)


AEOutput = LossOutput  # the name of the first API


@dataclass
class EvalResult:
    """Test-set averages (nats per sample unless the name says otherwise), the mean rate of
    each latent dimension where the regularizer defines one, diagnostic warnings (e.g.
    posterior collapse) and notes on how terms were computed (e.g. ``KL, analytic``)."""

    metrics: dict[str, float] = field(default_factory=dict)
    rate_per_dim: list[float] | None = None
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # how a term was computed, by name

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]
