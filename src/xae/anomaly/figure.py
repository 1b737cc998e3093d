"""Histograms of each score for normal and anomalous samples, one panel a score."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from xae.viz import new_figure, save_figure


def score_histograms(columns: dict[str, np.ndarray], labels: np.ndarray | None,
                     path: str | Path, title: str) -> Path:
    """Write the histograms as a PNG (atomically); without labels one histogram of all."""
    fig = new_figure(4 * len(columns), 3.2)
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    for ax, (name, values) in zip(axes, columns.items()):
        bins = np.histogram_bin_edges(values, bins=40)
        if labels is None:
            ax.hist(values, bins=bins, color="tab:blue", label=f"all ({len(values)})")
        else:
            for flag, what, colour in [(0, "normal", "tab:blue"), (1, "anomalous", "tab:red")]:
                ax.hist(values[labels == flag], bins=bins, alpha=0.6, color=colour,
                        density=True, label=f"{what} ({int((labels == flag).sum())})")
        ax.set_xlabel(name)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
