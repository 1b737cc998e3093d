"""dSprites-like shapes drawn procedurally on dSprites' factor grid (Matthey et al. 2017).

DeepMind's renderer was never released, so these are *dSprites-like* images: the same factor
grid (shape: square, ellipse, heart; scale: 6 values in [0.5, 1]; orientation: 40 values in
[0, 2π); x and y: 32 values each in [0, 1]; 3·6·40·32·32 = 737,280 combinations) and 64×64
binary images, drawn by the rule below, not the original pixels.

The drawing. A W×W canvas has pixel (row i, column j) centred at (x, y) = (j + ½, i + ½), x to
the right and y down. Each shape is a region f(u, v) ≤ 0 of a unit frame (u right, v down)
that fits inside the unit disk:

* square: max(|u|, |v|) ≤ 1/√2 (side √2, corners on the unit circle; area 2);
* ellipse: u² + (2v)² ≤ 1 (semi-axes 1 along u and ½ along v; area π/2);
* heart: the algebraic heart (X² + Y² − 1)³ − X²Y³ ≤ 0 with X = 1.25u, Y = 0.25 − 1.25v
  (tip down; its farthest points from (X, Y) = (0, 0.25) lie at distance 1.25).

At scale s the unit frame is stretched to R·s pixels with R = 0.16·W (about 10 px at 64×64),
rotated by the orientation θ (clockwise as displayed, since y points down), and centred at
(R + x·(W − 2R), R + y·(W − 2R)): the positions are spread over pixel centres inside a margin
R, so every shape stays on the canvas at every scale, as in dSprites. A pixel is on (1) when
its centre lies in the rotated, scaled, shifted region and off (0) otherwise. As in the
original, symmetry makes orientation ambiguous: the square looks the same every 90°, the
ellipse every 180°; only the heart has a distinct image at each of the 40 angles.

Rendering is vectorised numpy (a few 10⁴ images of 64×64 a second on one core), so the data
are drawn on the fly, not cached. The data set is a fixed uniform sample of distinct grid
points seeded by ``data.seed``: ``data.n`` training images and ``round(n · test_fraction)``
test images, held as float32 (16 KiB per 64×64 image: 50,000 images take 800 MiB).
``data.factor_grid`` sets the number of values of each factor (a coarser grid, e.g.
``[3, 2, 4, 8, 8]`` for tests) and ``data.image_size`` the canvas.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from xae.config import DataConfig
from xae.data.dataset import Dataset
from xae.data.factors import FACTORS, TEST_FACTORS, TRAIN_FACTORS
from xae.data.split import check_fraction, to_float32
from xae.errors import XaeError, positive_int

SHAPES: tuple[str, ...] = ("square", "ellipse", "heart")
NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "x", "y")
#: dSprites' grid: the number of values of each factor in NAMES.
FULL_GRID: tuple[int, ...] = (3, 6, 40, 32, 32)
#: The shape's circumscribed radius at scale 1 (and the margin of the positions), as a
#: fraction of the image size.
RADIUS = 0.16
_MIN_SIZE = 8
_CHUNK = 1024  # images rendered at once: a few (chunk, W, W) float32 temporaries
_HALF_SIDE = 1.0 / math.sqrt(2.0)


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= _HALF_SIDE


def _ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + 4.0 * v * v <= 1.0


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = 1.25 * u, 0.25 - 1.25 * v
    r = x * x + y * y - 1.0
    return r * r * r - x * x * y * y * y <= 0.0


_DRAW = (_square, _ellipse, _heart)


def check_grid(sizes: object, image_size: object) -> tuple[tuple[int, ...], int]:
    """The factor grid and image size, or an XaeError naming the key (and factor) at fault."""
    if not isinstance(sizes, (list, tuple)) or len(sizes) != len(NAMES):
        raise XaeError(f"data.factor_grid must list {len(NAMES)} sizes, one per factor "
                       f"({', '.join(NAMES)}), e.g. {list(FULL_GRID)}; got {sizes!r}")
    for name, k in zip(NAMES, sizes):
        if isinstance(k, bool) or not isinstance(k, int):
            raise XaeError(f"data.factor_grid: the size of factor '{name}' must be an integer, "
                           f"got {k!r}")
        if k < 2:
            raise XaeError(f"data.factor_grid leaves factor '{name}' constant ({k} value(s)); "
                           f"every factor needs at least 2 values, e.g. {list(FULL_GRID)}")
    if sizes[0] > len(SHAPES):
        raise XaeError(f"data.factor_grid: factor 'shape' has at most {len(SHAPES)} values "
                       f"({', '.join(SHAPES)}), got {sizes[0]}")
    size = positive_int(image_size, "data.image_size", " for 'dsprites'")
    if size < _MIN_SIZE:
        raise XaeError(f"data.image_size must be at least {_MIN_SIZE} pixels for 'dsprites', "
                       f"got {size}")
    return tuple(int(k) for k in sizes), size


class DSprites:
    """The dSprites-like factor grid and its renderer: a :class:`~xae.data.factors.FactorSource`.

    Parameters
    ----------
    sizes : sequence of int
        The number of values of shape (≤ 3), scale, orientation, x and y; each ≥ 2.
    image_size : int
        The canvas' height and width in pixels.
    """

    def __init__(self, sizes: tuple[int, ...] = FULL_GRID, image_size: int = 64) -> None:
        self.sizes, self.image_size = check_grid(sizes, image_size)
        self.names = NAMES
        k_shape, k_scale, k_angle, k_x, k_y = self.sizes
        #: The value of each index of each factor: shape ids, scales, angles (radians), x, y.
        self.values = (np.arange(k_shape), np.linspace(0.5, 1.0, k_scale),
                       2.0 * np.pi * np.arange(k_angle) / k_angle,
                       np.linspace(0.0, 1.0, k_x), np.linspace(0.0, 1.0, k_y))

    @property
    def count(self) -> int:
        """The number of grid points (737,280 on dSprites' grid)."""
        return math.prod(self.sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` grid points drawn uniformly (with replacement): int64 indices, ``(n, 5)``."""
        return rng.integers(0, self.sizes, size=(n, len(self.sizes)), dtype=np.int64)

    def _check_factors(self, factors: object) -> np.ndarray:
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != len(self.sizes) or f.dtype.kind not in "iu":
            raise XaeError(f"factor indices must be an integer array of shape (n, "
                           f"{len(self.sizes)}), got {f.dtype} {f.shape}")
        bad = (f < 0) | (f >= np.asarray(self.sizes))
        if bad.any():
            col = int(np.nonzero(bad.any(axis=0))[0][0])
            raise XaeError(f"factor '{self.names[col]}' has {self.sizes[col]} values (indices "
                           f"0..{self.sizes[col] - 1}), got index {int(f[bad.any(1), col][0])}")
        return f.astype(np.int64, copy=False)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """The binary images of the factor indices ``(n, 5)``: bool, ``(n, W, W)``."""
        f = self._check_factors(factors)
        out = np.empty((f.shape[0], self.image_size, self.image_size), dtype=bool)
        for start in range(0, f.shape[0], _CHUNK):
            out[start:start + _CHUNK] = self._render(f[start:start + _CHUNK])
        return out

    def _render(self, f: np.ndarray) -> np.ndarray:
        w = self.image_size
        radius = RADIUS * w
        scale = self.values[1][f[:, 1]] * radius
        angle = self.values[2][f[:, 2]]
        cos, sin = np.cos(angle), np.sin(angle)
        cos[np.abs(cos) < 1e-12] = 0.0  # quarter turns exact: rotating by 90° swaps u and v
        sin[np.abs(sin) < 1e-12] = 0.0
        span = w - 2.0 * radius
        cx = radius + span * self.values[3][f[:, 3]]
        cy = radius + span * self.values[4][f[:, 4]]
        centres = np.arange(w, dtype=np.float64) + 0.5
        dx = ((centres[None, :] - cx[:, None]) / scale[:, None]).astype(np.float32)[:, None, :]
        dy = ((centres[None, :] - cy[:, None]) / scale[:, None]).astype(np.float32)[:, :, None]
        c = cos.astype(np.float32)[:, None, None]
        s = sin.astype(np.float32)[:, None, None]
        out = np.zeros((f.shape[0], w, w), dtype=bool)
        for shape_id in np.unique(f[:, 0]):
            m = f[:, 0] == shape_id
            u = c[m] * dx[m] + s[m] * dy[m]
            v = c[m] * dy[m] - s[m] * dx[m]
            out[m] = _DRAW[shape_id](u, v)
        return out

    def images(self, factors: np.ndarray) -> torch.Tensor:
        """The images of the factor indices ``(n, 5)``: float32 0/1, ``(n, 1, W, W)``."""
        return to_float32(self.render(factors), "dsprites").unsqueeze(1)


def load_dsprites(cfg: DataConfig) -> Dataset:
    """A fixed sample of distinct dSprites-like grid points, drawn uniformly by ``cfg.seed``.

    Parameters
    ----------
    cfg : DataConfig
        Uses ``factor_grid``, ``image_size``, ``n`` (training images), ``test_fraction``
        (the test split has ``round(n · test_fraction)`` more) and ``seed``.

    Returns
    -------
    Dataset
        ``(N, 1, W, W)`` binary float32 images; labels are the shape index; ``info`` holds
        the :class:`DSprites` source (``"factors"``) and the int64 factor indices ``(N, 5)`` of
        each split (``"train_factors"``, ``"test_factors"``).
    """
    source = DSprites(cfg.factor_grid, cfg.image_size)
    n_train = positive_int(cfg.n, "data.n", " for 'dsprites'")
    n_test = round(n_train * check_fraction(cfg.test_fraction))
    if n_train + n_test > source.count:
        raise XaeError(f"data.n = {n_train} training plus {n_test} test images exceed the "
                       f"{source.count} points of the factor grid {list(source.sizes)}; lower "
                       f"data.n or use a finer data.factor_grid")
    rng = np.random.default_rng(cfg.seed)
    flat = rng.choice(source.count, n_train + n_test, replace=False)
    factors = np.stack(np.unravel_index(flat, source.sizes), axis=1).astype(np.int64)
    train_f, test_f = factors[:n_train], factors[n_train:]
    info = {FACTORS: source, TRAIN_FACTORS: torch.from_numpy(train_f),
            TEST_FACTORS: torch.from_numpy(test_f)}
    return Dataset("dsprites", source.images(train_f), torch.from_numpy(train_f[:, 0].copy()),
                   source.images(test_f), torch.from_numpy(test_f[:, 0].copy()), info)
