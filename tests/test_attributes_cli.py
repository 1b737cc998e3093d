"""``xae edit`` and edits of trained runs: the figure and the array it writes, its errors (exit 2,
one line, nothing written), and that an edit along the thickness direction of a trained digits
VAE thickens the decoded strokes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY

import xae
from xae.edits import edit, edit_report, from_latents
from xae.edits.directions import latents
from xae.edits.labels import built_in
from xae.cli import main
from xae.data import load


@pytest.fixture(scope="module")
def digits_vae(tmp_path_factory) -> Path:
    """A VAE with an 8-d latent trained for 300 steps on the digits (a few seconds): enough
    for its latent to order the strokes by thickness and slant."""
    out = tmp_path_factory.mktemp("attrs") / "run"
    assert main(["train", "--steps", "300", "--no-progress", "--set", *TINY,
                 "model.latent_dim=8", "train.figures=false", "--out", str(out)]) == 0
    return out


def _fails(argv, capsys, *needles, written=()):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("xae: error: ") and err.count("\n") == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    for path in written:
        assert not Path(path).exists()
    return err


def test_edit_writes_the_figure_and_the_edited_images(trained, tmp_path, capsys):
    png, npy = tmp_path / "edits.png", tmp_path / "edits.npy"
    assert main(["edit", str(trained), "--attribute", "slant", "--amounts", "-1,0,2.5",
                 "-n", "3", "-o", str(png), "--save", str(npy)]) == 0
    assert "3 images × 3 amounts" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    got = np.load(npy)
    model = xae.load(trained)
    data = load(model.config.data)
    attr = from_latents(latents(model, data.train_x), built_in("slant", data.train_x, None),
                        "slant")["slant"]
    want = edit(model, data.test_x[:3], attr.direction, [-1.0, 0.0, 2.5])
    assert got.shape == (3, 3, 1, 8, 8)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-6)
    np.testing.assert_allclose(got[:, 1], model.reconstruct(data.test_x[:3]).numpy(), atol=1e-6)


def test_an_edit_moves_the_latent_mean_by_the_amount_times_the_direction(trained):
    model = xae.load(trained)
    x = load(model.config.data).test_x[:4]
    d = torch.tensor([0.7, -1.3])
    with torch.no_grad():
        want = model.decode(model.latent_mean(x) + 1.5 * d)
    np.testing.assert_allclose(edit(model, x, d, [1.5])[:, 0].numpy(), want.numpy(), atol=1e-6)


def test_editing_along_thickness_thickens_the_decoded_strokes(digits_vae):
    model = xae.load(digits_vae)
    data = load(model.config.data)
    z = latents(model, data.train_x)
    for name in ("thickness", "slant"):
        attr = from_latents(z, built_in(name, data.train_x, None), name)[name]
        rep = edit_report(model, data.test_x[:100], attr, [-2.0, -1.0, 0.0, 1.0, 2.0])
        means = rep["mean_by_amount"]
        assert rep["spearman_rho"] > 0.3, (name, rep)
        assert means[-1] > means[2] > means[0], (name, means)
        assert rep["class_preserved"] is None and "28×28" in rep["class_preserved_skipped"]


def test_edit_measure_prints_spearman(digits_vae, tmp_path, capsys):
    png = tmp_path / "slant.png"
    assert main(["edit", str(digits_vae), "--attribute", "slant", "--method", "probe",
                 "--measure", "-n", "20", "-o", str(png)]) == 0
    out = capsys.readouterr().out
    rho = float(out.split("spearman ρ")[1].split()[0])
    assert rho > 0.5 and "logistic-regression probe" in out and png.is_file()


def _images(path: Path, n: int, side: int) -> Path:
    x = np.random.default_rng(0).random((n, side, side)).astype(np.float32)
    np.savez(path, x=x, y=np.arange(n) % 2)
    return path


def test_edit_errors_exit_2_and_write_nothing(trained, tmp_path, capsys):
    png, npy = tmp_path / "e.png", tmp_path / "e.npy"
    outs = ["-o", str(png), "--save", str(npy)]
    run = str(trained)
    _fails(["edit", run, "--attribute", "boldness", *outs], capsys, "unknown attribute "
           "'boldness'", "thickness, slant, class=0", "class=9", written=[png, npy])
    big = _images(tmp_path / "big.npz", 6, 28)
    _fails(["edit", run, str(big), "--attribute", "slant", *outs], capsys, "(1, 28, 28)",
           "expects (1, 8, 8)", written=[png, npy])
    small = _images(tmp_path / "small.npz", 6, 8)
    csv = tmp_path / "labels.csv"
    csv.write_text("smile,frown\n" + "true,1\nTrue,0\n" * 3)
    _fails(["edit", run, str(small), "--labels", str(csv), "--attribute", "smile", *outs],
           capsys, "attribute 'smile' has an empty group", "6 and 0 images", written=[png, npy])
    _fails(["edit", run, str(small), "--labels", str(csv), "--attribute", "frown", "--measure",
            *outs], capsys, "cannot measure the edit along 'frown'", written=[png, npy])
    _fails(["edit", run, str(small), "--attribute", "class=7", *outs], capsys,
           "attribute 'class=7' has an empty group", "0 and 6 images", written=[png, npy])
    _fails(["edit", run, "--attribute", "slant", "--amounts", "1,two", *outs], capsys,
           "--amounts '1,two'", written=[png, npy])
    _fails(["edit", run, "--attribute", "slant", "-o", str(tmp_path / "e.jpg")], capsys,
           "ends in .png")


def test_a_discrete_run_cannot_be_edited(tmp_path, capsys):
    run = tmp_path / "fsq"
    assert main(["train", "--steps", "2", "--no-progress", "--set", *TINY, "model.latent_dim=8",
                 "model.bottleneck=fsq", "model.prior=codes", "model.regularizer=none",
                 "train.figures=false", "--out", str(run)]) == 0
    png = tmp_path / "e.png"
    _fails(["edit", str(run), "--attribute", "slant", "-o", str(png)], capsys,
           "need a continuous latent", "'fsq'", written=[png])


def test_class_preservation_on_mnist_shaped_images():
    """An edit by a zero direction changes nothing: every edit keeps the reconstruction's
    class, and the measure, the same at every amount, has ρ = 0 with it (images of MNIST's
    shape, drawn at random: no data files needed)."""
    from xae.edits import Attribute

    x = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model = xae.build(xae.preset("vae", data="mnist", latent_dim=4))
    still = Attribute("slant", torch.zeros(4), "mean", (1, 1), 0.5, "")
    rep = edit_report(model, x[:20], still, [-1.0, 0.0, 1.0])
    assert rep["class_preserved"] == 1.0 and rep["class_preserved_by_amount"] == [1.0] * 3
    assert rep["spearman_rho"] == pytest.approx(0.0, abs=1e-12)
    klass = Attribute("class=3", torch.zeros(4), "mean", (1, 1), 0.5, "")
    rep = edit_report(model, x[:20], klass, [0.0, 1.0])
    assert "class_preserved" not in rep and "log-probability of class 3" in rep["measure"]
