"""A user's own data from a ``.npy`` or ``.npz`` file, read without pickle.

A ``.npy`` file holds the data alone. A ``.npz`` file holds the data under ``x``, ``X``,
``data`` or ``images`` (or as its only array) and, optionally, integer labels under ``y``,
``labels`` or ``targets``. Shapes ``(N, D)`` are vectors, ``(N, H, W)`` become ``(N, 1, H, W)``,
``(N, C, H, W)`` is kept and ``(N, H, W, C)`` with C in {1, 3, 4} and H, W > 4 is transposed
to channels-first. ``uint8`` is scaled by 1/255, ``bool`` becomes 0/1, other numbers are kept.
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import torch

from xae.config import DataConfig
from xae.data.dataset import Dataset
from xae.data.split import split_dataset, to_float32
from xae.errors import XaeError

logger = logging.getLogger(__name__)

DATA_KEYS: tuple[str, ...] = ("x", "X", "data", "images")
LABEL_KEYS: tuple[str, ...] = ("y", "labels", "targets")
SUFFIXES: tuple[str, ...] = (".npy", ".npz")
_CHANNELS_LAST = (1, 3, 4)


def _resolve(path_str: str) -> Path:
    """Check that ``path_str`` names an existing .npy or .npz file."""
    if not path_str:
        raise XaeError("data set 'arrays' needs a file: set data.path to a .npy "
                       "or .npz file")
    path = Path(path_str).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise XaeError(f"data file '{path}' has extension '{path.suffix}'; save the data with "
                       f"numpy.save (.npy) or numpy.savez (.npz) and point data.path at it")
    if not path.is_file():
        raise XaeError(f"data file '{path}' does not exist; check data.path")
    return path


def _pick(arrays: dict[str, np.ndarray], path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Choose the data and (optional) label arrays of a .npz file."""
    data_key = next((k for k in DATA_KEYS if k in arrays), None)
    if data_key is None:
        others = [k for k in arrays if k not in LABEL_KEYS]
        if len(others) == 1:  # the only array that is not labels
            data_key = others[0]
    if data_key is None:
        raise XaeError(f"data file '{path}' has arrays {sorted(arrays) or 'none'} but no data "
                       f"array; store the data under one of {', '.join(DATA_KEYS)}, e.g. "
                       f"numpy.savez(path, x=data, y=labels)")
    label_key = next((k for k in LABEL_KEYS if k in arrays), None)
    return arrays[data_key], None if label_key is None else arrays[label_key]


def read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read data and labels from ``path`` with ``allow_pickle=False``.

    Raises
    ------
    XaeError
        When the file cannot be read (not numpy, pickled objects, damaged) or has no data.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a .npy file: the data alone
            return loaded, None
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise XaeError(f"data file '{path}' could not be read ({e}); save plain numeric arrays "
                       f"with numpy.save or numpy.savez (no Python objects)") from None
    return _pick(arrays, path)


def to_samples(x: np.ndarray, path: Path) -> torch.Tensor:
    """Scale ``x`` and bring it to ``(N, D)`` or channels-first ``(N, C, H, W)``."""
    if x.ndim < 2 or x.ndim > 4:
        raise XaeError(f"data in '{path}' has shape {x.shape}; expected one row per sample: "
                       f"(N, D) vectors or (N, H, W), (N, C, H, W), (N, H, W, C) images"
                       + ("; reshape 1-D data to (N, 1)" if x.ndim == 1 else ""))
    t = to_float32(x, f"data file '{path}'")
    if t.ndim == 3:
        return t.unsqueeze(1)
    if t.ndim == 4 and t.shape[3] in _CHANNELS_LAST and t.shape[1] > 4 and t.shape[2] > 4:
        logger.info("data in %s has shape %s: reading it as (N, H, W, C) and transposing to "
                    "channels-first (N, C, H, W)", path, tuple(t.shape))
        return t.permute(0, 3, 1, 2).contiguous()
    return t


def to_labels(y: np.ndarray, n: int, path: Path) -> torch.Tensor:
    """Check that ``y`` holds ``n`` integer labels and return them as int64."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise XaeError(f"labels in '{path}' have shape {y.shape} but the data has {n} samples; "
                       f"store one integer label per sample, shape ({n},)")
    if y.dtype.kind in "biu":
        return torch.from_numpy(y.astype(np.int64))
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return torch.from_numpy(y.astype(np.int64))
    raise XaeError(f"labels in '{path}' are not integers (type {y.dtype}); store class "
                   f"indices 0, 1, 2, ... as an integer array, or drop the labels")


def load_arrays(cfg: DataConfig) -> Dataset:
    """Load the user's ``.npy``/``.npz`` file named by ``cfg.path`` and split it.

    Parameters
    ----------
    cfg : DataConfig
        Uses ``path``, ``test_fraction`` and ``seed`` (the split's permutation).

    Returns
    -------
    Dataset
        float32 samples (labels if the file has them); ``info["path"]`` is the file read.
    """
    path = _resolve(cfg.path)
    x_raw, y_raw = read_arrays(path)
    x = to_samples(x_raw, path)
    y = None if y_raw is None else to_labels(y_raw, x.shape[0], path)
    return split_dataset("arrays", x, y, cfg.test_fraction, cfg.seed, info={"path": str(path)})
