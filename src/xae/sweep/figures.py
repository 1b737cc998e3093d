"""A sweep's figures: the rate–distortion curve and the latent maps side by side.

Drawn like :mod:`xae.viz` (bare Figure, Agg canvas, atomic writes). For a β sweep the
rate–distortion plane also shows, through each run, the line D + βR = const that its
objective holds constant (Alemi et al. 2018, "Fixing a Broken ELBO", Fig. 1): each run sits
where its line touches the frontier.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from xae.latents import latent
from xae.sweep.grid import BETA, short_keys
from xae.sweep.runner import Result
from xae.viz import (MAX_LATENT_POINTS, new_figure, project_2d, save_figure,
                     scatter_by_label)

MAX_PANELS = 8
ROLES = ("under-regularized (smallest β)", "balanced (middle β)", "over-regularized (largest β)")


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, list) else str(v)


def label(params: dict[str, Any], keys: list[str] | None = None) -> str:
    """``β=0.5, latent_dim=2``: the swept values of a run, for figure labels."""
    keys = list(params) if keys is None else keys
    short = short_keys(list(params))
    return ", ".join(f"{'β' if k == BETA else short[k]}={_value(params[k])}" for k in keys)


def _sort_key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


def _iso_lines(ax: Any, points: list[tuple[float, float, float]]) -> None:
    """Through each (R, D, β): the line D + βR = const, drawn across the current axes."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    xs = np.linspace(x0, x1, 2)
    for i, (r, d, beta) in enumerate(points):
        ax.plot(xs, d - beta * (xs - r), ls="--", lw=0.8, color="0.6", zorder=0,
                label="D + βR = const through each run" if i == 0 else None)
    ax.set(xlim=(x0, x1), ylim=(y0, y1))


def _annotate(ax: Any, texts: list[tuple[str, float, float]]) -> None:
    """Label points, each label moved around its point until it clears the ones placed."""
    placed: list[np.ndarray] = []
    offsets = [(5, 4), (5, -11), (-8, 8), (-8, -15), (5, 14), (5, -21)]
    for text, x, y in texts:
        at = ax.transData.transform((x, y)) * 72 / ax.figure.dpi  # in points
        for dx, dy in offsets:
            pos = at + (dx, dy)
            if all(abs(pos[1] - p[1]) > 9 or abs(pos[0] - p[0]) > 35 for p in placed):
                break
        placed.append(pos)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8,
                    ha="right" if dx < 0 else "left")


def rate_distortion(results: list[Result], keys: list[str], path: str | Path) -> Path:
    """Test distortion against test rate, one point per finished run, labelled by its value.

    Runs that differ only in the first swept key (β when β is swept) are joined by a line.
    """
    primary = BETA if BETA in keys else keys[0]
    others = [k for k in keys if k != primary]
    groups: dict[str, list[Result]] = {}
    for r in results:
        if r.ok and {"rate", "distortion"} <= set(r.metrics["test"]):
            groups.setdefault(label(r.run.params, others), []).append(r)
    fig = new_figure(6.6, 4.8)
    ax = fig.add_subplot()
    tangents, texts = [], []
    for i, (name, runs) in enumerate(groups.items()):
        runs.sort(key=lambda r: _sort_key(r.run.params[primary]))
        rate = [r.metrics["test"]["rate"] for r in runs]
        dist = [r.metrics["test"]["distortion"] for r in runs]
        ax.plot(rate, dist, "-o", color=f"C{i}", ms=5, lw=1.2, label=name or None)
        for r, x, y in zip(runs, rate, dist):
            texts.append((label(r.run.params, [primary]), x, y))
            if primary == BETA:
                tangents.append((x, y, float(r.run.params[BETA])))
    ax.margins(0.12)
    x0, x1 = ax.get_xlim()
    ax.set_xlim(max(x0, -0.03 * (x1 - x0)), x1)  # the rate is never negative
    if tangents:
        _iso_lines(ax, tangents)
    _annotate(ax, texts)
    ax.set(xlabel="rate R (nats)", ylabel="distortion D = −log p(x|z) (nats)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8)
    cfg = results[0].run.config
    ax.set_title(f"Rate–distortion on the test set: {cfg.preset} on {cfg.data.name}",
                 fontsize=11)
    return save_figure(fig, path)


def picks(results: list[Result], keys: list[str]) -> list[tuple[Result, str]]:
    """The runs to map, with captions: the smallest, a middle and the largest β (other swept
    values as in the first finished run), or else up to eight runs, evenly spaced."""
    done = [r for r in results if r.ok]
    if BETA in keys:  # among runs alike but for β (those like the first finished run)
        like = {k: v for k, v in done[0].run.params.items() if k != BETA}
        done = sorted((r for r in done if all(r.run.params[k] == v for k, v in like.items())),
                      key=lambda r: r.run.params[BETA])
        idx = sorted({0, (len(done) - 1) // 2, len(done) - 1})
        roles = {3: ROLES, 2: (ROLES[0], ROLES[2])}.get(len(idx), ("",))
        return [(done[i], "\n".join(filter(None, [label(done[i].run.params), role])))
                for i, role in zip(idx, roles)]
    n = min(len(done), MAX_PANELS)
    idx = sorted({round(i * (len(done) - 1) / max(n - 1, 1)) for i in range(n)})
    return [(done[i], label(done[i].run.params)) for i in idx]


def latent_maps(results: list[Result], keys: list[str], path: str | Path) -> Path:
    """Latent maps E[z|x] of the test set, side by side, coloured by class.

    For a β sweep: the smallest β (under-regularized), a middle one (balanced) and the
    largest (over-regularized); otherwise every run, up to eight (evenly spaced beyond).
    """
    import xae
    from xae.data import load

    chosen = picks(results, keys)
    fig = new_figure(3.3 * len(chosen) + 0.9, 3.9)
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    data: dict[str, Any] = {}
    for ax, (r, caption) in zip(axes, chosen):
        model = xae.load(r.path)
        key = json.dumps(dataclasses.asdict(model.config.data), sort_keys=True)
        if key not in data:  # runs that share a data config share its tensors
            data[key] = load(model.config.data)
        ds = data[key]
        x = ds.test_x[:MAX_LATENT_POINTS]
        y = ds.test_y[:MAX_LATENT_POINTS] if ds.test_y is not None else None
        what = "posterior means" if model.stochastic else "latent codes"
        xy, xlabel, ylabel = project_2d(latent(model, x), what)
        scatter_by_label(ax, fig, xy, y)
        test = r.metrics["test"]
        rd = (f"\nR={test['rate']:.1f}, D={test['distortion']:.1f} nats"
              if {"rate", "distortion"} <= set(test) else "")
        ax.set_title(caption + rd, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax is not axes[-1] and ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.suptitle(f"Latent maps: E[z|x] of {len(x)} test samples per run", fontsize=11)
    return save_figure(fig, path)
