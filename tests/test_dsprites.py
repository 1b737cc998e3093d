"""The dSprites-like factor data: grid, drawing (areas, symmetries, positions), the fixed
sample and its oracle, a training run, and bad grids."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from xae.cli import main
from xae.config import DataConfig
from xae.data import load
from xae.data.dsprites import DSprites, RADIUS
from xae.data.factors import FactorSource, factor_source
from xae.errors import XaeError

SMALL = [3, 2, 4, 8, 8]  # 1,536 grid points


def _small(**kw) -> DataConfig:
    return DataConfig(name="dsprites", factor_grid=SMALL, image_size=32, n=400, **kw)


def _points(**fixed: int) -> np.ndarray:
    """Grid points of the full grid: the given factors fixed, the rest at index 0."""
    names = ("shape", "scale", "orientation", "x", "y")
    return np.array([[fixed.get(name, 0) for name in names]], dtype=np.int64)


def test_the_grid_is_dsprites_grid() -> None:
    src = DSprites()
    assert isinstance(src, FactorSource)
    assert src.names == ("shape", "scale", "orientation", "x", "y")
    assert src.sizes == (3, 6, 40, 32, 32) and src.count == 737_280 == 3 * 6 * 40 * 32 * 32
    shape, scale, angle, x, y = src.values
    np.testing.assert_allclose(scale, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert angle[0] == 0.0 and angle[-1] < 2 * math.pi  # [0, 2π): 2π is the same as 0
    np.testing.assert_allclose(np.diff(angle), 2 * math.pi / 40)
    for pos in (x, y):
        assert len(pos) == 32 and pos[0] == 0.0 and pos[-1] == 1.0


def test_the_data_are_binary_images_with_their_factors() -> None:
    ds = load(_small())
    assert ds.train_x.shape == (400, 1, 32, 32) and ds.test_x.shape == (80, 1, 32, 32)
    assert ds.train_x.dtype == torch.float32
    assert set(torch.unique(torch.cat([ds.train_x, ds.test_x])).tolist()) == {0.0, 1.0}
    assert bool((ds.train_x.flatten(1).sum(1) > 0).all())  # every shape is drawn
    tf, sf = ds.info["train_factors"], ds.info["test_factors"]
    assert tf.dtype == torch.int64 and tf.shape == (400, 5) and sf.shape == (80, 5)
    torch.testing.assert_close(ds.train_y, tf[:, 0])
    torch.testing.assert_close(ds.test_y, sf[:, 0])
    # distinct grid points: no image is both in train and in test
    flat = np.ravel_multi_index(torch.cat([tf, sf]).T.numpy(), SMALL)
    assert len(np.unique(flat)) == 480
    assert factor_source(ds.info, "the test") is ds.info["factors"]


def test_the_source_redraws_the_fixed_sample_exactly() -> None:
    ds = load(_small())
    src = ds.info["factors"]
    assert torch.equal(src.images(ds.info["train_factors"].numpy()), ds.train_x)
    assert torch.equal(src.images(ds.info["test_factors"].numpy()), ds.test_x)
    # fresh draws: uniform over the grid, each one drawn as the same point of the sample
    f = src.sample_factors(6000, np.random.default_rng(0))
    assert f.dtype == np.int64 and f.shape == (6000, 5)
    for col, k in enumerate(SMALL):
        counts = np.bincount(f[:, col], minlength=k)
        assert len(counts) == k and (np.abs(counts - 6000 / k) < 5 * math.sqrt(6000 / k)).all()
    pos = {tuple(p): i for i, p in enumerate(ds.info["train_factors"].tolist())}
    hits = [(i, pos[tuple(p)]) for i, p in enumerate(f.tolist()) if tuple(p) in pos]
    assert hits
    images = src.images(f)
    for i, j in hits:
        assert torch.equal(images[i], ds.train_x[j])


def test_the_sample_is_seeded() -> None:
    a, b, c = load(_small()), load(_small()), load(_small(seed=1))
    assert torch.equal(a.info["train_factors"], b.info["train_factors"])
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x)
    assert not torch.equal(a.info["train_factors"], c.info["train_factors"])


def test_areas_are_the_closed_forms_and_scale_with_scale_squared() -> None:
    w = 256  # a fine canvas: the raster's error at the boundary is small next to the area
    src = DSprites(image_size=w)
    radius = RADIUS * w
    counts = {}
    for shape, unit_area in ((0, 2.0), (1, math.pi / 2)):  # square side √2, ellipse π·1·½
        for scale_idx, s in enumerate(src.values[1]):
            # at 27°: an axis-aligned square's raster errs by whole rows and columns
            img = src.render(_points(shape=shape, scale=scale_idx, orientation=3, x=16,
                                     y=16))[0]
            expected = unit_area * (s * radius) ** 2
            counts[shape, scale_idx] = int(img.sum())
            assert abs(img.sum() - expected) < 0.015 * expected, (shape, s)
    for shape in (0, 1, 2):  # the heart has no closed form here, but scales the same
        small = src.render(_points(shape=shape, scale=0, x=16, y=16))[0].sum()
        large = src.render(_points(shape=shape, scale=5, x=16, y=16))[0].sum()
        assert abs(large / small - 4.0) < 0.04


def test_shapes_stay_inside_their_circle_and_the_canvas() -> None:
    src = DSprites()
    f = src.sample_factors(3000, np.random.default_rng(1))
    imgs = src.render(f)
    radius = RADIUS * 64
    span = 64 - 2 * radius
    cx = radius + span * src.values[3][f[:, 3]]
    cy = radius + span * src.values[4][f[:, 4]]
    rows, cols = np.mgrid[0:64, 0:64] + 0.5
    dist = np.hypot(cols[None] - cx[:, None, None], rows[None] - cy[:, None, None])
    reach = src.values[1][f[:, 1]] * radius
    assert (dist[imgs] <= np.broadcast_to(reach[:, None, None], dist.shape)[imgs] + 1e-9).all()
    # the circle at scale 1 touches the canvas' edge: corner positions reach the border
    corner = src.render(_points(shape=0, scale=5, orientation=5, x=31, y=31))[0]
    assert corner[-1].any() or corner[:, -1].any()


def test_symmetries_make_orientation_ambiguous_as_in_dsprites() -> None:
    src = DSprites()
    f = src.sample_factors(300, np.random.default_rng(2))
    f[:, 2] %= 10  # angles in [0, π/2); index + 10 is a quarter turn, + 20 a half turn
    for shape, turn, same in ((0, 10, True), (1, 20, True), (1, 10, False), (2, 10, False),
                              (2, 20, False)):
        g = f.copy()
        g[:, 0] = shape
        turned = g.copy()
        turned[:, 2] += turn
        a, b = src.render(g), src.render(turned)
        if same:
            assert np.array_equal(a, b), (shape, turn)
        else:  # every image changes
            assert (a != b).any(axis=(1, 2)).all(), (shape, turn)


def test_positions_move_the_centroid_linearly() -> None:
    src = DSprites()
    radius = RADIUS * 64
    step = (64 - 2 * radius) / 31
    for shape in (0, 1, 2):
        f = np.repeat(_points(shape=shape, scale=3, orientation=7, y=12), 32, axis=0)
        f[:, 3] = np.arange(32)
        imgs = src.render(f).astype(float)
        cols = np.arange(64) + 0.5
        mass = imgs.sum(axis=(1, 2))
        cx = (imgs.sum(axis=1) * cols).sum(1) / mass
        cy = (imgs.sum(axis=2) * cols).sum(1) / mass
        assert (np.diff(cx) > 0).all()
        slope, icept = np.polyfit(np.arange(32), cx, 1)
        assert abs(slope - step) < 0.02 * step
        assert np.abs(cx - (slope * np.arange(32) + icept)).max() < 0.3
        assert np.ptp(cy) < 0.5  # moving x leaves the rows alone (up to the raster)


def test_dsprites_trains_with_a_conv_net(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--data", "dsprites", "--steps", "60", "--no-progress", "--set",
                 "data.factor_grid=[3,2,4,8,8]", "data.image_size=32", "data.n=512",
                 "model.encoder=conv", "model.decoder=conv", "model.conv.channels=[16,32]",
                 "model.latent_dim=4", "train.log_every=20", "train.figures=false",
                 "--out", str(out)]) == 0
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(log) >= 3 and log[-1]["loss"] < 0.8 * log[0]["loss"]


@pytest.mark.parametrize("grid,needles", [
    ([3, 1, 40, 32, 32], ["'scale'", "constant"]),
    ([3, 6, 40, 32, 1], ["'y'", "constant"]),
    ([1, 6, 40, 32, 32], ["'shape'", "constant"]),
    ([4, 6, 40, 32, 32], ["'shape'", "at most 3"]),
    ([3, 6, 40, 32], ["5 sizes"]),
])
def test_bad_grids_are_named(grid, needles) -> None:
    with pytest.raises(XaeError) as info:
        load(DataConfig(name="dsprites", factor_grid=grid))
    assert all(n in str(info.value) for n in needles), str(info.value)


def test_bad_grid_on_the_cli(tmp_path: Path, capsys) -> None:
    code = main(["train", "--data", "dsprites", "--steps", "2", "--no-progress", "--set",
                 "data.factor_grid=[3,6,1,32,32]", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "'orientation'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_bad_sizes_and_indices() -> None:
    with pytest.raises(XaeError, match="exceed the 1536 points"):
        load(DataConfig(name="dsprites", factor_grid=SMALL, n=1500))
    src = DSprites(SMALL, 32)
    with pytest.raises(XaeError, match="factor 'x' has 8 values"):
        src.images(np.array([[0, 0, 0, 8, 0]]))
    with pytest.raises(XaeError, match=r"shape \(n, 5\)"):
        src.images(np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(XaeError, match="data.image_size"):
        DSprites(SMALL, 4)
