"""Variance of the reparameterization and score-function gradient estimators of one expectation.

For a model with a diagonal Gaussian q_φ(z|x) = N(μ, diag σ²) and a batch x_1..x_B, the
estimated quantity is the gradient, with respect to the encoder parameters φ (the encoder
network and the bottleneck's projection to μ and log σ²), of

    L(φ) = (1/B) Σ_b E_{q_φ(z|x_b)}[f_b(z)],    f_b(z) = log p_θ(x_b|z),

the expected reconstruction log-likelihood: the part of the ELBO whose gradient must be
estimated by sampling (the KL to the N(0, I) prior has a closed form and is left out). One
estimate draws one z_b = μ_b + σ_b ⊙ ε_b per datum, ε_b ~ N(0, I), and is

(a) reparameterization (Kingma & Welling 2014, eq. 10; Mohamed et al. 2020, sec. 5):
    ∇_φ (1/B) Σ_b f_b(μ_b + σ_b ⊙ ε_b);
(b) score function, REINFORCE (Williams 1992; Mohamed et al. 2020, sec. 4):
    (1/B) Σ_b f_b(z_b) ∇_φ log q_φ(z_b|x_b);
(c) score function with a baseline: (1/B) Σ_b (f_b(z_b) − c_b) ∇_φ log q_φ(z_b|x_b), with c_b
    the mean of f_b over M separate draws. c_b does not depend on z_b and E_q[∇_φ log q] = 0,
    so (c) stays unbiased. Drawing c_b apart from the S estimates (rather than a leave-one-out
    mean over them) also keeps the S estimates independent, so their sample variance and
    standard errors are those of independent draws.

All three are vector-Jacobian products through u = (μ, log σ²): reparameterization uses the
cotangents ∂/∂μ = ∇_z f, ∂/∂log σ² = ½ σ ε ⊙ ∇_z f; the score function ∂/∂μ = f ε / σ,
∂/∂log σ² = ½ f (ε² − 1). The encoder runs once; each estimate is one backward pass from u.
From S estimates per estimator this reports the per-parameter variance (mean over the
parameters, and per parameter tensor), the norm of the mean gradient, the signal-to-noise ratio
|E g| / std g averaged over parameters (Rainforth et al. 2018), and whether the estimators agree
in mean within their standard errors.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from xae.check.verdict import Verdict
from xae.config import Config, apply
from xae.distributions import DiagonalGaussian
from xae.errors import XaeError
from xae.fileio import write_json
from xae.model import Autoencoder
from xae.presets import preset
from xae.runfiles import GRADIENTS_JSON, GRADIENTS_PNG
from xae.viz import new_figure, save_figure

ESTIMATORS = ("reparameterization", "score", "score+baseline")
REFERENCE = "reparameterization"
# the means agree when |difference| ≤ 3 standard errors for ≥ 90% of the parameters (about
# 99.7% expected for unbiased estimators; the margin allows for heavy-tailed score-function
# estimates and for few parameters, while a bias in many parameters still fails)
AGREE_FRACTION = 0.9
# the variance ordering the check is there to show: reparameterization below the score
# function with a baseline, below the plain score function (each ratio of mean variances held
# to 1). It is what these estimators give for a VAE's smooth log p(x|z), not a theorem for
# every f (Mohamed et al. 2020), so a FAIL here is a finding to look into
VARIANCE_RATIO = 1.0
OBJECTIVE = "E_q(z|x)[log p(x|z)], mean over the batch; gradient w.r.t. encoder + bottleneck"
# The model `xae check gradients` trains when it is given no run: the vae preset with one
# hidden layer of 64 on the bundled digits for 300 steps, about 1 s on one CPU thread; the
# verdicts pass with margin on it (measured over seeds 0–3: within 3 s.e. ≥ 99%, variance
# ratios about 19 and 0.006 against their bound 1).
TRAINING: dict[str, Any] = {
    "data.name": "digits", "model.mlp.hidden": [64], "train.steps": 300, "train.progress": False,
    "train.figures": False, "train.eval_every": 0,
}


@dataclass
class EstimatorStats:
    """Summary of S independent estimates of one estimator (per-parameter statistics).

    ``mean_variance``: the per-parameter variance of one estimate, averaged over parameters;
    ``per_tensor``: the same average within each parameter tensor; ``grad_norm``: ‖E g‖ from
    the S estimates with the noise's share taken out (√max(0, ‖ḡ‖² − Σ_p Var g_p / S)), so
    that every unbiased estimator should give about the same figure; ``snr``: |E g_p| / std g_p
    averaged over the parameters with nonzero variance, the signal E g_p taken from the
    reparameterization mean (the most precise estimate of the common expectation) so that the
    estimators differ only in their noise.
    """

    mean_variance: float
    per_tensor: dict[str, float]
    grad_norm: float
    snr: float


@dataclass
class GradientCheck:
    """Gradient-estimator variances for one model and batch; ``agreement[name]`` compares an
    estimator's mean with the reparameterization mean: the shares of parameters (with nonzero
    variance) whose difference is within 2 and 3 standard errors (about 95% and 99.7% for
    unbiased estimators), the root mean square z-score, and ``agree`` (≥ 90% within 3)."""

    samples: int
    batch: int
    baseline_draws: int
    parameters: int
    objective: str
    estimators: dict[str, EstimatorStats]
    agreement: dict[str, dict[str, float | bool]]

    @property
    def agree(self) -> bool:
        return all(bool(a["agree"]) for a in self.agreement.values())

    def summary(self) -> dict[str, Any]:
        """The figures of the check, for a table."""
        rows: dict[str, Any] = {"samples": self.samples, "batch": self.batch,
                                "encoder_parameters": self.parameters}
        for name, s in self.estimators.items():
            rows[f"{name}.mean_variance"] = s.mean_variance
            rows[f"{name}.grad_norm"] = s.grad_norm
            rows[f"{name}.snr"] = s.snr
        ref = self.estimators[REFERENCE].mean_variance
        for name, a in self.agreement.items():
            rows[f"{name}.variance_ratio_to_reparam"] = self.estimators[name].mean_variance / ref
            rows[f"{name}.within_2se_of_reparam"] = a["within_2se"]
            rows[f"{name}.within_3se_of_reparam"] = a["within_3se"]
        rows["means_agree"] = "yes" if self.agree else "NO"
        return rows

    def verdicts(self) -> list[Verdict]:
        """The means agree (:data:`AGREE_FRACTION`) and the variances are ordered
        (:data:`VARIANCE_RATIO`)."""
        var = {name: s.mean_variance for name, s in self.estimators.items()}
        out = [Verdict(f"{name}: share within 3 s.e. of the {REFERENCE} mean",
                       float(a["within_3se"]), AGREE_FRACTION, at_least=True)
               for name, a in self.agreement.items()]

        def ratio(a: str, b: str) -> float:  # no variance at all: undefined, so it fails
            return var[a] / var[b] if var[b] > 0 else math.nan

        return out + [
            Verdict(f"variance ratio score+baseline / {REFERENCE}",
                    ratio("score+baseline", REFERENCE), VARIANCE_RATIO, at_least=True),
            Verdict("variance ratio score+baseline / score", ratio("score+baseline", "score"),
                    VARIANCE_RATIO)]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "verdicts": [v.to_dict() for v in self.verdicts()],
                **dataclasses.asdict(self)}


def encoder_parameters(model: Autoencoder) -> list[tuple[str, torch.nn.Parameter]]:
    """φ: the trainable parameters of the encoder network and of the bottleneck."""
    named = [(f"encoder.{n}", p) for n, p in model.encoder.named_parameters()]
    named += [(f"bottleneck.{n}", p) for n, p in model.bottleneck.named_parameters()]
    return [(n, p) for n, p in named if p.requires_grad]


def _check(model: Autoencoder, x: torch.Tensor, samples: int, baseline_draws: int) -> None:
    if not model.stochastic:
        raise XaeError("the gradient check needs a stochastic bottleneck q(z|x) to sample from; "
                       "this model is deterministic. Check a VAE-type run "
                       "(model.bottleneck=gaussian)")
    if samples < 2 or baseline_draws < 1:
        raise XaeError(f"the gradient check needs at least 2 samples and 1 baseline draw, got "
                       f"{samples} and {baseline_draws}")
    if x.shape[0] < 1:
        raise XaeError("the gradient check needs a batch of at least one datum")


class _Moments:
    """Running sum and sum of squares of flattened gradients, in float64."""

    def __init__(self, params: list[torch.nn.Parameter]) -> None:
        n = sum(p.numel() for p in params)
        self.params, self.n = params, 0
        self.sum = torch.zeros(n, dtype=torch.float64, device=params[0].device)
        self.sumsq = torch.zeros_like(self.sum)

    def add(self, grads: tuple[torch.Tensor | None, ...]) -> None:
        g = torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                       for gi, p in zip(grads, self.params)]).double()
        self.sum += g
        self.sumsq += g * g
        self.n += 1

    def mean_var(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.sum / self.n
        var = ((self.sumsq - self.n * mean * mean) / (self.n - 1)).clamp_min(0.0)
        return mean, var


def _cotangent(name: str, model: Autoencoder, x: torch.Tensor, q: DiagonalGaussian,
              eps: torch.Tensor, baseline: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimator ``name``'s cotangents (∂/∂μ, ∂/∂log σ²), each (S, B, D), for draws ``eps``."""
    mean, std = q.mean.detach(), q.std.detach()
    z = (mean + std * eps).requires_grad_(name == REFERENCE)
    if name == REFERENCE:
        (grad_z,) = torch.autograd.grad(f_values(model, x, z).sum(), z)
        return grad_z, 0.5 * std * eps * grad_z
    with torch.no_grad():
        f = f_values(model, x, z).unsqueeze(-1)
    if name == "score+baseline":
        f = f - baseline.unsqueeze(-1)
    return f * eps / std, f * 0.5 * (eps * eps - 1.0)


def f_values(model: Autoencoder, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """f_b(z) = log p(x_b|z) for draws ``z`` (S, B, D): (S, B)."""
    return model.log_px(x, z)[0]


def _stats(moments: _Moments, signal: torch.Tensor,
           names: list[tuple[str, int]]) -> EstimatorStats:
    mean, var = moments.mean_var()
    per_tensor, start = {}, 0
    for name, n in names:
        per_tensor[name] = float(var[start:start + n].mean())
        start += n
    norm2 = float(mean.pow(2).sum() - var.sum() / moments.n)
    live = var > 0
    snr = float((signal[live].abs() / var[live].sqrt()).mean()) if live.any() else 0.0
    return EstimatorStats(float(var.mean()), per_tensor, max(norm2, 0.0) ** 0.5, snr)


def _agreement(a: _Moments, ref: _Moments) -> dict[str, float | bool]:
    """z-scores of the mean difference between two independent sets of estimates: the share of
    parameters within 2 and within 3 standard errors, their rms, and the verdict."""
    (ma, va), (mr, vr) = a.mean_var(), ref.mean_var()
    se = (va / a.n + vr / ref.n).sqrt()
    live = se > 0
    z = ((ma - mr)[live] / se[live]).abs()
    if not live.any():
        return {"within_2se": 1.0, "within_3se": 1.0, "rms_z": 0.0, "agree": True}
    within = {f"within_{k}se": float((z <= k).double().mean()) for k in (2, 3)}
    return {**within, "rms_z": float(z.pow(2).mean().sqrt()),
            "agree": within["within_3se"] >= AGREE_FRACTION}


def _run(model: Autoencoder, x: torch.Tensor, params: list[torch.nn.Parameter], samples: int,
         baseline_draws: int, gen: torch.Generator) -> dict[str, _Moments]:
    """Accumulate S estimates of each estimator (independent draws per estimator)."""
    q = model.encode(x).posterior
    if not isinstance(q, DiagonalGaussian):
        raise XaeError(f"the gradient check needs a diagonal Gaussian q(z|x), this bottleneck "
                       f"gives {type(q).__name__}")
    shape = (samples, *q.mean.shape)
    draw: Callable[[tuple[int, ...]], torch.Tensor] = lambda s: torch.randn(
        s, generator=gen, device=q.mean.device, dtype=q.mean.dtype)
    with torch.no_grad():
        baseline = f_values(model, x, q.mean + q.std * draw((baseline_draws, *q.mean.shape)))
    cot = {name: _cotangent(name, model, x, q, draw(shape), baseline.mean(0))
           for name in ESTIMATORS}
    moments = {name: _Moments(params) for name in ESTIMATORS}
    b = x.shape[0]
    for name, (d_mean, d_logvar) in cot.items():
        for s in range(samples):
            grads = torch.autograd.grad((q.mean, q.logvar), params,
                                        grad_outputs=(d_mean[s] / b, d_logvar[s] / b),
                                        retain_graph=True, allow_unused=True)
            moments[name].add(grads)
    return moments


def gradient_check(model: Autoencoder, x: torch.Tensor, samples: int = 200,
                   baseline_draws: int | None = None, seed: int = 0) -> GradientCheck:
    """Variance of the three gradient estimators of ∇_φ E_q[log p(x|z)] on the batch ``x``.

    Parameters
    ----------
    model : Autoencoder
        A model with a diagonal Gaussian bottleneck (a VAE-type run), on any device; it is
        put in eval mode for the check and restored after.
    x : torch.Tensor
        The batch, on the model's device; the estimators estimate the batch mean.
    samples : int
        S, the number of independent single-draw estimates per estimator.
    baseline_draws : int, optional
        M, the draws behind the baseline c_b (default: ``samples``).
    seed : int
        Seeds every draw (a generator of its own; the global random state is not touched).
    """
    baseline_draws = samples if baseline_draws is None else baseline_draws
    _check(model, x, samples, baseline_draws)
    named = encoder_parameters(model)
    if not named:
        raise XaeError("the model's encoder has no trainable parameters to differentiate")
    params = [p for _, p in named]
    gen = torch.Generator(device=params[0].device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        moments = _run(model, x, params, samples, baseline_draws, gen)
    finally:
        model.train(was_training)
    sizes = [(n, p.numel()) for n, p in named]
    signal = moments[REFERENCE].mean_var()[0]
    stats = {name: _stats(m, signal, sizes) for name, m in moments.items()}
    agreement = {name: _agreement(moments[name], moments[REFERENCE])
                 for name in ESTIMATORS if name != REFERENCE}
    return GradientCheck(samples, x.shape[0], baseline_draws, sum(p.numel() for p in params),
                         OBJECTIVE, stats, agreement)


def figure(result: GradientCheck, path: str | Path) -> Path:
    """Per-parameter variance of one estimate per parameter tensor and estimator (log scale),
    and the signal-to-noise ratio of each estimator."""
    names = list(result.estimators)
    tensors = list(result.estimators[names[0]].per_tensor)
    fig = new_figure(max(7.0, 3.5 + 0.9 * len(tensors)), 4.4)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[max(2, len(tensors)), 1.3])
    width, pos = 0.8 / len(names), np.arange(len(tensors) + 1)
    for i, name in enumerate(names):
        s = result.estimators[name]
        ax1.bar(pos + (i - (len(names) - 1) / 2) * width,
                [s.per_tensor[t] for t in tensors] + [s.mean_variance], width,
                color=f"C{i}", label=name)
    ax1.set_yscale("log")
    ax1.set_xticks(pos, tensors + ["all"], fontsize=7,
                   rotation=20, ha="right")
    ax1.set(ylabel="variance of one estimate (mean over parameters)",
            title=f"Gradient variance (S = {result.samples}, batch {result.batch})")
    ax1.legend(fontsize=8)
    ax2.bar(range(len(names)), [result.estimators[n].snr for n in names],
            color=[f"C{i}" for i in range(len(names))])
    ax2.set_yscale("log")
    ax2.set_xticks(range(len(names)), names, fontsize=7, rotation=20, ha="right")
    ax2.set(ylabel="mean |E g| / std g", title="Signal-to-noise")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"∇φ E_q(z|x)[log p(x|z)], encoder parameters; means agree within 3 s.e.: "
                 f"{'yes' if result.agree else 'NO'}", fontsize=10)
    return save_figure(fig, path)


def check_config(seed: int = 0) -> Config:
    """The vae preset with the check's training (:data:`TRAINING`), data and weights seeded
    by ``seed``."""
    return apply(preset("vae"), {**TRAINING, "data.seed": seed, "train.seed": seed})


def write(result: GradientCheck, out_dir: str | Path) -> list[Path]:
    """Write ``gradients.json`` and ``gradients.png`` into ``out_dir``; return the paths."""
    out = Path(out_dir)
    write_json(out / GRADIENTS_JSON, result.to_dict())
    return [out / GRADIENTS_JSON, figure(result, out / GRADIENTS_PNG)]

