"""The map of cells a biologist looks at first, without UMAP: the test cells' latent means on
their principal plane, one panel coloured by cell type and one by batch."""
from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

from xae.data import Dataset, covariates
from xae.model import Autoencoder
from xae.latents import latent
from xae.viz import MAX_LATENT_POINTS, new_figure, project_2d, save_figure, scatter_by_label


def cell_map(model: Autoencoder, data: Dataset, path: str | Path) -> Path:
    """:func:`cell_map_figure` saved to ``path``."""
    return save_figure(cell_map_figure(model, data), path)


def cell_map_figure(model: Autoencoder, data: Dataset) -> Figure:
    """(At most ``MAX_LATENT_POINTS`` of) the test cells' latent means in 2-D (the plane of
    their first two principal components for more than two latents), coloured by the cells'
    types (``test_y``, named by ``info["label_names"]``) and, beside it, by their batches
    (``info["test_batch"]``); a panel whose column the data lacks is drawn in one colour and
    says so. A model with a covariate reads each cell's level, so the map is its
    batch-corrected representation."""
    n = MAX_LATENT_POINTS
    c = covariates.for_model(model, data, "test")
    z = latent(model, data.test_x[:n], None if c is None else c[:n])
    xy, xlabel, ylabel = project_2d(z, "posterior means" if model.stochastic else "codes")
    fig = new_figure(11.5, 4.6)
    panels = [("cell type", data.test_y, data.info.get("label_names")),
              ("batch", data.info.get("test_batch"), data.info.get("batch_names"))]
    for i, (what, codes, names) in enumerate(panels):
        codes = codes[:n] if isinstance(codes, torch.Tensor) else None
        title = f"{xy.shape[0]} test cells by {what}" + ("" if codes is not None
                                                          else f" (the data has no {what})")
        ax = fig.add_subplot(1, 2, i + 1, title=title)
        scatter_by_label(ax, fig, xy, codes, names=names, title=what)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
    return fig
