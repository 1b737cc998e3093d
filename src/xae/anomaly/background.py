"""The background model of the likelihood ratio (Ren et al. 2019): the foreground run's own
config trained on its training images with a share μ of the pixels replaced by random grey
levels, so that it learns the population's low-level statistics but not its semantics.

The perturbation is drawn once (seeded) over the training set; the test split is left clean.
The background run is an ordinary run folder with one more file, ``background.json``, which
says which run it is the background of, at which rate and seed.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from xae.errors import XaeError
from xae.fileio import write_json

MARKER = "background.json"
DEFAULT_RATE = 0.2  # Ren et al. used μ in [0.1, 0.3] on Fashion-MNIST
LEVELS = 256


def perturb(x: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """``x`` (values in [0, 1]) with each value replaced, with probability ``rate``, by a level
    k/255 drawn uniformly from the 256."""
    if not 0.0 < rate < 1.0:
        raise XaeError(f"the perturbation rate μ must be in (0, 1), got {rate}; Ren et al. used "
                       f"0.1 to 0.3")
    if x.numel() and not (float(x.min()) >= 0.0 and float(x.max()) <= 1.0):
        raise XaeError("the background model replaces pixels by grey levels in [0, 1], but this "
                       f"data spans [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    replace = torch.rand(x.shape, generator=generator) < rate
    levels = torch.randint(0, LEVELS, x.shape, generator=generator).to(x.dtype) / (LEVELS - 1)
    return torch.where(replace, levels, x)


def default_folder(run: str | Path) -> Path:
    """Where ``run``'s background goes by default: a folder beside it, ``<run>-background``."""
    run = Path(run)
    return run.with_name(f"{run.name}-background")


def fit_background(run: str | Path, out: str | Path | None = None, *,
                   rate: float = DEFAULT_RATE, seed: int = 0) -> Path:
    """Train ``run``'s config on its perturbed training images into ``out`` (default
    :func:`default_folder`); returns the folder. ``out`` must not hold a run yet."""
    from xae.data import load
    from xae.train.checkpoint import read_config
    from xae.train.loop import train

    out = Path(out) if out is not None else default_folder(run)
    if out.exists() and any(out.iterdir()):
        raise XaeError(f"the background folder {out} already holds files; reuse it with "
                       f"--background {out}, or name a new folder")
    cfg = read_config(run)
    data = load(cfg.data)
    g = torch.Generator().manual_seed(seed)
    data = dataclasses.replace(data, train_x=perturb(data.train_x, rate, g))
    train(cfg, out, data=data)
    write_json(out / MARKER, {"foreground": str(Path(run).resolve()), "perturb": rate,
                              "seed": seed})
    return out
