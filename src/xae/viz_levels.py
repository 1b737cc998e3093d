"""Figures of a hierarchy of latent groups: what each level encodes (a few test images decoded
with their top k groups at the posterior means and the groups below drawn from the prior given
them; k = 0: a sample from the prior; k = L: the reconstruction, the figure NVAE and VDVAE
show), samples at several temperatures, and, from the training log, the KL of each group
(:mod:`xae.viz_rates`)."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from xae import runfiles as RF
from xae.errors import XaeError
from xae.model import Autoencoder, inference
from xae.viz import save_grid

log = logging.getLogger(__name__)
TEMPERATURES = (1.0, 0.8, 0.6, 0.4)


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
                       for keep in range(model.bottleneck.num_groups + 1)]
    grid = torch.cat(rows).cpu()
    return save_grid(grid, path, nrow=x.shape[0],
                     title="data; then the top k groups from the posterior, k = 0 … "
                           f"{model.bottleneck.num_groups} (the rest from the prior)")


def tempered_samples(model: Autoencoder, n: int = 8, temperatures: tuple[float, ...] =
                     TEMPERATURES, seed: int = 0) -> torch.Tensor:
    """``model.sample(n, t)`` for each temperature t, every row drawn from the same seed (the
    same noise, scaled), stacked (len(temperatures)·n, …). On its own random state."""
    rows = []
    with inference(model), torch.random.fork_rng(devices=[]):
        for t in temperatures:
            torch.manual_seed(seed)
            rows.append(model.sample(n, t).cpu())
    return torch.cat(rows)


def temperatures(model: Autoencoder, path: str | Path, n: int = 8,
                 temperatures: tuple[float, ...] = TEMPERATURES, seed: int = 0) -> Path:
    """One row of ``n`` prior samples per temperature (:func:`tempered_samples`); an
    :class:`XaeError` for a prior without a temperature."""
    listed = ", ".join(f"{t:g}" for t in temperatures)
    return save_grid(tempered_samples(model, n, temperatures, seed), path, nrow=n,
                     title=f"samples at temperature {listed} (rows, top to bottom; the same "
                           "noise in every row)")


def hierarchy_figures(run_dir: Path, model: Autoencoder, x: torch.Tensor) -> list[Path]:
    """The figures of a hierarchy in ``run_dir/figures``: levels of the test images ``x``,
    samples at several temperatures (skipped, with a warning, for a prior without one) and the
    KL per group from ``run_dir/metrics.jsonl`` (when there is one)."""
    from xae.viz_rates import rate_groups

    out = run_dir / RF.FIGURES
    paths = [levels(model, x, out / RF.LEVELS_PNG)]
    try:
        paths.append(temperatures(model, out / RF.TEMPERATURES_PNG))
    except XaeError as e:
        log.warning("%s was not drawn: %s", RF.TEMPERATURES_PNG, e)
    if (run_dir / RF.LOG).is_file():
        paths.append(rate_groups(run_dir / RF.LOG, out / RF.RATE_GROUPS_PNG))
    return paths
