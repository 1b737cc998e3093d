"""Gumbel-softmax quantization (Jang et al. 2017, "Categorical Reparameterization with
Gumbel-Softmax", eq. 1–2; Maddison et al. 2017, the Concrete distribution), the bottleneck of
DALL-E's discrete VAE (Ramesh et al. 2021, sec. 2.1).

The bottleneck's map gives d features at each of P = D / d positions and one layer shared by
all positions turns them into K logits; each position's code is a relaxed one-hot
y ∈ Δ^{K−1} times a learned codebook C (K, d), z = y·C, so D = P·d.

Training: y = softmax((ℓ + g)/τ), g_k ~ Gumbel(0, 1) i.i.d., τ = ``temperature`` evaluated at
the training step (its final ``value`` when no step is given). As τ → 0, y tends to the one-hot
of argmax_k (ℓ_k + g_k), which is distributed as softmax(ℓ) (the Gumbel-max trick). With
``hard``, the forward value is that one-hot exactly, and the gradient is the relaxed sample's
(straight-through: y_hard + (y − sg(y))). Evaluation: y = one_hot(argmax_k (ℓ_k + g_k)), an
exact sample of q (the τ → 0 limit), so that the evaluated distortion + KL is an unbiased
estimate of the negative ELBO of the hard-code model that prior samples decode;
``model.latent_mean`` (reconstructions) takes the most likely code, argmax ℓ, instead.

The posterior q(k|x) = softmax(ℓ) is returned as logits, so the bottleneck attaches a
:class:`xae.distributions.Categorical`; its KL to the uniform code prior, log K − H(q), is the
regularizer's rate, not part of this quantizer's aux loss (which is zero).

The codebook starts at C ~ N(0, 1/d) entrywise, so each code has expected squared norm 1, the
scale of the other quantizers' codes (FSQ and LFQ codes lie in [−1, 1]^d).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from xae import checks as C
from xae import schedules
from xae.bottlenecks.quantizer import Quantized, Quantizer
from xae.errors import XaeError, positive_int
from xae.nets.common import init_linear
from xae.settings import ScheduleConfig

SECTION = "model.gumbel."
KEY = SECTION + "temperature"
TEMPERATURE = ScheduleConfig(kind="cosine", start=1.0, value=1.0 / 16, warmup=2000)
"""The default τ: a cosine ramp from 1 to 1/16 over 2000 steps."""


def _schedule_values(cfg: ScheduleConfig) -> list[object]:
    """The values a schedule can take (all must be > 0 for a temperature)."""
    if cfg.kind == "constant":
        return [cfg.value]
    if cfg.kind == "staged":
        pairs = [(int(s), v) for s, v in cfg.stages]
        used_start = min(s for s, _ in pairs) > 0  # start holds before the first stage
        return [v for _, v in pairs] + ([cfg.start] if used_start else [])
    return [cfg.start, cfg.value]  # the ramps move between start and value


def _not_positive(temperature: ScheduleConfig) -> str | None:
    """The problem with a (checked) schedule that takes a value that is not > 0, or None."""
    bad = [v for v in _schedule_values(temperature)
           if not (isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v) and v > 0)]
    return (f"must stay positive (τ divides the logits), but takes the value {bad[0]!r}; set "
            f"its start and value > 0") if bad else None


POSITIVE_SCHEDULE = C.Check("a schedule whose values stay > 0", _not_positive)


def check_temperature(temperature: object) -> ScheduleConfig:
    """A copy of a temperature schedule with positive values; a number means a constant τ."""
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        temperature = ScheduleConfig(kind="constant", value=float(temperature))
    elif isinstance(temperature, Mapping):
        try:
            temperature = ScheduleConfig(**temperature)
        except TypeError as e:
            raise XaeError(f"{KEY}: {e}; its keys are those of a schedule "
                           f"(kind, value, start, warmup, period, ratio, stages)") from None
    if not isinstance(temperature, ScheduleConfig):
        raise XaeError(f"{KEY} must be a schedule (or a positive number), got {temperature!r}")
    schedules.check(temperature, KEY)
    problem = POSITIVE_SCHEDULE(temperature)
    if problem:
        raise XaeError(f"{KEY} {problem} (the schedule {temperature})")
    return copy.deepcopy(temperature)


class GumbelSoftmax(Quantizer):
    """P positions of K logits each, relaxed to one-hot samples mixing a learned codebook.

    Parameters
    ----------
    codebook_size : K (``model.gumbel.codebook_size``), at least 2.
    code_dim : d, the size of a code (``model.gumbel.code_dim``); ``latent_dim`` must be a
        multiple of d.
    temperature : τ as a :class:`ScheduleConfig` over training steps
        (``model.gumbel.temperature``); a number means a constant τ.
    hard : straight-through one-hot samples in training (``model.gumbel.hard``).
    """

    aux_name = ""  # no auxiliary loss

    has_posterior = True
    KEYS = {"codebook_size": ("K, codes per position", C.between(2, C.INT_MAX)),
            "code_dim": ("d, values per code", C.POSITIVE),
            "temperature": ("τ over the training steps", POSITIVE_SCHEDULE),
            "hard": ("straight-through one-hot samples", None)}

    def __init__(self, in_features: int | None, latent_dim: int, *, codebook_size: int = 1024,
                 code_dim: int = 16, temperature: ScheduleConfig = TEMPERATURE,
                 hard: bool = False) -> None:
        k = positive_int(codebook_size, f"{SECTION}codebook_size")
        if k < 2:
            raise XaeError(f"{SECTION}codebook_size must be at least 2 (one code carries no "
                           f"information)")
        positive_int(code_dim, f"{SECTION}code_dim")
        super().__init__(in_features, latent_dim, code_dim)
        if not isinstance(hard, bool):
            raise XaeError(f"{SECTION}hard must be true or false, got {hard!r}")
        self.codebook_size, self.hard = k, hard
        self.temperature = check_temperature(temperature)
        self.codebook = nn.Parameter(torch.randn(k, self.code_dim) / math.sqrt(self.code_dim))
        # logits per position from its d features, shared by all positions (a 1×1 conv), so
        # the map from the encoder is F → P·d, not F → P·K
        self.to_logits = init_linear(nn.Linear(self.code_dim, k), None)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """The encoder's features (B, F) → K logits at each of the B·P positions (B·P, K)."""
        return self.to_logits(super().project(h))

    def temperature_at(self, step: int | None) -> float:
        """τ at a training step; the schedule's final value when ``step`` is None."""
        if step is None:
            return float(self.temperature.value)
        return schedules.value_at(self.temperature, step)

    def one_hot(self, logits: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """y (N, K): a relaxed (or, with ``hard``, straight-through) one-hot Gumbel-softmax
        sample in training mode; an exact one-hot sample of softmax(ℓ) in evaluation mode."""
        tiny = torch.finfo(logits.dtype).tiny
        gumbel = -torch.empty_like(logits).exponential_().clamp_min(tiny).log()
        if not self.training:  # the Gumbel-max trick: argmax(ℓ + g) ~ softmax(ℓ)
            return F.one_hot((logits + gumbel).argmax(-1), self.codebook_size).to(logits.dtype)
        y = torch.softmax((logits + gumbel) / self.temperature_at(step), -1)
        if not self.hard:
            return y
        y_hard = F.one_hot(y.argmax(-1), self.codebook_size).to(y.dtype)
        return y_hard + (y - y.detach())  # forward exactly one-hot; gradient of y

    def quantize(self, z: torch.Tensor, step: int | None = None) -> Quantized:
        if z.dim() != 2 or z.shape[1] != self.codebook_size:
            raise XaeError(f"GumbelSoftmax quantizes (N, {self.codebook_size}) logits, got "
                           f"shape {tuple(z.shape)}")
        y = self.one_hot(z, step)
        return Quantized(y @ self.codebook, y.detach().argmax(-1), z.new_zeros(z.shape[0]),
                         logits=z)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(...) indices → (..., d) codebook rows."""
        return self.codebook[indices.long()]

    def extra_repr(self) -> str:
        return (f"codebook_size={self.codebook_size}, code_dim={self.code_dim}, "
                f"positions={self.positions}, hard={self.hard}, "
                f"temperature={self.temperature}")
