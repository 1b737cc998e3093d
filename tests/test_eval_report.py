"""`xae eval` and the holes figure: one holes computation behind metrics.json, eval.json and the
figure's title; a negative (unbiased) MMD² explained where it is shown; progress bars on
stderr for the CLI and off by default in the Python API."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import xae
from xae import viz
from xae.cli import main
from xae.data import load as load_data
from xae.evaluate.holes import NEGATIVE_MMD

FAST = {"model.mlp.hidden": [32], "train.seed": 1, "progress": False, "log_every": 20,
        "train.checkpoint_every": 1000}


@pytest.fixture(scope="module")
def digits():
    return load_data(xae.preset("vae").data)


@pytest.fixture(scope="module")
def vae2(tmp_path_factory, digits) -> tuple[Path, dict[str, str]]:
    """A 2-d VAE trained with its figures, and the title of every figure it drew."""
    titles: dict[str, str] = {}
    save = viz.save_figure

    def recording(fig, path):
        titles[Path(path).name] = fig.get_suptitle()
        return save(fig, path)

    cfg = xae.preset("vae", latent_dim=2, steps=40, **FAST)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(viz, "save_figure", recording)
        run = xae.train(cfg, tmp_path_factory.mktemp("holes") / "vae", data=digits)
    return run, titles


def _title_numbers(title: str) -> tuple[float, float]:
    """holes_mmd and holes_fraction (a share) as the holes figure's title prints them."""
    mmd = re.search(r"holes_mmd \(MMD²\) = (-?[\d.e+-]+)", title)
    fraction = re.search(r"holes_fraction = ([\d.]+)%", title)
    assert mmd and fraction, title
    return float(mmd[1]), float(fraction[1]) / 100


def test_the_holes_figure_of_a_run_shows_the_numbers_in_its_metrics(vae2, capsys) -> None:
    run, titles = vae2
    final = json.loads((run / "metrics.json").read_text())["test"]
    mmd, fraction = _title_numbers(titles["holes.png"])
    assert mmd == pytest.approx(final["holes_mmd"], rel=1e-3)  # printed to 4 digits
    assert fraction == pytest.approx(final["holes_fraction"], abs=5e-4)
    assert (run / "figures" / "holes.png").is_file()
    # and `xae eval` reports the very same number
    assert main(["eval", str(run), "--k", "0", "--no-images", "--no-progress", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["holes_mmd"] == pytest.approx(final["holes_mmd"], rel=1e-9)
    assert got["holes_fraction"] == pytest.approx(final["holes_fraction"], rel=1e-9)


def test_without_metrics_the_figure_measures_what_evaluate_reports(vae2, digits) -> None:
    model = xae.load(vae2[0])
    m = xae.evaluate_model(model, digits.test_x).metrics
    mmd, fraction = _title_numbers(viz.holes_figure(model, digits.test_x, grid=20)
                                   .get_suptitle())
    assert mmd == pytest.approx(m["holes_mmd"], rel=1e-3)
    assert fraction == pytest.approx(m["holes_fraction"], abs=5e-4)
    with pytest.raises(xae.XaeError, match="holes_mmd and holes_fraction"):
        viz.holes_figure(model, digits.test_x, grid=20, metrics={"loss": 1.0})


def test_a_negative_mmd_is_explained_in_the_figure(vae2, digits) -> None:
    model = xae.load(vae2[0])
    for value in (-0.0012, 0.0012):
        title = viz.holes_figure(model, digits.test_x, grid=20, metrics={
            "holes_mmd": value, "holes_fraction": 0.01}).get_suptitle()
        assert _title_numbers(title)[0] == value
        assert ("unbiased estimate of MMD²" in title.replace("\n", " ")) == (value < 0)


@pytest.fixture(scope="module")
def collapsed(tmp_path_factory, digits) -> Path:
    """A VAE whose posterior collapsed onto the prior (β = 300): q(z) = p(z), so the unbiased
    holes MMD² scatters around 0, below it for some seeds."""
    cfg = xae.preset("vae", steps=100, figures=False, **FAST, **{"beta.value": 300.0})
    return xae.train(cfg, tmp_path_factory.mktemp("collapsed") / "vae", data=digits)


def test_xae_eval_explains_a_negative_holes_mmd(collapsed, digits, capsys) -> None:
    model = xae.load(collapsed)
    values = {s: xae.evaluate_model(model, digits.test_x, seed=s).metrics["holes_mmd"]
              for s in range(30)}
    negative = [s for s, v in values.items() if v < 0]
    positive = [s for s, v in values.items() if v > 0]
    assert negative and positive, values  # an unbiased estimate of 0 takes both signs
    for seed, explained in ((negative[0], True), (positive[0], False)):
        assert main(["eval", str(collapsed), "--k", "0", "--no-images", "--no-progress",
                     "--seed", str(seed)]) == 0
        out = capsys.readouterr().out
        assert ("(note: holes_mmd = " in out and NEGATIVE_MMD in out) == explained, out
        notes = json.loads((collapsed / "eval.json").read_text())["notes"]
        assert any(NEGATIVE_MMD in n for n in notes) == explained
        assert "rate: KL, analytic" in notes  # how the rate was computed is stated
        assert (f"holes_mmd = {values[seed]:.4g} is below 0" in out) == explained


# -------------------------------------------------------------------------- progress

def test_xae_eval_shows_progress_bars_on_stderr_unless_told_not_to(vae2, digits,
                                                                   capsys) -> None:
    run, n = str(vae2[0]), digits.test_x.shape[0]
    assert main(["eval", run, "--k", "7"]) == 0
    err = capsys.readouterr().err
    for bar in ("rate/distortion", "log p(x), K=7", "reconstructions"):
        assert f"{bar}: 100%" in err, err
    assert f"{n}/{n}" in err and "image/s" in err and "sample/s" in err
    assert main(["eval", run, "--k", "7", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "100%" not in err and "/s]" not in err, err


def test_the_python_api_is_quiet_by_default(vae2, digits, capsys) -> None:
    model, x = xae.load(vae2[0]), digits.test_x
    xae.evaluate_model(model, x)
    xae.likelihood_report(model, x, k=3)
    assert capsys.readouterr().err == ""
    xae.likelihood_report(model, x, k=3, progress=True)
    assert "log p(x), K=3: 100%" in capsys.readouterr().err


def test_the_fid_bar_counts_every_image_it_generates_or_classifies(capsys) -> None:
    import torch

    from xae.evaluate import fid

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 28, 28, generator=g), torch.randint(0, 10, (40,), generator=g)
    model = xae.build(xae.preset("vae", latent_dim=4, **{"model.mlp.hidden": [16]}), (1, 28, 28))
    fid.sample_quality(model, x, y, n=30, batch_size=16, progress=True)
    total = 3 * 30 + 4 * 40  # 30 samples and 40 reconstructions made; 5 passes classified
    err = capsys.readouterr().err
    assert "FID-LeNet: 100%" in err and f" {total}/{total} [" in err, err
