"""scikit-learn's bundled digits: 1,797 real 8x8 handwritten digits (Alpaydin & Kaynak, UCI 1998).

The default data set: it ships with scikit-learn, so training works with no download.
"""
from __future__ import annotations

import numpy as np
import torch

from xae.config import DataConfig
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
    from sklearn.datasets import load_digits  # imported here: sklearn takes ~1 s to import

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64) / _MAX_VALUE
    x = to_float32(images, "the digits data").unsqueeze(1)
    y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    return split_dataset("digits", x, y, cfg.test_fraction, cfg.seed)
