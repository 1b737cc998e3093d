"""The figure of edits: one row per image, one column per amount, a block of rows per
attribute, written atomically as a PNG."""
from __future__ import annotations

import textwrap
from pathlib import Path

import torch

from xae.errors import XaeError
from xae.viz import image_grid, new_figure, save_figure


def edit_figure(blocks: list[tuple[str, torch.Tensor]], amounts: list[float],
                path: str | Path, title: str = "") -> Path:
    """Write ``blocks`` — (attribute name, edits (B, A, C, H, W)) — as one grid to ``path``:
    the amounts label the columns, each block's name its rows."""
    if not blocks or any(e.dim() != 5 or e.shape[1] != len(amounts) for _, e in blocks):
        raise XaeError("an edit figure needs images (B, amounts, C, H, W) per attribute; "
                       "edits of vectors are not drawn (use --save to keep them)")
    h, w = blocks[0][1].shape[-2:]
    pad = 1
    grid = image_grid(torch.cat([e.flatten(0, 1) for _, e in blocks]), nrow=len(amounts),
                      pad=pad)
    rows = sum(e.shape[0] for _, e in blocks)
    scale = min(9.0 / grid.shape[0], 0.9 / (h + pad), 10.0 / grid.shape[1])  # inches per pixel
    width = max(grid.shape[1] * scale + 1.6, 3.0)
    title = textwrap.fill(title, int(width * 10))  # about 10 characters per inch at 10 pt
    fig = new_figure(width, grid.shape[0] * scale + 0.8 + 0.2 * len(title.splitlines()))
    ax = fig.add_subplot()
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([pad + (w + pad) * (j + 0.5) for j in range(len(amounts))],
                  [f"{a:+g}" for a in amounts], fontsize=8)
    ax.set_xlabel("amount (in lengths of the direction)", fontsize=9)
    centres, first = [], 0
    for _, e in blocks:
        centres.append(pad + (h + pad) * (first + e.shape[0] / 2))
        first += e.shape[0]
        if first < rows:
            ax.axhline(pad / 2 + (h + pad) * first - pad, color="white", linewidth=1.5)
    ax.set_yticks(centres, [name for name, _ in blocks], fontsize=9)
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
