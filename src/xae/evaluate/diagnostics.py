"""Rate, distortion and their per-sample and per-dimension parts; active units; collapse; holes.

Rate is the regularizer's value per sample (the KL for VAEs) and distortion −log p(x|z) with
one z ~ q(z|x) per datum (Alemi et al. 2018 draw the rate–distortion plane from these two).
A latent dimension j is *active* when Var_x(E_q[z_j|x]) > 0.01 (Burda et al. 2016, sec. 5.2);
below the top of a hierarchy, the test reads the posterior mean's departure from its
conditional prior (:func:`departure`).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import torch

from xae.distributions import DiagonalGaussian
from xae.evaluate.codes import code_metrics
from xae.evaluate.common import batches, paired_batches, progress_bar, seeded
from xae.evaluate.holes import Holes, holes
from xae.model import Autoencoder, inference
from xae.outputs import EvalResult, LatentGroup
from xae.tokens import PAD

log = logging.getLogger(__name__)
ACTIVE_VARIANCE = 0.01   # Burda et al. (2016): Var_x E_q[z_j|x] above this is an active unit
COLLAPSE_RATE = 0.1      # nats per sample: below this the code carries almost no information


@dataclass
class RateDistortion:
    """Per-sample terms over a data set (nats): distortion (N,), rate (N,), rate_per_dim (N, D)
    where the regularizer defines one, the latent means (N, D), one code z ~ q(z|x) per datum
    (N, D), the posterior (over all N) or None, the mean loss at the given β, and the
    effective sample size of the importance weights (N,) for a K-sample objective, and the
    index grids (N, P[, S]) of a discrete bottleneck."""

    distortion: torch.Tensor
    rate: torch.Tensor
    rate_per_dim: torch.Tensor | None
    means: torch.Tensor
    codes: torch.Tensor
    posterior: DiagonalGaussian | None
    loss: float
    ess: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # every named term (N,)
    notes: dict[str, str] = field(default_factory=dict)  # how each term was computed
    groups: dict[str, int] = field(default_factory=dict)  # latent groups' sizes, top first
    departures: torch.Tensor | None = None  # a hierarchy's (N, D): see :func:`departure`


def departure(g: LatentGroup) -> torch.Tensor:
    """What Burda's activity test reads for one latent group: the posterior mean, and below
    the top its departure from the conditional prior's mean in units of that prior's spread,
    (μ_q − μ_p) / σ_p. A unit of a lower group whose posterior only follows its prior (q = p,
    no KL) varies with the groups above but carries nothing of its own, and is not active."""
    q, p = g.posterior, g.prior
    return q.mean if p is None else (q.mean - p.mean) / p.std


def rate_distortion(model: Autoencoder, x: torch.Tensor, beta: float = 1.0,
                    batch_size: int = 1000, seed: int | None = 0,
                    progress: bool = False, c: torch.Tensor | None = None) -> RateDistortion:
    """Run the model over ``x`` (with its covariate levels ``c``, for a model that has a
    covariate) in batches and keep every per-sample term (with a progress bar on stderr when
    ``progress``)."""
    parts: dict[str, list] = {k: [] for k in ("d", "r", "rd", "mu", "z", "qm", "qv", "ess",
                                              "idx", "au")}
    loss, terms, notes, groups = 0.0, {}, {}, {}
    with inference(model) as device, seeded(seed, device), \
            progress_bar(x.shape[0], "rate/distortion", progress) as bar:
        for xb, cb in paired_batches(x, c, batch_size):
            out = model(xb, beta=beta, c=cb)
            bar.update(xb.shape[0])
            loss += out.loss.item() * xb.shape[0]
            parts["d"].append(out.distortion)
            parts["r"].append(out.rate)
            parts["rd"].append(out.rate_per_dim)
            parts["z"].append(out.z)
            groups = {g.name: g.z.shape[-1] for g in out.groups or []}
            for name, t in out.terms.items():
                terms.setdefault(name, []).append(t.value)
                if t.note:
                    notes[name] = t.note
            parts["ess"].append(out.ess)
            parts["idx"].append(out.indices)
            parts["mu"].append(out.posterior.mode() if model.stochastic else out.z)
            if out.groups:
                parts["au"].append(torch.cat([departure(g) for g in out.groups], -1))
            if model.stochastic:
                parts["qm"].append(out.posterior.mean)
                parts["qv"].append(out.posterior.logvar)
    cat = {k: torch.cat(v) if v and v[0] is not None else None for k, v in parts.items()}
    q = DiagonalGaussian(cat["qm"], cat["qv"]) if cat["qm"] is not None else None
    return RateDistortion(cat["d"], cat["r"], cat["rd"], cat["mu"], cat["z"], q,
                          loss / x.shape[0], cat["ess"], cat["idx"],
                          {name: torch.cat(v) for name, v in terms.items()}, notes, groups,
                          cat["au"])


def latent_channels(means: torch.Tensor, latent_shape: tuple[int, ...]) -> dict[str, float]:
    """For a spatial code (C, h, w): each channel's mean and standard deviation over the data
    and the positions (``latent_mean/cI``, ``latent_std/cI``), and the largest |value|
    (``latent_abs_max``), from the codes people look at (posterior means); the scale a
    diffusion model in the latent space must match (Rombach et al. 2022, sec. 3.1, scale their
    latents by one such std). Empty for other codes."""
    if len(latent_shape) != 3:
        return {}
    per_channel = means.double().reshape(-1, latent_shape[0])  # positions are channel-last
    out = {"latent_abs_max": float(per_channel.abs().max())}
    for i, (mu, sd) in enumerate(zip(per_channel.mean(0).tolist(),
                                     per_channel.std(0).tolist())):
        out[f"latent_mean/c{i}"], out[f"latent_std/c{i}"] = mu, sd
    return out


def active_units(means: torch.Tensor, threshold: float = ACTIVE_VARIANCE) -> torch.Tensor:
    """Boolean (D,): dimensions whose latent mean varies over the data by more than ``threshold``."""
    if means.shape[0] < 2:
        return torch.zeros(means.shape[1], dtype=torch.bool, device=means.device)
    return means.double().var(0) > threshold


def active_unit_counts(rd: RateDistortion) -> dict[str, int]:
    """``active_units`` over the whole code and, for a hierarchy, ``active_units/<group>``
    for each latent group (a hierarchy's units tested on their :func:`departure`)."""
    active = active_units(rd.means if rd.departures is None else rd.departures)
    counts = {"active_units": int(active.sum())}
    if rd.groups:
        for name, part in zip(rd.groups, active.split(list(rd.groups.values()))):
            counts[f"active_units/{name}"] = int(part.sum())
    return counts


def collapse_warnings(kl: float, active: int, dims: int) -> list[str]:
    """The posterior-collapse warnings for a stochastic model with mean KL(q(z|x) ‖ p(z)) = ``kl``
    nats per sample (the rate of a KL-regularized model), or none."""
    out = []
    if kl < COLLAPSE_RATE:
        out.append(f"posterior collapse: KL(q(z|x) ‖ p(z)) is {kl:.3g} nats per sample, so the "
                   "latent code carries almost no information about x (the decoder ignores "
                   "z). Try a KL warm-up (beta.kind=linear), free bits (model.kl.free_bits), a "
                   "smaller β or a weaker decoder")
    if active < dims / 2:
        what = "posterior collapse: no latent dimension is" if active == 0 else (
            f"partial posterior collapse: only {active} of {dims} latent dimensions are")
        out.append(f"{what} active (Var_x E[z_j|x] > {ACTIVE_VARIANCE}); the others match the "
                   "prior and carry nothing. Fewer latent dimensions, free bits or a KL "
                   "warm-up help")
    return out


def _kl(model: Autoencoder, rd: RateDistortion) -> float | None:
    """The mean KL(q(z|x) ‖ p(z)): the rate of a KL regularizer, else its one-sample Monte Carlo
    estimate at the codes of ``rd``; −log p(codes) under the code prior for a deterministic
    quantizer (its posterior is a point mass on one code per position: P·log K nats under
    the uniform prior, less under a fitted one). None for a deterministic continuous code (the
    plain AE, the deterministic WAE): a point mass has an infinite KL to a continuous prior,
    so such a model has no ELBO (see :func:`xae.evaluate.likelihood.unavailable`)."""
    if model.regularizer.is_kl:
        return float(rd.rate.double().mean())
    if getattr(model.bottleneck, "empty", False):  # no code: nothing to pay for
        return 0.0
    if rd.posterior is not None:
        with inference(model):
            log_q = rd.posterior.log_prob(rd.codes)
            log_p = torch.cat([model.prior.log_prob(z) for z in batches(rd.codes, 1000)])
        return float((log_q - log_p).double().mean())
    if rd.indices is not None:  # one code per position with certainty: KL = −log p(codes)
        return code_nll(model, rd.indices)
    return None


def code_nll(model: Autoencoder, indices: torch.Tensor) -> float:
    """The mean −log p(index grid) under the model's code prior, in nats."""
    with inference(model):
        log_p = torch.cat([model.prior.log_prob_indices(i) for i in batches(indices, 1000)])
    return float(-log_p.double().mean())


def holes_of(model: Autoencoder, rd: RateDistortion, seed: int | None = 0) -> Holes:
    """The hole measurements of :func:`evaluate` for ``rd`` = ``rate_distortion(…, seed)``:
    the one computation behind ``holes_mmd``, ``holes_fraction`` and the holes figure."""
    with inference(model) as device, seeded(None if seed is None else seed + 1, device):
        return holes(model, rd.posterior, rd.codes)


def evaluate(model: Autoencoder, x: torch.Tensor, beta: float = 1.0, batch_size: int = 1000,
             seed: int | None = 0, hole_metrics: bool = True,
             progress: bool = False, c: torch.Tensor | None = None) -> EvalResult:
    """Test-set averages of the objective's terms and the latent diagnostics.

    Metrics (nats per sample): loss (at ``beta``), distortion, rate, neg_elbo = distortion +
    KL (the negative ELBO; absent for a deterministic continuous code such as the plain AE,
    which has none: see :func:`_kl`), bits_per_dim of it (for sentences instead perplexity,
    exp(−ELBO / real tokens), tokens counting each word and the <eos>), active_units, ess (the mean
    effective sample size, for a K-sample objective such as IWAE), code_usage,
    code_perplexity and code_bits_per_image for discrete codes (see
    :mod:`xae.evaluate.codes`) and code_prior_bits_per_image, −log2 p(codes) under a fitted
    code prior, and with
    ``hole_metrics`` holes_mmd and holes_fraction (see :mod:`xae.evaluate.holes`). The result
    also carries the per-dimension rate and any posterior-collapse warnings, which are logged.
    Deterministic given ``seed``. ``progress`` shows a bar on stderr over the data. ``c``:
    the data's covariate levels, for a model that has a covariate.
    """
    rd = rate_distortion(model, x, beta, batch_size, seed, progress, c)
    m = {"loss": rd.loss, "distortion": float(rd.distortion.double().mean()),
         "rate": float(rd.rate.double().mean())}
    m.update({name: float(v.double().mean()) for name, v in rd.terms.items() if name not in m})
    kl = _kl(model, rd)
    if kl is not None and len(model.data_shape) == 3:  # the code's cost per pixel
        m["rate_bits_per_pixel"] = kl / (math.prod(model.data_shape[1:]) * math.log(2))
    m.update(latent_channels(rd.means, model.latent_shape))
    if kl is not None and model.likelihood.density:
        if not model.regularizer.is_kl:
            m["kl"] = kl
        m["neg_elbo"] = m["distortion"] + kl
        if getattr(model.likelihood, "needs_vocab", False):  # sentences: per real token
            m["perplexity"] = math.exp(m["neg_elbo"] * len(x) / float((x != PAD).sum()))
        else:
            m["bits_per_dim"] = m["neg_elbo"] / (math.prod(model.data_shape) * math.log(2))
    m.update(active_unit_counts(rd))
    if rd.ess is not None:
        m["ess"] = float(rd.ess.double().mean())
    if rd.indices is not None:
        m.update(code_metrics(rd.indices, model.bottleneck))
        if model.prior.ar is not None:  # a fitted code prior (xae prior fit)
            # a deterministic quantizer's KL is already this −log p(codes)
            nll = kl if not model.bottleneck.has_posterior else code_nll(model, rd.indices)
            m["code_prior_bits_per_image"] = nll / math.log(2)
    if hole_metrics and not getattr(model.bottleneck, "empty", False):  # no code, no holes
        h = holes_of(model, rd, seed)
        m["holes_mmd"] = h.mmd
        if h.fraction is not None:
            m["holes_fraction"] = h.fraction
    per_dim = rd.rate_per_dim.double().mean(0).tolist() if rd.rate_per_dim is not None else None
    warnings = collapse_warnings(kl, m["active_units"], model.latent_dim) \
        if rd.posterior is not None and kl is not None else []
    for w in warnings:
        log.warning(w)
    return EvalResult(metrics=m, rate_per_dim=per_dim, warnings=warnings, notes=rd.notes)
