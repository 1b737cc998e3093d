"""Data sets as in-memory tensors: ``load(cfg)`` dispatches on ``cfg.name`` through a table.

Sources: ``digits`` (scikit-learn's bundled 8x8 digits), ``mnist`` and ``fashion-mnist`` (IDX
files; the latter from Debian's ``dataset-fashion-mnist``), ``arrays``
(a user's ``.npy``/``.npz``), ``linear-gaussian`` (synthetic pPCA data with known
parameters), ``dsprites`` (dSprites-like shapes drawn on a factor grid, with their factors),
``ptb`` and ``text`` (sentences as padded token ids: :mod:`xae.data.text`), ``h5ad`` and
``pbmc`` (cells × gene counts: :mod:`xae.data.counts`).
``binarize`` draws Bernoulli pixels, statically (once, seeded) or dynamically
(a new draw per batch, by the trainer; Salakhutdinov & Murray 2008, Burda et al. 2016).
"""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable

import torch

from xae.config import DataConfig
from xae.data.arrays import load_arrays
from xae.data.counts import load_h5ad, load_pbmc
from xae.data.dataset import Dataset
from xae.data.digits import load_digits
from xae.data.dsprites import load_dsprites
from xae.data.fashion import load_fashion_mnist
from xae.data.mnist import load_mnist
from xae.data.split import check_fraction, validate
from xae.data.synthetic import load_linear_gaussian
from xae.data.synthetic_counts import load_synthetic_counts
from xae.data.text import load_ptb, load_text
from xae.tokens import TEXT_SOURCES
from xae.errors import XaeError

__all__ = ["BINARIZE_MODES", "SOURCES", "Dataset", "binarize", "load"]

#: Data set name -> function that loads it from a :class:`~xae.config.DataConfig`.
SOURCES: dict[str, Callable[[DataConfig], Dataset]] = {
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "arrays": load_arrays,
    "linear-gaussian": load_linear_gaussian,
    "dsprites": load_dsprites,
    "ptb": load_ptb,
    "text": load_text,
    "h5ad": load_h5ad,
    "pbmc": load_pbmc,
    "synthetic-counts": load_synthetic_counts,
}

#: Valid values of ``DataConfig.binarize``.
BINARIZE_MODES: tuple[str, ...] = ("none", "static", "dynamic")


def _check_unit_range(x: torch.Tensor, what: str) -> None:
    """Raise XaeError unless every value of ``x`` lies in [0, 1]."""
    if x.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    if not (lo >= 0.0 and hi <= 1.0):
        raise XaeError(f"binarizing needs values in [0, 1] but {what} has values in "
                       f"[{lo:.4g}, {hi:.4g}]; scale the data to [0, 1] or set data.binarize=none")


def binarize(x: torch.Tensor, generator: torch.Generator | None = None,
             check: bool = True) -> torch.Tensor:
    """One Bernoulli draw per value: 1 with probability ``x``, else 0.

    Parameters
    ----------
    x : torch.Tensor
        Intensities in [0, 1] (e.g. grayscale pixels).
    generator : torch.Generator, optional
        Source of randomness (on ``x``'s device); the global one when omitted.
    check : bool
        Verify that ``x`` lies in [0, 1] (one pass over ``x`` and a device sync).

    Returns
    -------
    torch.Tensor
        A tensor of 0s and 1s with ``x``'s shape, dtype and device.
    """
    if check:  # the trainer skips it: its data were checked once, at load time
        _check_unit_range(x, "the tensor")
    return torch.bernoulli(x, generator=generator)


def _unknown_name(name: str) -> XaeError:
    valid = sorted(SOURCES)
    near = difflib.get_close_matches(str(name).lower(), valid, n=1, cutoff=0.4)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    return XaeError(f"unknown data set '{name}'{hint} (valid names: {', '.join(valid)})")


def _apply_binarize(ds: Dataset, mode: str, seed: int) -> Dataset:
    """Binarize ``ds`` as ``mode`` says; the test draw is the same for static and dynamic."""
    if mode == "none":
        return ds
    for split in ("train", "test"):
        _check_unit_range(getattr(ds, f"{split}_x"), f"data set '{ds.name}' {split}_x")
    generator = torch.Generator().manual_seed(seed)
    test_x = binarize(ds.test_x, generator)  # drawn first: the same in both modes
    train_x = binarize(ds.train_x, generator) if mode == "static" else ds.train_x
    return dataclasses.replace(ds, train_x=train_x, test_x=test_x)


def source_config(run: DataConfig, name: str | None = None,
                  data_dir: str | None = None) -> DataConfig:
    """The data settings for reading the source ``name`` beside a run trained on ``run``:
    the run's own settings (binarization, split, seed), with another source read from its
    usual place (the run's ``path`` and ``data_dir`` belong to the run's source) unless
    ``data_dir`` says where."""
    cfg = run
    if name is not None and name != run.name:
        cfg = dataclasses.replace(run, name=name, path="", data_dir="")
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data_dir=data_dir)
    return cfg


def load(cfg: DataConfig) -> Dataset:
    """Load the data set ``cfg.name``, validate it and apply ``cfg.binarize``.

    Parameters
    ----------
    cfg : DataConfig
        Which data set and how to split and binarize it (see :class:`~xae.config.DataConfig`).

    Returns
    -------
    Dataset
        float32 train and test splits on the CPU. With ``binarize="static"`` both are one
        fixed Bernoulli draw seeded by ``cfg.seed``; with ``"dynamic"`` the test split is such
        a draw and the train split stays grayscale (the trainer redraws every batch with
        :func:`binarize`). ``info["binarize"]`` records the mode.

    Raises
    ------
    XaeError
        For an unknown name or binarize mode, a test fraction outside (0, 1), missing or
        corrupt files, NaN or infinite values, splits with fewer than 2 samples, or
        binarizing data outside [0, 1].
    """
    source = SOURCES.get(cfg.name)
    if source is None:
        raise _unknown_name(cfg.name)
    if cfg.binarize not in BINARIZE_MODES:
        raise XaeError(f"data.binarize must be one of {', '.join(BINARIZE_MODES)}, "
                       f"got {cfg.binarize!r}")
    check_fraction(cfg.test_fraction)
    if cfg.binarize != "none" and cfg.name in TEXT_SOURCES:
        raise XaeError(f"data.binarize={cfg.binarize} draws pixels, but {cfg.name} is text "
                       f"(token ids); leave data.binarize=none")
    ds = validate(source(cfg))
    ds.info["binarize"] = cfg.binarize
    return _apply_binarize(ds, cfg.binarize, cfg.seed)
