"""Figures of what each latent dimension does: latent traversals sorted by the KL of each
dimension, and the factor × latent mutual-information matrix of the disentanglement metrics
(:mod:`xae.evaluate.disentanglement`) as a heat map.

A traversal encodes an image to its posterior mean and moves one dimension from −span to
+span (in units of the N(0, I) prior's spread) with the others held, decoding each point to
the mean of p(x|z); dimensions the posterior leaves at the prior (KL ≈ 0) change nothing, so
rows are sorted by their KL, largest first (Higgins et al. 2017 and Burgess et al. 2018 show
them so)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xae.distributions import DiagonalGaussian
from xae.errors import XaeError
from xae.model import Autoencoder, inference
from xae.viz import _show_grid, image_grid, new_figure, save_figure

__all__ = ["Traversal", "dimension_kl", "traversals", "mi_heatmap", "ANNOTATE_CELLS",
           "traversable", "flat_gaussian_posterior"]
ANNOTATE_CELLS = 120  # the MI heat map writes its values in the cells up to this many cells


@dataclass
class Traversal:
    """A written traversal figure: its ``path``, the latent dimension of each row (``order``,
    largest mean KL first), the mean KL of every dimension in nats (``kl``, by dimension
    index), the traversed values (``values``) and the tiled image (``grid``, as drawn)."""

    path: Path
    order: list[int]
    kl: list[float]
    values: list[float]
    grid: np.ndarray


def _not_flat(model: Autoencoder) -> str | None:
    """What keeps ``model``'s code from being one flat vector of latents (None when it is)."""
    return ("discrete" if model.discrete else "a hierarchy of groups" if model.hierarchical
            else "deterministic" if not model.stochastic
            else "a spatial map" if len(model.latent_shape) != 1 else None)


def traversable(model: Autoencoder, x: torch.Tensor) -> bool:
    """Whether :func:`traversals` can draw ``model``: images, and a flat code whose posterior
    on ``x[:1]`` is a diagonal Gaussian (the run figures draw them only then), and no
    covariate (a conditional model's traversal would need a level chosen for it)."""
    if _not_flat(model) or len(model.data_shape) != 3 or model.covariates:
        return False
    with inference(model) as device:
        return isinstance(model.posterior_of(x[:1].to(device)), DiagonalGaussian)


def flat_gaussian_posterior(model: Autoencoder, x: torch.Tensor) -> DiagonalGaussian:
    """q(z|x) of a model with one flat vector of Gaussian latents; an XaeError otherwise."""
    kind = _not_flat(model)
    if kind:
        raise XaeError(f"traversals need a flat continuous latent (one vector of Gaussian "
                       f"latents); this model's code is {kind}, shape "
                       f"{list(model.latent_shape)}: train a VAE with a flat code")
    if len(model.data_shape) != 3:
        raise XaeError(f"traversals draw images; this model's data are vectors of shape "
                       f"{list(model.data_shape)}")
    with inference(model) as device:
        qs = [model.encode(xb.to(device)).posterior for xb in x.split(500)]
    if not all(isinstance(q, DiagonalGaussian) for q in qs):
        raise XaeError("traversals need a diagonal Gaussian posterior q(z|x)")
    return DiagonalGaussian(torch.cat([q.mean for q in qs]).double().cpu(),
                            torch.cat([q.logvar for q in qs]).double().cpu())


def dimension_kl(q: DiagonalGaussian) -> torch.Tensor:
    """The KL of each dimension against N(0, 1) averaged over the batch, (D,) nats:
    ½ E_x[μ² + σ² − 1 − log σ²]."""
    standard = DiagonalGaussian(torch.zeros_like(q.mean), torch.zeros_like(q.logvar))
    return q.kl(standard).mean(0)


def traversals(model: Autoencoder, x: torch.Tensor, path: str | Path, *, span: float = 3.0,
               steps: int = 11, dims: list[int] | None = None, images: int = 1,
               top: int | None = None) -> Traversal:
    """Latent traversals of the first ``images`` images of ``x``, one row per dimension.

    Each image is encoded to its posterior mean; in row r, dimension ``order[r]`` takes
    ``steps`` values evenly from −``span`` to +``span`` (the other dimensions keep the mean)
    and each code is decoded to the mean of p(x|z); an image's ``steps`` tiles sit side by
    side, the images one after the other. Rows are sorted by the dimension's KL against
    N(0, 1) averaged over all of ``x`` (:func:`dimension_kl`), largest first, and labelled
    with it. ``dims``: only these dimensions (still sorted); ``top``: only the first ``top``
    rows after sorting. Flat Gaussian latents only.
    """
    if not (span > 0 and steps >= 2 and images >= 1 and (top is None or top >= 1)):
        raise XaeError(f"traversals need span > 0, steps ≥ 2, images ≥ 1 and top ≥ 1; got "
                       f"span={span}, steps={steps}, images={images}, top={top}")
    if x.shape[0] < images:
        raise XaeError(f"traversals of {images} images need at least that many, got "
                       f"{x.shape[0]}")
    q = flat_gaussian_posterior(model, x)
    d = q.mean.shape[1]
    chosen = list(range(d)) if dims is None else list(dims)
    if not chosen or any(not 0 <= j < d for j in chosen) or len(set(chosen)) != len(chosen):
        raise XaeError(f"dims must be distinct latent dimensions in 0 … {d - 1}, got {dims}")
    kl = dimension_kl(q)
    order = sorted(chosen, key=lambda j: -float(kl[j]))[:top]
    values = torch.linspace(-span, span, steps, dtype=torch.float64)
    base = q.mean[:images]
    z = base.view(1, images, 1, d).repeat(len(order), 1, steps, 1)  # (rows, images, steps, D)
    for r, j in enumerate(order):
        z[r, :, :, j] = values
    with inference(model) as device:
        params = next(model.parameters())
        decoded = model.decode(z.view(-1, d).to(device, params.dtype)).float().cpu()
    grid = image_grid(decoded, nrow=images * steps)
    fig = _show_grid(grid, f"Latent traversals: each dimension from {-span:g} to {span:g}, the "
                           f"others at E[z|x] ({images} image{'s' if images > 1 else ''}); rows "
                           f"by KL per dimension over {x.shape[0]} images")
    cell_h, cell_w = model.data_shape[1] + 1, model.data_shape[2] + 1
    ax = fig.axes[0]
    ax.set_yticks([cell_h * (r + 0.5) for r in range(len(order))],
                  [f"z{j}: {float(kl[j]):.2f} nats" for j in order])
    ax.set_xticks([cell_w * (c + 0.5) for c in (0, steps // 2, steps - 1)],
                  [f"{round(float(values[c]), 6):+g}" for c in (0, steps // 2, steps - 1)])
    ax.tick_params(length=0, labelsize=8)
    return Traversal(save_figure(fig, path), order, kl.tolist(), values.tolist(), grid)


def mi_heatmap(normalized_mi, factor_names: list[str], path: str | Path) -> tuple[Path, list[int]]:
    """The normalised mutual information of each factor with each latent dimension (the MIG
    matrix of :func:`xae.evaluate.disentanglement.disentanglement_scores`, code dimension ×
    factor, ``(d, F)``) as a heat map: a row per factor, a column per latent dimension, the
    columns sorted by the dimension's largest MI over the factors (largest first; ties by
    index), with the values written in when there are at most :data:`ANNOTATE_CELLS` cells.
    Returns the path and the column order (latent dimensions)."""
    mi = np.asarray(normalized_mi, dtype=float)
    if mi.ndim != 2 or 0 in mi.shape or mi.shape[1] != len(factor_names):
        raise XaeError(f"the MI matrix must be (latent dims, factors) with one column per "
                       f"factor name ({len(factor_names)}), got shape {list(mi.shape)}")
    if not np.isfinite(mi).all():
        raise XaeError("the MI matrix has values that are not finite")
    order = [int(j) for j in np.argsort(-mi.max(1), kind="stable")]
    shown = mi[order].T  # (F, d)
    f, d = shown.shape
    fig = new_figure(min(2.5 + 0.45 * d, 14.0), 1.4 + 0.4 * f)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="viridis", vmin=0.0, vmax=max(1.0, float(shown.max())),
                   aspect="auto", interpolation="nearest")
    ax.set_xticks(range(d), [f"z{j}" for j in order], fontsize=8)
    ax.set_yticks(range(f), list(factor_names), fontsize=8)
    ax.set(xlabel="latent dimension (by its largest MI)", ylabel="factor",
           title="Normalised mutual information I(z_j; v_k) / H(v_k)")
    if f * d <= ANNOTATE_CELLS:
        for (k, j), v in np.ndenumerate(shown):
            ax.text(j, k, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 0.5 else "white")
    fig.colorbar(im, ax=ax, label="normalised MI")
    return save_figure(fig, path), order
