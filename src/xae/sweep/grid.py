"""The sweep's plan: ``--beta`` and ``--grid KEY=V1,V2,...`` → named runs with full configs.

``--beta 0.1,1`` is shorthand for ``--grid beta.value=0.1,1``. Several ``--grid`` flags give
their cartesian product. Every key and value is checked (the config's own coercion, then the
model is built once) before anything is trained, so a typo costs nothing.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
from typing import Any

from xae.config import Config, apply, parse_overrides, resolve_key
from xae.errors import XaeError

BETA = "beta.value"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


@dataclasses.dataclass
class Run:
    """One run of a sweep: its folder name, the values it sweeps and its full config."""

    name: str
    params: dict[str, Any]
    config: Config


def split_values(text: str) -> list[str]:
    """Split ``"0.1,1"`` or ``"[64],[128,64]"`` at the commas outside brackets."""
    values, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def get_value(cfg: Config, key: str) -> Any:
    """The value of the dotted ``key`` in ``cfg``."""
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def coerce(base: Config, key: str, raw: Any) -> Any:
    """``raw`` converted as the config converts ``key`` (an :class:`XaeError` if it cannot be)."""
    return get_value(apply(copy.deepcopy(base), {key: raw}), key)


def parse_grid(beta: str | None, grid: list[str] | None) -> dict[str, list[str]]:
    """``--beta`` and the ``--grid`` items → ``{dotted key: [raw values]}``, keys resolved."""
    items = ([f"{BETA}={beta}"] if beta is not None else []) + list(grid or [])
    out: dict[str, list[str]] = {}
    for item in items:
        (key, text), = parse_overrides([item]).items()
        key = resolve_key(key)
        if key in out:
            hint = " (--beta is beta.value)" if key == BETA else ""
            raise XaeError(f"'{key}' is swept twice{hint}; list all its values in one "
                           f"--grid {key}=V1,V2,...")
        values = split_values(text)
        if not all(values):
            raise XaeError(f"--grid {item!r} has an empty value; write KEY=V1,V2,... with no "
                           f"empty entries, e.g. beta.value=0.5,1,2")
        out[key] = values
    return out


def check_not_set(swept: list[str], overrides: dict[str, str]) -> None:
    """Refuse a key that is both fixed with ``--set`` and swept."""
    both = sorted(set(swept) & {resolve_key(k) for k in overrides})
    if both:
        raise XaeError(f"'{both[0]}' is both fixed with --set and swept; drop one of them")


def _label(value: Any, digits: int = 6) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return "-".join(_label(v, digits) for v in value) or "none"
    return str(value)


def short_keys(keys: list[str]) -> dict[str, str]:
    """Readable names for swept keys: ``beta.value`` → ``beta``, ``model.latent_dim`` →
    ``latent_dim``; the full key wherever two short names would clash."""
    short = {k: k.split(".")[-2] if k.endswith(".value") else k.split(".")[-1] for k in keys}
    clash = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {k: (k if s in clash else s) for k, s in short.items()}


def run_name(params: dict[str, Any], prefix: str = "", digits: int = 6) -> str:
    """A folder name such as ``beta=0.5,latent_dim=2`` (only ``[A-Za-z0-9._=+-,]``)."""
    short = short_keys(list(params))
    parts = [_UNSAFE.sub("", f"{short[k]}={_label(v, digits)}") for k, v in params.items()]
    return prefix + ",".join(parts)


def make_run(base: Config, params: dict[str, Any], name: str) -> Run:
    """The run ``name``: ``base`` with ``params`` applied, and its model built once as a check."""
    from xae.registry import build

    cfg = apply(copy.deepcopy(base), params)
    try:
        build(cfg)  # a check: build leaves the config as it is
    except XaeError as e:
        swept = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise XaeError(f"the sweep's run with {swept} is not a valid model: {e}") from None
    return Run(name, params, cfg)


def grid_runs(base: Config, grid: dict[str, list[str]]) -> list[Run]:
    """One run per point of the cartesian product of ``grid``, in the order given."""
    values = {}
    for key, raws in grid.items():
        coerced = [coerce(base, key, raw) for raw in raws]
        dupes = [raws[i] for i, v in enumerate(coerced) if v in coerced[:i]]
        if dupes:
            raise XaeError(f"--grid {key} lists the value {dupes[0]} twice; list each value once")
        values[key] = coerced
    runs, seen = [], set()
    for point in itertools.product(*values.values()):
        params = dict(zip(values, point))
        name = run_name(params)
        if name in seen:  # values that differ only beyond the label's six digits
            name = f"{name}-{len(runs)}"
        seen.add(name)
        runs.append(make_run(base, params, name))
    return runs


def config_difference(a: Config, b: Config,
                      ignore: tuple[str, ...] = ("model.data_shape", "model.tc.dataset_size",
                                                 "train.threads", "train.progress")) -> list[str]:
    """The dotted keys whose values differ between two configs (bookkeeping keys, and those
    filled in from the data, ignored)."""
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = json.dumps(v)
        return out

    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return sorted(k for k in fa.keys() | fb.keys() if k not in ignore and fa.get(k) != fb.get(k))
