"""β schedules, table-driven: each row is (config values, step, β computed by hand from the
formulas in xae.schedules' docstring)."""
from __future__ import annotations

import dataclasses
import math

import pytest

import xae
from xae import schedules
from xae.config import ScheduleConfig


def cfg(**kw) -> ScheduleConfig:
    return ScheduleConfig(**kw)


STAGES = [[0, 0.1], [10, 0.5], [20, 1.0]]

TABLE = [
    # constant: the value, whatever the step
    (dict(kind="constant", value=4.0), 0, 4.0),
    (dict(kind="constant", value=4.0), 123_456, 4.0),
    (dict(kind="constant", value=0.0, start=7.0), 10, 0.0),
    # linear: start + (value − start)·clamp(step / warmup, 0, 1)
    (dict(kind="linear", start=0.0, value=1.0, warmup=100), 0, 0.0),
    (dict(kind="linear", start=0.0, value=1.0, warmup=100), 25, 0.25),
    (dict(kind="linear", start=0.0, value=1.0, warmup=100), 50, 0.5),
    (dict(kind="linear", start=0.0, value=1.0, warmup=100), 100, 1.0),
    (dict(kind="linear", start=0.0, value=1.0, warmup=100), 500, 1.0),
    (dict(kind="linear", start=0.2, value=1.0, warmup=10), 5, 0.6),
    (dict(kind="linear", start=1.0, value=0.0, warmup=100), 50, 0.5),   # decreasing
    (dict(kind="linear", start=0.0, value=4.0, warmup=8), 2, 1.0),
    (dict(kind="linear", start=0.0, value=3.0, warmup=0), 0, 3.0),     # no warm-up
    # cosine: start + (value − start)·(1 − cos(π·clamp(step / warmup, 0, 1)))/2
    (dict(kind="cosine", start=1.0, value=0.0, warmup=100), 0, 1.0),
    (dict(kind="cosine", start=1.0, value=0.0, warmup=100), 50, 0.5),
    (dict(kind="cosine", start=1.0, value=0.0, warmup=100), 100, 0.0),
    (dict(kind="cosine", start=1.0, value=0.0, warmup=100), 300, 0.0),
    (dict(kind="cosine", start=0.0, value=2.0, warmup=90), 30, 0.5),  # (1 − cos 60°)/2 = 1/4
    (dict(kind="cosine", start=1.0, value=0.1, warmup=0), 5, 0.1),
    # cyclical: τ = (step mod period)/period; start + (value − start)·min(τ/ratio, 1)
    (dict(kind="cyclical", period=100, ratio=0.5, value=1.0), 0, 0.0),
    (dict(kind="cyclical", period=100, ratio=0.5, value=1.0), 25, 0.5),
    (dict(kind="cyclical", period=100, ratio=0.5, value=1.0), 50, 1.0),
    (dict(kind="cyclical", period=100, ratio=0.5, value=1.0), 75, 1.0),
    (dict(kind="cyclical", period=100, ratio=0.5, value=1.0), 99, 1.0),
    (dict(kind="cyclical", period=100, ratio=0.5, value=1.0), 100, 0.0),
    (dict(kind="cyclical", period=100, ratio=0.5, value=1.0), 125, 0.5),
    (dict(kind="cyclical", period=100, ratio=0.5, value=1.0), 1050, 1.0),
    (dict(kind="cyclical", period=40, ratio=0.25, value=1.0), 5, 0.5),
    (dict(kind="cyclical", period=10, ratio=1.0, value=2.0), 5, 1.0),
    (dict(kind="cyclical", period=10, ratio=1.0, value=2.0), 10, 0.0),
    (dict(kind="cyclical", period=100, ratio=0.5, start=0.5, value=1.5), 25, 1.0),
    # staged: the value of the last stage whose step ≤ step; start before the first stage
    (dict(kind="staged", stages=STAGES), 0, 0.1),
    (dict(kind="staged", stages=STAGES), 9, 0.1),
    (dict(kind="staged", stages=STAGES), 10, 0.5),
    (dict(kind="staged", stages=STAGES), 19, 0.5),
    (dict(kind="staged", stages=STAGES), 20, 1.0),
    (dict(kind="staged", stages=STAGES), 10_000, 1.0),
    (dict(kind="staged", stages=[[20, 1.0], [0, 0.1], [10, 0.5]]), 15, 0.5),  # unsorted
    (dict(kind="staged", stages=[[5, 2.0]], start=0.25), 4, 0.25),
    (dict(kind="staged", stages=[[5, 2.0]], start=0.25), 5, 2.0),
]


@pytest.mark.parametrize("values,step,expected", TABLE)
def test_schedule_table(values, step, expected):
    got = schedules.value_at(cfg(**values), step)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, abs=1e-12)


# sigmoid: start + (value − start)/(1 + exp(−10(step/warmup − ½)))
SIGMOID = [
    dict(kind="sigmoid", start=0.0, value=1.0, warmup=100),
    dict(kind="sigmoid", start=0.5, value=4.0, warmup=1000),
    dict(kind="sigmoid", start=2.0, value=0.0, warmup=60),  # decreasing
]


@pytest.mark.parametrize("values", SIGMOID)
def test_sigmoid_midpoint_endpoints_and_symmetry(values):
    c = cfg(**values)
    lo, hi, w = c.start, c.value, c.warmup
    span = hi - lo
    f = lambda s: schedules.value_at(c, s)  # noqa: E731
    assert f(w // 2) == pytest.approx((lo + hi) / 2, abs=1e-12)
    # 1/(1 + e^5) ≈ 0.67% of the way at step 0, 99.33% at warmup
    assert f(0) == pytest.approx(lo + span / (1 + math.exp(5)), abs=1e-12)
    assert f(w) == pytest.approx(lo + span / (1 + math.exp(-5)), abs=1e-12)
    assert abs(f(0) - lo) < 0.01 * abs(span) and abs(f(w) - hi) < 0.01 * abs(span)
    assert f(100 * w) == pytest.approx(hi, abs=1e-9)
    for d in (1, w // 10, w // 4):  # point symmetry about the midpoint
        assert f(w // 2 + d) - (lo + hi) / 2 == pytest.approx((lo + hi) / 2 - f(w // 2 - d))


@pytest.mark.parametrize("values", SIGMOID)
def test_sigmoid_is_monotone_and_bounded(values):
    c = cfg(**values)
    ys = [schedules.value_at(c, s) for s in range(0, 2 * c.warmup + 1, max(1, c.warmup // 50))]
    sign = 1 if c.value > c.start else -1
    assert all(sign * (b - a) > 0 for a, b in zip(ys, ys[1:]))
    assert all(min(c.start, c.value) <= y <= max(c.start, c.value) for y in ys)


def test_sigmoid_without_warmup_is_the_value():
    assert schedules.value_at(cfg(kind="sigmoid", value=3.0, warmup=0), 0) == 3.0


@pytest.mark.parametrize("values", [row[0] for row in TABLE[::3]] + SIGMOID)
def test_schedules_are_pure(values):
    c = cfg(**values)
    before = dataclasses.asdict(c)
    first = [schedules.value_at(c, s) for s in (0, 7, 50, 333, 7)]
    second = [schedules.value_at(c, s) for s in (7, 333, 50, 7, 0)][::-1]
    assert first == second
    assert first[1] == first[4]
    assert dataclasses.asdict(c) == before  # the config is not mutated (e.g. stages sorted)


BAD = [
    dict(kind="exponential"),
    dict(kind="Linear"),
    dict(kind="cyclical", period=0),
    dict(kind="cyclical", period=-10),
    dict(kind="cyclical", period=100, ratio=0.0),
    dict(kind="cyclical", period=100, ratio=1.5),
    dict(kind="staged", stages=[]),
    dict(kind="staged", stages=[[1]]),
    dict(kind="staged", stages=[["soon", 1.0]]),
    dict(kind="staged", stages=[1, 2]),
]


@pytest.mark.parametrize("values", BAD)
def test_bad_schedules_raise(values):
    with pytest.raises(xae.XaeError):
        schedules.value_at(cfg(**values), 0)
    with pytest.raises(xae.XaeError):
        schedules.check(cfg(**values))


def test_unknown_kind_message_lists_the_kinds():
    with pytest.raises(xae.XaeError, match="constant.*linear.*sigmoid.*cyclical.*staged"):
        schedules.value_at(cfg(kind="exponential"), 0)


@pytest.mark.parametrize("overrides", [
    {"beta.kind": "cyclical", "beta.period": 0},
    {"beta.kind": "staged"},
    {"beta.kind": "warmup"},
])
def test_build_rejects_bad_schedules(overrides):
    with pytest.raises(xae.XaeError):
        xae.build(xae.preset("vae", **overrides))


def test_beta_vae_preset_is_a_constant_four():
    c = xae.preset("beta-vae").beta
    assert [schedules.value_at(c, s) for s in (0, 10**6)] == [4.0, 4.0]
