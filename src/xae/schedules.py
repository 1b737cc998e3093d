"""β (and other weight) schedules: pure functions ``step -> value``.

The same schedules serve β and the learning-rate multiplier (``train.lr_schedule``).
Kinds: constant; linear warm-up (Bowman et al. 2016); sigmoid (logistic) annealing; cosine;
cyclical
annealing (Fu et al. 2019, eq. 4: within each period, a linear ramp over the first ``ratio``
of the period, then the value held); staged (piecewise constant from ``[step, value]`` pairs).
"""
from __future__ import annotations

import math
from typing import Callable

from xae.settings import ScheduleConfig
from xae.errors import XaeError


def constant(cfg: ScheduleConfig, step: int) -> float:
    return float(cfg.value)


def linear(cfg: ScheduleConfig, step: int) -> float:
    if cfg.warmup <= 0:
        return float(cfg.value)
    t = min(max(step / cfg.warmup, 0.0), 1.0)
    return cfg.start + (cfg.value - cfg.start) * t


def sigmoid(cfg: ScheduleConfig, step: int) -> float:
    """Logistic ramp centred at ``warmup/2`` and reaching 99.3% of the way at ``warmup``."""
    if cfg.warmup <= 0:
        return float(cfg.value)
    s = 1.0 / (1.0 + math.exp(-10.0 * (step / cfg.warmup - 0.5)))
    return cfg.start + (cfg.value - cfg.start) * s


def cosine(cfg: ScheduleConfig, step: int) -> float:
    """Half-cosine ramp from ``start`` to ``value`` over ``warmup`` steps (Loshchilov & Hutter
    2017 use it to decay learning rates: start 1, value 0.01)."""
    if cfg.warmup <= 0:
        return float(cfg.value)
    t = min(max(step / cfg.warmup, 0.0), 1.0)
    return cfg.start + (cfg.value - cfg.start) * 0.5 * (1.0 - math.cos(math.pi * t))


def cyclical(cfg: ScheduleConfig, step: int) -> float:
    """Fu et al. (2019): τ = (step mod period)/period; ramp while τ ≤ ratio, then hold."""
    tau = (step % cfg.period) / cfg.period
    t = min(tau / cfg.ratio, 1.0)
    return cfg.start + (cfg.value - cfg.start) * t


def staged(cfg: ScheduleConfig, step: int) -> float:
    """Value of the last stage whose start step is ≤ ``step`` (``start`` before the first)."""
    out = cfg.start
    for at, value in sorted((int(s), float(v)) for s, v in cfg.stages):
        if step >= at:
            out = value
    return out


SCHEDULES: dict[str, Callable[[ScheduleConfig, int], float]] = {
    "constant": constant, "linear": linear, "sigmoid": sigmoid, "cosine": cosine,
    "cyclical": cyclical, "staged": staged,
}


def check(cfg: ScheduleConfig, name: str = "beta") -> None:
    """Raise :class:`XaeError` for a schedule that cannot be evaluated."""
    if cfg.kind not in SCHEDULES:
        raise XaeError(f"{name}.kind '{cfg.kind}' is unknown; use one of {', '.join(SCHEDULES)}")
    if cfg.kind == "cyclical" and (cfg.period <= 0 or not 0 < cfg.ratio <= 1):
        raise XaeError(f"{name}: a cyclical schedule needs period > 0 and 0 < ratio <= 1")
    if cfg.kind == "staged":
        try:
            pairs = [(int(s), float(v)) for s, v in cfg.stages]
        except (TypeError, ValueError):
            pairs = []
        if not pairs:
            raise XaeError(f"{name}: a staged schedule needs stages like [[0, 0.0], [1000, 1.0]]")


def value_at(cfg: ScheduleConfig, step: int) -> float:
    """The schedule's value at ``step`` (a pure function of the config and the step)."""
    check(cfg)
    return SCHEDULES[cfg.kind](cfg, step)
