"""What each level of a hierarchy encodes: a few test images decoded with their top k latent
groups at the posterior means and the groups below drawn from the prior given them (k = 0: a
sample from the prior; k = L: the reconstruction), the figure NVAE and VDVAE show."""
from __future__ import annotations

from pathlib import Path

import torch

from xae.errors import XaeError
from xae.model import Autoencoder, inference
from xae.viz import save_grid


def levels(model: Autoencoder, x: torch.Tensor, path: str | Path, n: int = 8,
           seed: int = 0) -> Path:
    """Rows: the images, then k = 0, 1, …, L groups from the posterior; columns: ``n`` test
    images. Seeded, on its own random state."""
    if not model.hierarchical:
        raise XaeError("the levels figure needs a hierarchy of latent groups "
                       "(model.bottleneck=topdown or ladder)")
    x = x[:n]
    with inference(model) as device, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        xb = x.to(device)
        h = model.features(xb)
        rows = [xb] + [model.decode(model.bottleneck.posterior_then_prior(h, keep, model.prior))
                       for keep in range(len(model.bottleneck.sizes) + 1)]
    grid = torch.cat(rows).cpu()
    return save_grid(grid, path, nrow=x.shape[0],
                     title="data; then the top k groups from the posterior, k = 0 … "
                           f"{len(model.bottleneck.sizes)} (the rest from the prior)")
