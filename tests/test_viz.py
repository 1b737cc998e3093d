"""Figures on a real (briefly trained) model and the real digits: valid, non-blank PNGs."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

import xae
import xae.data
from xae import viz
from xae.data import Dataset
from xae.errors import XaeError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ["reconstructions", "samples", "latent_map", "holes", "traversals",
           "curves"]  # holes: 2-D latents; traversals: flat Gaussian codes


def check_png(path: Path, lo: int = 150, hi: int = 1200) -> np.ndarray:
    """Assert ``path`` is a small, decodable, non-blank PNG with sides in [lo, hi] pixels."""
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size < 200_000
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert lo <= h <= hi and lo <= w <= hi, (path.name, img.shape)
    assert img[..., :3].std() > 0.01, f"{path.name} is blank"
    return img


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def write_metrics(path: Path, lines: int) -> Path:
    recs = [{"step": 10 * (i + 1), "epoch": 0.1 * (i + 1), "loss": 30.0 - i,
             "distortion": 29.0 - 1.5 * i, "rate": 1.0 + 0.5 * i, "beta": 0.5 * (i + 1),
             "lr": 1e-3, "samples_per_s": 1000.0} for i in range(lines)]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return xae.data.load(xae.preset("vae").data)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = xae.preset("vae", latent_dim=2)
    cfg.train.steps, cfg.train.log_every = 20, 5
    cfg.train.progress = cfg.train.figures = False
    return xae.train(cfg, tmp_path_factory.mktemp("viz") / "run")


def build(preset: str, data: Dataset, **overrides: object) -> xae.Autoencoder:
    torch.manual_seed(0)
    return xae.build(xae.preset(preset, **overrides), data.shape)


# ---------------------------------------------------------------- the run folder

@pytest.mark.parametrize("training", [True, False])
def test_write_figures_on_a_trained_run(trained_run: Path, digits: Dataset,
                                        training: bool) -> None:
    model = xae.load(trained_run)
    model.train(training)
    paths = viz.write_figures(trained_run, model, digits, n=64)
    assert [p.name for p in paths] == [f"{name}.png" for name in FIGURES]
    assert all(p.parent == trained_run / "figures" for p in paths)
    for p in paths:
        check_png(p)
    assert model.training is training
    assert no_temp_files(trained_run / "figures")


def test_holes_figure_only_for_two_dimensional_gaussian_latents(digits: Dataset,
                                                                 tmp_path: Path) -> None:
    model = build("vae", digits, latent_dim=3)
    with pytest.raises(xae.XaeError, match="2 latent dimensions"):
        viz.holes_map(model, digits.test_x, tmp_path / "holes.png")
    paths = viz.write_figures(tmp_path, model, digits, n=16)
    assert "holes.png" not in [p.name for p in paths]
    check_png(viz.holes_map(build("vae", digits, latent_dim=2), digits.test_x,
                            tmp_path / "holes.png"))


def test_write_figures_without_a_log_skips_curves(tmp_path: Path, digits: Dataset,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    paths = viz.write_figures(tmp_path, build("vae", digits), digits, n=10)
    assert [p.name for p in paths] == ["reconstructions.png", "samples.png", "latent_map.png",
                                       "traversals.png"]
    assert "metrics.jsonl" in caplog.text


def test_reconstructions_pair_inputs_with_outputs(tmp_path: Path, digits: Dataset) -> None:
    model = build("vae", digits)
    for n in (1, 7, 64):
        check_png(viz.reconstructions(model, digits.test_x[:n], tmp_path / f"r{n}.png"))


# ---------------------------------------------------------------- latent map

@pytest.mark.parametrize("latent_dim, labelled", [(2, True), (16, True), (16, False),
                                                  (1, True)])
def test_latent_map(tmp_path: Path, digits: Dataset, latent_dim: int, labelled: bool) -> None:
    model = build("vae", digits, latent_dim=latent_dim)
    y = digits.test_y if labelled else None
    path = viz.latent_map(model, digits.test_x, y, tmp_path / "map.png")
    rgb = check_png(path)[..., :3].reshape(-1, 3)
    saturated = rgb[rgb.max(1) - rgb.min(1) > 0.25]
    hues = len(np.unique(saturated.round(1), axis=0))
    assert hues > 30 if labelled else hues < 15  # ten class colours vs one colour


def test_latent_map_of_a_deterministic_code_with_many_classes(tmp_path: Path,
                                                               digits: Dataset) -> None:
    model = build("ae", digits, latent_dim=3)
    y = torch.arange(digits.test_x.shape[0]) % 25  # beyond ten classes: a colorbar
    check_png(viz.latent_map(model, digits.test_x, y, tmp_path / "map.png"))


# ---------------------------------------------------------------- grids

def test_image_grid_shape_arithmetic() -> None:
    x = torch.rand(64, 1, 8, 8)
    grid = viz.image_grid(x, nrow=8)
    assert grid.shape == (8 * 9 + 1, 8 * 9 + 1) == (73, 73)
    np.testing.assert_allclose(grid[1:9, 1:9], x[0, 0].numpy())
    np.testing.assert_allclose(grid[1:9, 10:18], x[1, 0].numpy())
    np.testing.assert_allclose(grid[10:18, 1:9], x[8, 0].numpy())
    assert viz.image_grid(torch.rand(10, 1, 8, 8), nrow=4).shape == (3 * 9 + 1, 4 * 9 + 1)
    assert viz.image_grid(torch.rand(10, 8, 8)).shape == (3 * 9 + 1, 4 * 9 + 1)
    assert viz.image_grid(torch.rand(5, 3, 4, 6)).shape == (2 * 5 + 1, 3 * 7 + 1, 3)
    assert viz.image_grid(torch.rand(3, 1, 8, 8), nrow=10).shape == (9 + 1, 3 * 9 + 1)


def test_image_grid_values_clamped_and_vectors_scaled() -> None:
    grid = viz.image_grid(torch.randn(6, 3, 5, 5) * 3)
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    vec = viz.image_grid(torch.randn(7, 20) * 5)
    assert vec.shape == (7, 20) and vec.min() == 0.0 and vec.max() == 1.0
    assert (viz.image_grid(torch.ones(2, 4)) == 0).all()
    with pytest.raises(XaeError):
        viz.image_grid(torch.rand(0, 1, 8, 8))


def test_save_grid_images_and_rgb(tmp_path: Path, digits: Dataset) -> None:
    check_png(viz.save_grid(digits.test_x[:10], tmp_path / "g.png", nrow=5, title="ten"))
    img = check_png(viz.save_grid(torch.rand(9, 3, 6, 6), tmp_path / "rgb.png"))
    assert np.abs(img[..., 0] - img[..., 1]).max() > 0.1  # really in colour
    assert no_temp_files(tmp_path)


def test_vector_data_figures(tmp_path: Path) -> None:
    cfg = xae.preset("linear-vae")
    data = xae.data.load(cfg.data)
    assert len(data.shape) == 1
    model = xae.build(cfg, data.shape)
    check_png(viz.save_grid(data.test_x[:64], tmp_path / "grid.png", title="vectors"))
    check_png(viz.save_grid(model.sample(16), tmp_path / "s.png"))
    write_metrics(tmp_path / "metrics.jsonl", 3)
    for p in viz.write_figures(tmp_path, model, data, n=32):
        check_png(p)


# ---------------------------------------------------------------- curves

@pytest.mark.parametrize("lines", [1, 3])
def test_curves(tmp_path: Path, lines: int) -> None:
    metrics = write_metrics(tmp_path / "metrics.jsonl", lines)
    check_png(viz.curves(metrics, tmp_path / "curves.png"))


def test_curves_draw_the_held_out_evaluations_beside_training() -> None:
    train = [{"step": s, "loss": 10.0 - s, "distortion": 9.0 - s, "rate": 1.0, "beta": 1.0}
             for s in range(1, 7)]
    held = [{"step": s, "split": "validation", "loss": 11.0 - s, "distortion": 9.5 - s,
             "rate": 1.5} for s in (3, 6)]
    fig = viz.curves_figure(train, held)
    loss, dist, rate, beta = fig.axes[:4]
    assert [ax.get_title() for ax in fig.axes[:4]] == [viz.LABELS[k] for k in
                                                       ("loss", "distortion", "rate", "beta")]
    for ax in (loss, dist, rate):
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        assert set(lines) == {"train batches", "held out (validation)"}
        assert list(lines["held out (validation)"].get_xdata()) == [3, 6]
    assert list(loss.get_lines()[1].get_ydata()) == [8.0, 5.0]
    assert [ln.get_label() for ln in beta.get_lines()] == ["train batches"]
    assert "2 held-out evaluations" in fig._suptitle.get_text()


def test_curves_draw_every_logged_term_and_no_bookkeeping() -> None:
    train = [{"step": s, "epoch": s / 3, "loss": 5.0, "distortion": 4.0, "rate": 1.0,
              "rate/z1": 0.6, "rate/z2": 0.4, "discriminator_loss": 0.7, "beta": 1.0,
              "lr": 1e-3, "samples_per_s": 900.0} for s in range(1, 4)]
    titles = [ax.get_title() for ax in viz.curves_figure(train).axes if ax.axison]
    assert titles[3:6] == ["rate/z1", "rate/z2", "discriminator_loss"]
    assert len(titles) == 7 and not {"lr", "epoch", "samples_per_s"} & set(titles)


def test_curves_tolerates_a_cut_line_and_missing_keys(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps({"step": 1, "loss": 3.0}) + "\n"
                       + json.dumps({"step": 2, "loss": 2.0}) + "\n" + '{"step": 3, "lo')
    check_png(viz.curves(metrics, tmp_path / "curves.png"))


def test_curves_errors(tmp_path: Path) -> None:
    with pytest.raises(XaeError, match="no training log"):
        viz.curves(tmp_path / "missing.jsonl", tmp_path / "c.png")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(XaeError, match="no training records"):
        viz.curves(tmp_path / "empty.jsonl", tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_viz_never_uses_pyplot() -> None:
    source = inspect.getsource(viz)  # pyplot keeps global figures and may switch backends
    assert "import pyplot" not in source and "matplotlib.pyplot" not in source
    assert "matplotlib.use(" not in source
