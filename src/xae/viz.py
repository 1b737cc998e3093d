"""Figures for a run folder: reconstructions, prior samples, a latent map, training curves.

Drawn on bare :class:`matplotlib.figure.Figure` objects with the Agg canvas (pyplot's global
state is never touched), written atomically. Images are clamped to [0, 1] (gray for one
channel, RGB for three); vectors become heatmaps, one row per sample."""
from __future__ import annotations

import json
import logging
import math
import textwrap
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from xae import runfiles as RF
from xae.data import Dataset, covariates
from xae.errors import XaeError
from xae.fileio import atomic_path
from xae.latents import latent
from xae.model import Autoencoder, inference
from xae.plane import plane_of

log = logging.getLogger(__name__)
__all__ = ["write_figures", "image_grid", "save_grid", "reconstructions", "samples",
           "latent_map", "holes_map", "holes_figure", "curves"]

DPI, MAX_LATENT_POINTS = 100, 2000  # dots per inch; test points on the latent map
# what a log line holds besides its values: never a curve of its own
NOT_CURVES = ("step", "epoch", "lr", "samples_per_s", "split")
TRAVERSAL_KL_N = 1000  # test images over which the run figures average the KL of each dimension
LABELS = {"loss": "loss (nats)", "distortion": "distortion −log p(x|z) (nats)",
          "rate": "rate, all terms (nats)", "beta": "β"}


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure drawn by the Agg canvas (no pyplot)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically; return the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def image_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 1,
               pad_value: float = 0.5) -> np.ndarray:
    """Tile a batch into one array for ``imshow``.

    Parameters
    ----------
    x : torch.Tensor
        Images ``(B, C, H, W)`` (or ``(B, H, W)``) or vectors ``(B, D)``.
    nrow : int, optional
        Images per row (as in torchvision's ``make_grid``); ``ceil(sqrt(B))`` by default.
    pad, pad_value : int, float
        Width in pixels and gray level of the border between and around the images.

    Returns
    -------
    numpy.ndarray
        Images: ``(rows·(H+pad)+pad, nrow·(W+pad)+pad)``, plus a last axis of 3 for RGB
        (other channel counts are averaged to gray), clamped to [0, 1]. Vectors: the
        ``(B, D)`` heatmap min-max scaled to [0, 1].
    """
    x = x.detach().float().cpu()
    if x.dim() == 2:  # vectors (B, D)
        lo, hi = float(x.min()), float(x.max())
        return ((x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)).numpy()
    x = x.unsqueeze(1) if x.dim() == 3 else x
    if x.dim() != 4 or x.shape[0] == 0:
        raise XaeError(f"image_grid needs a non-empty (B, C, H, W) or (B, D) tensor, got "
                       f"shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3):
        x = x.mean(1, keepdim=True)
    b, c, h, w = x.shape
    ncol = max(1, min(nrow or math.ceil(math.sqrt(b)), b))
    rows = math.ceil(b / ncol)
    grid = torch.full((c, rows * (h + pad) + pad, ncol * (w + pad) + pad), float(pad_value))
    for i, img in enumerate(x.clamp(0, 1)):
        top, left = pad + (i // ncol) * (h + pad), pad + (i % ncol) * (w + pad)
        grid[:, top:top + h, left:left + w] = img
    return grid[0].numpy() if c == 1 else grid.permute(1, 2, 0).numpy()


def _show_grid(grid: np.ndarray, title: str | None, row_labels: list[str] | None = None,
               cell: int = 0) -> Figure:
    """A figure holding one image grid, sized to its aspect ratio, without ticks."""
    h, w = grid.shape[:2]
    scale = min(6.0 / max(h, w), 0.15)  # inches per pixel: ≤ 6 in, small grids not blown up
    width = max(w * scale, 2.5) + (0.8 if row_labels else 0.2)
    title = textwrap.fill(title or "", int(width * 11))  # about 11 characters per inch
    fig = new_figure(width, h * scale + 0.4 + 0.2 * len(title.splitlines()))
    ax = fig.add_subplot()
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    if row_labels:
        ax.set_yticks([cell * (i + 0.5) for i in range(len(row_labels))], row_labels)
        ax.tick_params(axis="y", length=0, labelsize=8)
        for i in range(2, len(row_labels), 2):  # a white rule between input/recon. pairs
            ax.axhline(i * cell, color="white", linewidth=1.5)
    ax.spines[:].set_visible(False)
    ax.set_title(title, fontsize=11)
    return fig


def _show_vectors(panels: list[tuple[str, torch.Tensor]], title: str | None) -> Figure:
    """Side-by-side heatmaps (rows = samples, columns = dimensions) on one colour scale."""
    arrays = [p.detach().float().cpu().numpy() for _, p in panels]
    vmax = max(float(np.abs(a).max()) for a in arrays) or 1.0
    b, d = arrays[0].shape
    fig = new_figure(min(2.0 + 2.6 * len(panels) * max(d / 20, 0.6), 10), min(2.2 + b / 16, 7))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (name, _), a in zip(axes, panels, arrays):
        im = ax.imshow(a, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto",
                       interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("dimension")
    axes[0].set_ylabel("sample")
    fig.colorbar(im, ax=list(axes), shrink=0.9, label="value")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def save_grid(x: torch.Tensor, path: str | Path, nrow: int | None = None,
              title: str | None = None) -> Path:
    """Save a batch of images as one grid PNG (vectors as a heatmap with a colorbar).

    Used by ``xae sample -o grid.png``. See :func:`image_grid` for ``nrow``.
    """
    if x.dim() == 2:
        return save_figure(_show_vectors([("", x)], title), path)
    return save_figure(_show_grid(image_grid(x, nrow), title), path)


def _pair_columns(n: int) -> int:
    """Columns for n input/reconstruction pairs: near sqrt(2n), a divisor of n if one is near."""
    target = math.ceil(math.sqrt(2 * n))
    divisors = (c for c in range(target, min(2 * target, n) + 1) if n % c == 0)
    return next(divisors, min(target, n))


def reconstructions(model: Autoencoder, x: torch.Tensor, path: str | Path,
                    c: torch.Tensor | None = None) -> Path:
    """Inputs and their reconstructions ``model.reconstruct(x, c)``, paired row by row (``c``:
    the inputs' covariate levels, for a model with a covariate).

    Image data: each row of inputs has its reconstructions in the row beneath. Vector data:
    input and reconstruction heatmaps side by side on one colour scale.
    """
    with inference(model) as device:
        x_hat = model.reconstruct(x.to(device), c).cpu()
    x = x.detach().cpu()
    n, shape = x.shape[0], x.shape[1:]
    if x.dim() == 2:
        return save_figure(_show_vectors([("inputs x", x), ("reconstructions x̂", x_hat)],
                                   f"Reconstructions of {n} test samples"), path)
    cols = _pair_columns(n)
    pairs = math.ceil(n / cols)
    blank = torch.full((pairs * cols - n, *shape), 0.5)
    tiles = torch.stack([torch.cat([x, blank]), torch.cat([x_hat, blank])])
    grid = image_grid(tiles.view(2, pairs, cols, *shape).transpose(0, 1).flatten(0, 2), cols)
    title = f"Reconstructions: input, then decode(E[z|x]) beneath ({n} test samples)"
    return save_figure(_show_grid(grid, title, ["input", "recon."] * pairs, x.shape[-2] + 1), path)


def samples(model: Autoencoder, n: int, path: str | Path) -> Path:
    """``model.sample(n)``: draws z ~ p(z), decoded to the mean of p(x|z); for a model with
    a covariate of L levels, one row of n // L draws per level (at most 16 levels)."""
    if not model.covariates:
        with inference(model):
            xs = model.sample(n).cpu()
        return save_grid(xs, path, title=f"{n} samples: decoded draws z ~ p(z)")
    levels = min(model.covariates, 16)
    per = max(1, n // levels)
    with inference(model) as device:
        c = torch.arange(levels, device=device).repeat_interleave(per)
        xs = model.sample(len(c), c=c).cpu()
    return save_grid(xs, path, nrow=per, title=f"{per} samples per level (rows): decoded "
                     f"draws z ~ p(z) at each level of {model.config.model.covariate}")


def project_2d(z: torch.Tensor, what: str) -> tuple[np.ndarray, str, str]:
    """2-D coordinates and axis labels: z itself for D ≤ 2 (D = 1 with a random jitter), else
    its principal plane (:func:`xae.plane.plane_of`)."""
    d = z.shape[1]
    if d == 2:
        return z.numpy(), "z1", "z2"
    if d == 1:
        jitter = torch.rand(z.shape[0], 1, generator=torch.Generator().manual_seed(0)) - 0.5
        return torch.cat([z, jitter], 1).numpy(), "z1", "(random jitter)"
    plane = plane_of(z.numpy())
    labels = [f"PC{i + 1} of {what} ({d} dims; {100 * share:.0f}% var.)"
              for i, share in enumerate(plane.explained)]
    return plane.project(z.numpy()), labels[0], labels[1]


def scatter_by_label(ax: Axes, fig: Figure, xy: np.ndarray, y: torch.Tensor | None,
                     names: list[str] | None = None, title: str = "class") -> None:
    """Points coloured by class (legend for ≤ 10 classes, named by ``names[class]`` when
    given, colorbar beyond), or one colour."""
    kw = {"s": 6, "alpha": 0.7, "linewidths": 0}
    labels = y.detach().cpu().numpy() if y is not None else None
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], color="tab:blue", **kw)
    elif len(classes := np.unique(labels)) <= 10:
        for i, k in enumerate(classes):
            sel = labels == k
            ax.scatter(xy[sel, 0], xy[sel, 1], color=f"C{i}",
                       label=names[int(k)] if names else str(k), **kw)
        ax.legend(title=title, fontsize=8, title_fontsize=8, markerscale=2.5,
                  loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="viridis", **kw)
        fig.colorbar(sc, ax=ax, label=title)


def latent_map(model: Autoencoder, x: torch.Tensor, y: torch.Tensor | None,
               path: str | Path, c: torch.Tensor | None = None) -> Path:
    """Latent means E_q[z|x] of (at most 2000 of) ``x`` (at covariate levels ``c``, for a
    model with a covariate) in 2-D, coloured by label ``y``.

    2-D latents are drawn as they are, others projected onto their first two principal
    components (SVD of the centred means). ``y`` may be None (one colour).
    """
    x, y = x[:MAX_LATENT_POINTS], (y[:MAX_LATENT_POINTS] if y is not None else None)
    c = None if c is None else c[:MAX_LATENT_POINTS]
    what = "posterior means" if model.stochastic else "latent codes"
    xy, xlabel, ylabel = project_2d(latent(model, x, c), what)
    fig = new_figure(5.6 if y is not None else 5.0, 4.6)
    ax = fig.add_subplot(title=f"Latent map: E[z|x] of {xy.shape[0]} test samples")
    scatter_by_label(ax, fig, xy, y)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _hole_densities(model: Autoencoder, x: torch.Tensor, grid: int) -> dict:
    """Prior and aggregate-posterior log densities on a grid covering both, and the holes:
    the very measurement of ``xae.evaluate_model(model, x)`` (same seeds and batches)."""
    from xae.evaluate.diagnostics import holes_of, rate_distortion
    from xae.evaluate.holes import mixture_log_density

    with inference(model) as device:
        rd = rate_distortion(model, x.to(device), seed=0)
        h = holes_of(model, rd, seed=0)
        q = type(rd.posterior)(rd.posterior.mean[:h.encoded_z.shape[0]],
                               rd.posterior.logvar[:h.encoded_z.shape[0]])
        pts = torch.cat([h.prior_z, h.encoded_z]).double()
        lo = pts.quantile(0.001, 0).min().item() - 0.5
        hi = pts.quantile(0.999, 0).max().item() + 0.5
        axis = torch.linspace(lo, hi, grid, device=device)
        zz = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).view(-1, 2)
        return {"holes": h, "extent": (lo, hi, lo, hi),
                "log_q": mixture_log_density(zz, q).view(grid, grid).cpu().numpy(),
                "log_p": model.prior.log_prob(zz).view(grid, grid).double().cpu().numpy(),
                "in_hole": (mixture_log_density(h.prior_z, q) < h.log_tau).cpu().numpy()}


def holes_title(mmd: float, fraction: float) -> str:
    """The holes figure's title: the two hole metrics, and why a negative MMD² is negative."""
    from xae.evaluate.holes import mmd_note

    note = mmd_note(mmd)
    return ("Holes: the orange line is q(z) = τ, the density 99% of encoded points exceed; "
            f"holes_fraction = {100 * fraction:.1f}%, holes_mmd (MMD²) = {mmd:.4g}"
            + (f"\n({textwrap.fill(note, 130)})" if note else ""))


def holes_figure(model: Autoencoder, x: torch.Tensor, grid: int = 150,
                 metrics: dict | None = None) -> Figure:
    """The figure of :func:`holes_map`. Its numbers are ``metrics["holes_mmd"]`` and
    ``metrics["holes_fraction"]`` (the run's test metrics, as in metrics.json); without
    ``metrics`` they are measured by the one computation behind them, so they equal what
    ``xae.evaluate_model(model, x)`` reports. The figure never estimates them on its own."""
    if model.latent_dim != 2 or not model.stochastic:
        raise XaeError("the holes figure needs a stochastic model with 2 latent dimensions; "
                       f"this one has {model.latent_dim} (use the holes_* metrics of xae eval)")
    d = _hole_densities(model, x, grid)
    h, pz, hole = d["holes"], d["holes"].prior_z.cpu().numpy()[:2000], d["in_hole"][:2000]
    if metrics is None:
        mmd, fraction = h.mmd, h.fraction
    elif "holes_mmd" in metrics and "holes_fraction" in metrics:
        mmd, fraction = metrics["holes_mmd"], metrics["holes_fraction"]
    else:
        raise XaeError("the holes figure takes its numbers from the metrics, and these have no "
                       "holes_mmd and holes_fraction; evaluate with hole_metrics=True")
    fig = new_figure(10.0, 4.6)
    for ax, key, name in zip(fig.subplots(1, 2), ("log_p", "log_q"),
                             ("prior p(z)", "aggregate posterior q(z)")):
        ax.imshow(np.exp(d[key]), origin="lower", extent=d["extent"], cmap="Blues")
        ax.contour(d["log_q"], levels=[h.log_tau], extent=d["extent"], colors="tab:orange",
                   linewidths=1)
        ax.set(title=f"{name} density", xlabel="z1", ylabel="z2")
    ax = fig.axes[0]
    ax.scatter(*pz[~hole].T, s=2, color="k", alpha=0.3, linewidths=0)
    ax.scatter(*pz[hole].T, s=5, color="tab:red", linewidths=0, label="prior samples in holes")
    ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(holes_title(mmd, fraction), fontsize=10)
    return fig


def holes_map(model: Autoencoder, x: torch.Tensor, path: str | Path, grid: int = 150,
              metrics: dict | None = None) -> Path:
    """For 2-D Gaussian latents: the prior density p(z) beside the aggregate posterior
    q(z) = (1/N) Σ q(z|x_n) of (≤ 5000 of) ``x``, with the holes marked: the line where q(z)
    equals τ (the density that 99% of encoded points exceed) and the prior samples below it
    (see :mod:`xae.evaluate.holes`), titled with the hole metrics (see :func:`holes_figure`
    for ``metrics``)."""
    return save_figure(holes_figure(model, x, grid, metrics), path)


def read_log(path: Path) -> list[dict]:
    """The records of a metrics.jsonl; a line cut short (a killed run) ends the read."""
    if not path.is_file():
        raise XaeError(f"no training log at '{path}'; train the run first (it writes "
                       f"metrics.jsonl) or point to the run folder that has one")
    records = []
    for line in filter(str.strip, path.read_text().splitlines()):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    if not records or not all("step" in r for r in records):
        raise XaeError(f"'{path}' holds no training records (JSON lines with a 'step')")
    return records


def curve_keys(records: list[dict]) -> list[str]:
    """The logged values to draw, in the order they first appear: every number a log line
    holds (the loss, each named term, metrics, β) except its bookkeeping."""
    keys: dict[str, None] = {}
    for r in records:
        keys.update({k: None for k, v in r.items() if k not in NOT_CURVES
                     and isinstance(v, (int, float)) and not isinstance(v, bool)})
    return list(keys)


def curves_figure(records: list[dict], held_out: list[dict] | None = None) -> Figure:
    """One panel per logged value (loss, each named loss term, metrics, β) against the
    step: the means over training batches, and beside them (``held_out``, the records of
    held_out.jsonl) the held-out evaluations."""
    keys = curve_keys(records) or ["loss"]
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig = new_figure(2.6 * cols + 0.5, 2.4 * rows + 0.4)
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False).ravel()
    held = held_out or []
    for i, ax in enumerate(axes):
        if i >= len(keys):
            ax.set_axis_off()
            continue
        key = keys[i]
        pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        steps, values = zip(*pts) if pts else ((), ())
        ax.plot(steps, values, marker="o" if len(records) < 30 else None, markersize=3, lw=1.2,
                label="train batches")
        ref = [(r["step"], r[key]) for r in held if r.get(key) is not None]
        if ref:
            ax.plot(*zip(*ref), marker="s", markersize=3, lw=1.2, color="tab:orange",
                    label=f"held out ({held[0].get('split', 'validation')})")
            ax.legend(fontsize=7)
        if not pts:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
        elif key == "beta" and min(values) >= 0:
            ax.set_ylim(0, max(values) * 1.1 or 1.0)
        ax.set_title(LABELS.get(key, key), fontsize=10)
        ax.set_xlabel("step" if i >= len(keys) - cols else "")
        ax.grid(alpha=0.3)
    n = len(records)
    extra = f"; {len(held)} held-out evaluations" if held else ""
    fig.suptitle(f"Training curves ({n} log point{'s' * (n != 1)}{extra})", fontsize=11)
    return fig


def curves(metrics_jsonl: str | Path, path: str | Path,
           held_out_jsonl: str | Path | None = None) -> Path:
    """Training curves from a run's metrics.jsonl (and its held_out.jsonl, when given)."""
    records = read_log(Path(metrics_jsonl))
    held = read_log(Path(held_out_jsonl)) if held_out_jsonl else None
    return save_figure(curves_figure(records, held), path)


def write_figures(run_dir: str | Path, model: Autoencoder, data: Dataset,
                  n: int = 64) -> list[Path]:
    """Write ``run_dir/figures/{reconstructions,samples,latent_map,curves}.png`` (and
    ``holes.png`` for 2-D stochastic latents without a covariate; for counts ``cell_map.png``
    in place of the first three; ``traversals.png`` for a flat Gaussian code of
    images, its KL per dimension over the first 1000 test images; for sentences
    ``reconstructions.txt`` and ``samples.txt`` in place of the two images; for a hierarchy ``levels.png``,
    ``temperatures.png`` and ``rate_groups.png``: see :mod:`xae.viz_levels`); return them.

    Reconstructions of the first ``n`` test samples, ``n`` prior samples, the latent map of
    ≤ 2000 test samples, curves from ``run_dir/metrics.jsonl`` (skipped, with a warning, if
    the run has no log).
    """
    out, metrics = Path(run_dir) / RF.FIGURES, Path(run_dir) / RF.LOG
    c = covariates.for_model(model, data, "test")
    if "vocab" in data.info:  # sentences: reconstructions and samples as text
        from xae.viz_text import text_figures

        paths = text_figures(Path(run_dir), model, data.test_x, data.info["vocab"], n=16)
    elif not model.likelihood.mean_in_data_space:  # cells: the map by type and batch
        from xae.viz_cells import cell_map

        paths = [cell_map(model, data, out / RF.CELL_MAP_PNG)]
    else:
        paths = [reconstructions(model, data.test_x[:n], out / RF.RECONSTRUCTIONS_PNG,
                                 None if c is None else c[:n]),
                 samples(model, n, out / RF.SAMPLES_PNG)]
    if model.likelihood.mean_in_data_space:
        paths.append(latent_map(model, data.test_x, data.test_y, out / RF.LATENT_MAP_PNG, c))
    if model.latent_dim == 2 and model.stochastic and not model.covariates:
        from xae.train.checkpoint import read_metrics

        run = read_metrics(run_dir)
        paths.append(holes_map(model, data.test_x, out / RF.HOLES_PNG,
                               metrics=run["test"] if run else None))
    from xae.viz_factors import traversable, traversals

    if traversable(model, data.test_x):
        paths.append(traversals(model, data.test_x[:TRAVERSAL_KL_N], out / RF.TRAVERSALS_PNG,
                                top=10).path)
    if model.hierarchical:
        from xae.viz_levels import hierarchy_figures

        paths += hierarchy_figures(Path(run_dir), model, data.test_x)
    held = Path(run_dir) / RF.HELD_OUT
    if metrics.is_file():
        paths.append(curves(metrics, out / RF.CURVES_PNG, held if held.is_file() else None))
    else:
        log.warning("no %s: the training-curves figure was not written", metrics)
    return paths
