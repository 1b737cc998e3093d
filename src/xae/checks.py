"""Range and choice checks for config values: each check is a small callable that returns the
problem with a value (a phrase such as "must be ≥ 1") or None, and says in ``text`` what it
accepts, for ``xae info --keys``.

The config's fields carry their check in their metadata (see :func:`xae.settings.key`; a
piece gives its settings' checks in its ``KEYS``); one function, :func:`xae.config.validate`,
runs them all when a config is read.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

INT_MAX = 2**31 - 1  # counts and sizes beyond this are typing slips, not settings
SEED_MAX = 2**32 - 1  # what every seeded generator here (torch, numpy, optuna) accepts


@dataclass(frozen=True)
class Check:
    """A named test of one value: ``problem(value)`` is None when the value is fine."""

    text: str | Callable[[], str]
    problem: Callable[[Any], str | None]

    def __call__(self, value: Any) -> str | None:
        return self.problem(value)

    def describe(self) -> str:
        """What the check accepts, e.g. "≥ 1" or "one of relu, tanh"."""
        return self.text() if callable(self.text) else self.text


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def between(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
            hi_open: bool = False) -> Check:
    """A finite number in [lo, hi] (open ends with ``lo_open``/``hi_open``; None = no bound)."""
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '≥'} {_fmt(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '≤'} {_fmt(hi)}")
    text = " and ".join(parts) if parts else "finite"
    short = text if hi != INT_MAX else parts[0]  # the list of keys leaves out the sanity cap

    def problem(v: Any) -> str | None:
        if isinstance(v, float) and not math.isfinite(v):
            return f"must be a finite number ({text}), got {v!r}"
        too_low = lo is not None and (v <= lo if lo_open else v < lo)
        too_high = hi is not None and (v >= hi if hi_open else v > hi)
        return f"must be {text}, got {v!r}" if too_low or too_high else None

    return Check(short, problem)


POSITIVE = between(1, INT_MAX)          # a count or size: 1, 2, ...
NON_NEGATIVE = between(0, INT_MAX)      # a count where 0 means "off"
SEED = between(0, SEED_MAX)
FINITE = between()
NON_NEGATIVE_FLOAT = between(0.0)
POSITIVE_FLOAT = between(0.0, lo_open=True)
FRACTION = between(0.0, 1.0, lo_open=True, hi_open=True)


def one_of(choices: Iterable[str] | Callable[[], Iterable[str]]) -> Check:
    """A name from ``choices`` (or from the table a callable returns, read when checked, so the
    list of choices lives in one place: the registry table itself)."""
    def names() -> list[str]:
        return list(choices() if callable(choices) else choices)

    def problem(v: Any) -> str | None:
        if v in names():
            return None
        near = difflib.get_close_matches(str(v), names(), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        return f"'{v}' is unknown{hint} (choices: {', '.join(names())})"

    return Check(lambda: "one of " + ", ".join(names()), problem)


def power_of_two(lo_exp: int, hi_exp: int) -> Check:
    """An integer 2^k with ``lo_exp`` ≤ k ≤ ``hi_exp`` (not a bool)."""
    text = f"a power of two from 2^{lo_exp} to 2^{hi_exp}"

    def problem(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and v > 0 and v & (v - 1) == 0 \
            and lo_exp <= v.bit_length() - 1 <= hi_exp
        return None if ok else f"must be {text}, got {v!r}"

    return Check(text, problem)


def each(item: Check, *, min_len: int = 0) -> Check:
    """A list whose items are integers (not bools) that pass ``item``."""
    def problem(v: Any) -> str | None:
        if len(v) < min_len:
            return f"must hold at least {min_len} value{'s' * (min_len > 1)}, got {v!r}"
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int):
                return f"must be a list of integers, and {x!r} is not one, in {v!r}"
            if item(x):
                return f"must be a list of integers {item.describe()}, and {x!r} is not"
        return None

    more = f", at least {min_len}" if min_len else ""
    return Check(f"integers {item.describe()}{more}", problem)


def _stages(v: Any) -> str | None:
    for pair in v:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair)
        if not ok or not float(pair[0]).is_integer() or pair[0] < 0 \
                or not math.isfinite(pair[1]) or pair[1] < 0:
            return f"must be [step, value] pairs with step ≥ 0 and value ≥ 0, and {pair!r} is not"
    return None


STAGES = Check("[step, value] pairs", _stages)


def number_or_each(item: Check, what: str) -> Check:
    """One number that passes ``item``, or a non-empty list of numbers that each pass it
    (``what`` says what the list's values are, e.g. "one per latent group")."""
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def problem(v: Any) -> str | None:
        if not isinstance(v, (list, tuple)):
            return item(v) if number(v) else f"must be a number or a list of numbers, got {v!r}"
        if not v:
            return f"must be a number or a non-empty list of numbers ({what}), got []"
        for x in v:
            if not number(x) or item(x):
                return f"must be a list of numbers {item.describe()} ({what}), and {x!r} is not"
        return None

    return Check(f"a number {item.describe()}, or a list of them, {what}", problem)
