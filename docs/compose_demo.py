"""Compose docs/demo.png (the README's picture) from the figures of `make demo`.

    .venv/bin/python docs/compose_demo.py runs/demo
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.image as mpimg
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo") / "figures"
panels = ["reconstructions.png", "samples.png", "latent_map.png"]
images = [mpimg.imread(run / name) for name in panels]
widths = [im.shape[1] / im.shape[0] for im in images]
fig = Figure(figsize=(4.2 * sum(widths), 4.2), dpi=110, layout="constrained")
FigureCanvasAgg(fig)
for ax, im in zip(fig.subplots(1, 3, width_ratios=widths), images):
    ax.imshow(im)
    ax.set_axis_off()
fig.savefig(Path(__file__).with_name("demo.png"))
