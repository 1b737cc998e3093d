"""scikit-learn's bundled digits: 1,797 real 8x8 handwritten digits (Alpaydin & Kaynak, UCI 1998).

The default data set: it ships with scikit-learn, so training works with no download. The file
(``sklearn/datasets/data/digits.csv.gz``: 64 pixel values and the label per row) is read here
without importing scikit-learn, whose import alone takes about a second, paid by every
training process on the digits.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from xae.config import DataConfig
from xae.errors import XaeError
from xae.data.dataset import Dataset
from xae.data.split import split_dataset, to_float32

#: Pixel values in load_digits are counts of set pixels in 4x4 blocks, 0..16.
_MAX_VALUE = 16.0


def load_digits(cfg: DataConfig) -> Dataset:
    """Load the digits as ``(N, 1, 8, 8)`` images in [0, 1] with int64 labels 0..9.

    Parameters
    ----------
    cfg : DataConfig
        Uses ``test_fraction`` and ``seed`` (the split's permutation).

    Returns
    -------
    Dataset
        Train and test splits of the 1,797 images.
    """
    with gzip.open(digits_file(), "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    images = rows[:, :-1].reshape(-1, 8, 8) / _MAX_VALUE
    x = to_float32(images, "the digits data").unsqueeze(1)
    y = torch.from_numpy(rows[:, -1].astype(np.int64))
    return split_dataset("digits", x, y, cfg.test_fraction, cfg.seed)


def digits_file() -> Path:
    """scikit-learn's ``digits.csv.gz``, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / \
        "digits.csv.gz" if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise XaeError("the digits data ships with scikit-learn, which is not installed (or "
                       "lacks sklearn/datasets/data/digits.csv.gz); pip install scikit-learn")
    return path
