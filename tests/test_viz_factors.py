"""Latent traversals sorted by KL per dimension, and the factor × latent MI heat map."""
from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

import xae
from xae.errors import XaeError
from xae.registry import build
from xae.viz_factors import ANNOTATE_CELLS, mi_heatmap, traversals


@pytest.fixture(scope="module")
def vae4(tmp_path_factory):
    """A tiny VAE with 4 latents trained briefly on the digits, and 200 test images."""
    cfg = xae.preset("vae", latent_dim=4, **{"model.mlp.hidden": [32], "steps": 40,
                                             "progress": False, "figures": False,
                                             "log_every": 20, "train.seed": 3})
    run = xae.train(cfg, tmp_path_factory.mktemp("viz_factors") / "run")
    model = xae.load(run)
    x = xae.data.load(model.config.data).test_x[:200]
    return model, x


def test_traversal_rows_follow_the_kl_of_each_dimension(vae4, tmp_path) -> None:
    model, x = vae4
    steps, images = 7, 2
    t = traversals(model, x, tmp_path / "trav.png", span=2.5, steps=steps, images=images)
    # the KL order, computed here from the closed form ½(μ² + σ² − 1 − log σ²)
    with torch.no_grad():
        q = model.encode(x).posterior
    mu, var = q.mean.double(), q.logvar.double().exp()
    kl = (0.5 * (mu ** 2 + var - 1 - var.log())).mean(0)
    assert t.kl == pytest.approx(kl.tolist(), rel=1e-5, abs=1e-8)
    assert t.order == sorted(range(4), key=lambda j: -float(kl[j]))
    # one row per dimension, steps × images tiles of 8×8 with a 1-pixel border
    h, w = model.data_shape[1:]
    assert t.grid.shape == (4 * (h + 1) + 1, images * steps * (w + 1) + 1)
    # the tile in row r, image i, column c is decode(mean of image i with z[order[r]] = v_c)
    values = torch.linspace(-2.5, 2.5, steps, dtype=torch.float64)
    assert t.values == pytest.approx(values.tolist())
    for r, i, c in [(0, 0, 0), (3, 1, steps - 1), (1, 1, 3)]:
        z = q.mean[i].clone()
        z[t.order[r]] = float(values[c])
        with torch.no_grad():
            want = model.decode(z[None])[0, 0].clamp(0, 1).numpy()
        top, left = 1 + r * (h + 1), 1 + (i * steps + c) * (w + 1)
        np.testing.assert_allclose(t.grid[top:top + h, left:left + w], want, atol=1e-5)
    png = mpimg.imread(t.path)
    assert t.path.is_file() and png.ndim == 3
    # the figure is sized to the grid's aspect: taller than a one-row traversal of itself
    one = traversals(model, x, tmp_path / "one.png", span=2.5, steps=steps, images=images,
                     dims=[t.order[-1]])
    assert one.order == [t.order[-1]] and one.grid.shape[0] == h + 2
    assert mpimg.imread(one.path).shape[0] < png.shape[0]


def test_traversals_refuse_a_spatial_code_and_bad_settings(vae4, tmp_path) -> None:
    cfg = xae.preset("conv-vae", latent_dim=16, **{"model.conv_map.channels": [8, 16]})
    conv = build(cfg, (1, 8, 8))
    assert len(conv.latent_shape) == 3
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(XaeError, match="flat continuous latent.*spatial map"):
        traversals(conv, x, tmp_path / "t.png")
    model, x = vae4
    with pytest.raises(XaeError, match="dims must be distinct"):
        traversals(model, x, tmp_path / "t.png", dims=[0, 4])
    with pytest.raises(XaeError, match="steps ≥ 2"):
        traversals(model, x, tmp_path / "t.png", steps=1)
    assert not list(tmp_path.iterdir())  # nothing written


def test_mi_heatmap_orders_latents_by_their_largest_mi(tmp_path) -> None:
    mi = np.array([[0.1, 0.2, 0.0],   # z0: largest 0.2
                   [0.0, 0.0, 0.9],   # z1: 0.9
                   [0.05, 0.01, 0.0],  # z2: 0.05
                   [0.6, 0.3, 0.1]])  # z3: 0.6
    path, order = mi_heatmap(mi.tolist(), ["shape", "scale", "x"], tmp_path / "mi.png")
    assert order == [1, 3, 0, 2]
    assert mpimg.imread(path).ndim == 3
    # ties keep the index order; a larger matrix (not annotated) still orders the same way
    big = np.random.default_rng(0).uniform(size=(40, 5))
    big[7] = big[3] = 2.0
    _, order = mi_heatmap(big, list("abcde"), tmp_path / "big.png")
    assert big.size > ANNOTATE_CELLS
    assert order[:2] == [3, 7] and sorted(order) == list(range(40))
    assert all(big[a].max() >= big[b].max() for a, b in zip(order, order[1:]))


def test_mi_heatmap_refuses_a_matrix_that_does_not_match_the_factors(tmp_path) -> None:
    with pytest.raises(XaeError, match=r"\(latent dims, factors\).*got shape \[3, 4\]"):
        mi_heatmap(np.zeros((3, 4)), ["a", "b", "c"], tmp_path / "mi.png")  # transposed
    assert not (tmp_path / "mi.png").exists()
