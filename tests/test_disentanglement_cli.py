"""``xae eval RUN --disentanglement`` on a trained dSprites-like run: the scores, their counts
and the scikit-learn version in eval.json, the MI heat map, the run's traversal figure; and
the counts' bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sklearn

from xae.cli import main
from xae.errors import XaeError
from xae.evaluate.disentanglement.counts import parse, resolve

COUNTS = ["beta_vae=40/20", "factor_vae=40/20", "mig=600", "sap=600/300", "dci=200/100"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dis") / "run"
    assert main(["train", "--preset", "beta-vae", "--data", "dsprites", "--steps", "40",
                 "--no-progress", "--set", "data.factor_grid=[3,2,4,8,8]", "data.image_size=16",
                 "data.n=400", "model.latent_dim=4", "model.mlp.hidden=[64]",
                 "train.batch_size=50", "--out", str(out)]) == 0
    return out


def test_eval_writes_the_scores_their_counts_and_the_heat_map(run, capsys) -> None:
    assert main(["eval", str(run), "--disentanglement", "--disentanglement-counts", *COUNTS,
                 "--k", "0", "--no-images", "--no-progress"]) == 0
    out = capsys.readouterr().out
    report = json.loads((run / "eval.json").read_text())
    scores = {k.split("/", 1)[1]: v for k, v in report["test"].items()
              if k.startswith("disentanglement/")}
    assert {"beta_vae", "factor_vae", "mig", "dci_disentanglement", "sap"} <= set(scores)
    assert all(0 <= v <= 1 for k, v in scores.items() if k != "factor_vae_active_dims")
    assert report["sklearn_version"] == sklearn.__version__
    details = report["disentanglement"]
    assert details["settings"]["counts"] == {"beta_vae": [40, 20], "factor_vae": [40, 20],
                                             "mig": [600], "sap": [600, 300],
                                             "dci": [200, 100]}
    assert details["factor_names"] == ["shape", "scale", "orientation", "x", "y"]
    assert np.array(details["normalized_mi"]).shape == (4, 5)  # latents × factors
    figure = run / "figures" / "factor_mi.png"
    assert details["figure"] == str(figure) and figure.stat().st_size > 1000
    assert str(figure) in out


def test_the_run_figures_hold_traversals_of_its_four_dimensions(run) -> None:
    from PIL import Image

    png = run / "figures" / "traversals.png"
    with Image.open(png) as im:  # four rows of 17-pixel tiles: taller than wide per row
        w, h = im.size
    assert w > h > 0


@pytest.mark.parametrize("items,needle", [
    (["dci=2000"], "dci takes two counts"),
    (["mig=100/50"], "mig takes one count"),
    (["dci"], "METRIC=TRAIN/EVAL"),
    (["dci=a/b"], "METRIC=TRAIN/EVAL"),
    (["tree=10/5"], "no disentanglement metric is called 'tree'"),
    (["mig=100", "mig=200"], "names mig twice"),
])
def test_bad_counts_are_named(items, needle) -> None:
    with pytest.raises(XaeError, match=needle):
        parse(items)


def test_counts_default_to_the_library_and_override_per_metric() -> None:
    n = resolve(10_000, 5_000, {"dci": (2000, 1000)})
    assert n == {"beta_vae": (10_000, 5_000), "factor_vae": (10_000, 5_000), "mig": (10_000,),
                 "dci": (2000, 1000), "sap": (10_000, 5_000)}


def test_counts_on_the_cli_need_disentanglement_and_sane_values(run, capsys) -> None:
    before = (run / "eval.json").read_bytes() if (run / "eval.json").exists() else None
    for args, needle in ((["--disentanglement-counts", "mig=500"], "add --disentanglement"),
                         (["--disentanglement", "--disentanglement-counts", "dci=2000"],
                          "dci takes two counts")):
        assert main(["eval", str(run), *args, "--k", "0", "--no-images", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "Traceback" not in err and err.count("\n") == 0
    after = (run / "eval.json").read_bytes() if (run / "eval.json").exists() else None
    assert before == after


def test_a_beta_sweep_on_factor_data_draws_the_latent_structure(tmp_path, capsys) -> None:
    import matplotlib.image as mpimg

    out = tmp_path / "sweep"
    assert main(["sweep", "--beta", "0.1,8", "--data", "dsprites", "--steps", "30", "--set",
                 "data.factor_grid=[3,2,4,8,8]", "data.image_size=16", "data.n=400",
                 "model.latent_dim=4", "model.mlp.hidden=[64]", "model.likelihood=bernoulli",
                 "train.batch_size=50", "train.figures=false", "--out", str(out)]) == 0
    image = mpimg.imread(out / "factor_structure.png")
    assert image.shape[1] > image.shape[0] and image.std() > 0  # two columns of panels
