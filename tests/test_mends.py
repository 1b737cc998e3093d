"""The mends of issue 14: one direction per metric, the ``xae.evaluate`` subpackage, one
mixture density, one PCA plane, one eval-mode context, one table of run-folder names, and
``xae check gradients`` without a run."""
from __future__ import annotations

import inspect
import json
import math
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY

import xae
from xae.cli import main
from xae.distributions import DiagonalGaussian, mixture_log_prob
from xae.sweep.grid import Run
from xae.sweep.report import best
from xae.sweep.runner import Result

SRC = Path(xae.__file__).resolve().parent


# ---- 1. which way a sweep ranks a metric ------------------------------------------------------

def _results(metric: str, values: dict[str, float]) -> list[Result]:
    cfg = xae.preset("vae")
    return [Result(Run(name, {}, cfg), Path(name), "done", metrics={"test": {metric: v}})
            for name, v in values.items()]


@pytest.mark.parametrize("metric", ["psnr", "ssim", "recon_accuracy", "code_usage",
                                    "code_perplexity", "active_units", "ess"])
def test_a_sweep_ranks_a_more_is_better_metric_highest_first(metric):
    from xae.evaluate.report import direction

    results = _results(metric, {"low": 0.2, "high": 0.9, "mid": 0.5})
    assert direction(metric) == "maximize"
    assert best(results, metric, direction(metric)).run.name == "high"


@pytest.mark.parametrize("metric", ["loss", "neg_elbo", "nll_iw", "distortion", "fid_lenet",
                                    "bits_per_dim", "mse", "holes_mmd", "holes_fraction"])
def test_a_sweep_ranks_a_less_is_better_metric_lowest_first(metric):
    from xae.evaluate.report import direction

    results = _results(metric, {"mid": 0.5, "low": 0.2, "high": 0.9})
    assert direction(metric) == "minimize"
    assert best(results, metric, direction(metric)).run.name == "low"


def test_every_more_is_better_metric_is_one_that_evaluation_reports():
    """The old table named metrics no evaluation produced (elbo, accuracy, …)."""
    from xae.evaluate import fid
    from xae.evaluate.images import reconstruction_quality
    from xae.evaluate.report import FITTED_METRICS, HIGHER_IS_BETTER

    torch.manual_seed(0)
    x = torch.rand(32, 1, 8, 8)
    iwae = xae.build(xae.preset("vae", objective="iwae",
                                **{"model.iwae.samples": 4, "model.mlp.hidden": [16]}))
    vq = xae.build(xae.preset("vq-vae", **{"model.vq.codebook_size": 16}))
    mnist = xae.build(xae.preset("vae", data="mnist", **{"model.mlp.hidden": [16]}))
    names = {*xae.evaluate_model(iwae, x, hole_metrics=False).metrics,
             *reconstruction_quality(iwae, x),
             *xae.evaluate_model(vq, x, hole_metrics=False).metrics,
             *fid.sample_quality(mnist, torch.rand(10, 1, 28, 28), torch.arange(10), n=4)}
    # the fitted diffusion prior's metrics are the same ones, suffixed (tests/test_diffusion_prior)
    fitted = {m for m in HIGHER_IS_BETTER if m.endswith("_fitted_prior")}
    assert {m.removesuffix("_fitted_prior") for m in fitted} <= set(FITTED_METRICS) & names
    # the disentanglement scores need factor data: checked in tests/test_disentanglement.py
    dis = {m for m in HIGHER_IS_BETTER if m.startswith("disentanglement/")}
    assert HIGHER_IS_BETTER - fitted - dis <= names, HIGHER_IS_BETTER - fitted - dis - names


# ---- 2. xae.evaluate is the subpackage ----------------------------------------------------------

def test_the_evaluate_subpackage_is_reachable_beside_the_function():
    import xae.evaluate.fid

    assert isinstance(xae.evaluate, types.ModuleType)
    assert xae.evaluate.fid.applicable((1, 28, 28))
    model = xae.build(xae.preset("vae", **{"model.mlp.hidden": [16]}))
    m = xae.evaluate_model(model, torch.rand(16, 1, 8, 8), hole_metrics=False).metrics
    assert math.isfinite(m["neg_elbo"]) and m["neg_elbo"] == pytest.approx(
        m["distortion"] + m["rate"])


# ---- 3. one mixture-of-Gaussians density --------------------------------------------------------

def test_the_priors_and_the_holes_measure_use_the_one_mixture_density():
    from xae.evaluate.holes import BLOCK, mixture_log_density
    from xae.priors import mixture, vamp

    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 3, 2, generator=g)
    mog = xae.build(xae.preset("mog-vae", latent_dim=2, **{"model.mlp.hidden": [16]})).prior
    with torch.no_grad():
        mog.logits.copy_(torch.randn(mog.logits.shape, generator=g))
    assert torch.equal(mog.log_prob(z), mixture_log_prob(z, mog.means, mog.logvars,
                                                         torch.log_softmax(mog.logits, -1)))
    vp = xae.build(xae.preset("vamp-vae", latent_dim=2, **{"model.mlp.hidden": [16],
                                                           "model.vamp.components": 7})).prior
    q = vp.components()
    assert torch.equal(vp.log_prob(z), mixture_log_prob(z, q.mean, q.logvar))
    for module in (mixture, vamp):  # no density of their own
        assert "pairwise_log_prob" not in inspect.getsource(module)

    n = BLOCK + 37  # more than one block
    post = DiagonalGaussian(torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g) / 3)
    pts = torch.randn(n, 2, generator=g)
    assert torch.equal(mixture_log_density(pts, post),
                       mixture_log_prob(pts.double(), post.mean.double(), post.logvar.double()))
    own = mixture_log_density(post.mean, post, leave_out_self=True)
    for m in (0, BLOCK - 1, BLOCK, n - 1):  # the mixture of the other n − 1 components
        rest = torch.cat([torch.arange(m), torch.arange(m + 1, n)])
        want = mixture_log_prob(post.mean[m].double(), post.mean[rest].double(),
                                post.logvar[rest].double())
        assert own[m].item() == pytest.approx(want.item(), abs=1e-9)


# ---- 4. one principal plane ---------------------------------------------------------------------

def test_the_latent_map_and_the_explorer_draw_on_one_plane():
    from xae.explore import runs
    from xae.plane import Plane, plane_of
    from xae.viz import project_2d

    g = torch.Generator().manual_seed(0)
    z = torch.randn(300, 5, generator=g) * torch.tensor([4.0, 2.0, 0.5, 0.2, 0.1]) + 1.0
    xy, xlabel, ylabel = project_2d(z, "means")
    plane = plane_of(z.numpy())
    np.testing.assert_array_equal(xy, plane.project(z.numpy()))
    assert plane.pca and f"({5} dims; {100 * plane.explained[0]:.0f}% var.)" in xlabel
    assert f"{100 * plane.explained[1]:.0f}% var." in ylabel
    assert runs.plane_of is plane_of and runs.Plane is Plane


# ---- 5. one eval-mode context -------------------------------------------------------------------

def test_export_traces_and_checks_in_eval_mode_and_restores_the_mode(tmp_path):
    """The parity check used to run the decoder in training mode (the exporter put its wrapper,
    and the model with it, back in training mode after tracing)."""
    from xae.export import export_onnx

    model = xae.build(xae.preset("vae", **{"model.mlp.hidden": [16]}))
    seen: list[tuple[bool, bool]] = []
    model.decoder.register_forward_pre_hook(
        lambda module, _: seen.append((module.training, torch.is_grad_enabled())))
    for training in (True, False):
        meta = export_onnx(model.train(training), tmp_path / "export")
        assert model.training == training and torch.is_grad_enabled()
        assert all(v < 1e-4 for v in meta["max_abs_diff"].values())
    assert len(seen) == 4 and not any(mode for mode, _ in seen[1::2])  # the parity runs
    assert not any(grad for _, grad in seen[1::2])


def test_no_module_hand_rolls_eval_mode():
    """``xae.model.inference`` is the one eval-mode + no_grad context; the gradient check
    (which needs gradients, so not no_grad) is the one other place that sets eval mode."""
    rolled = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                    if "was_training" in p.read_text())
    assert rolled == ["check/gradients.py", "model.py"], rolled


# ---- 6. the names of a run folder's files -------------------------------------------------------

def test_every_file_of_a_run_folder_is_named_in_runfiles(tmp_path, capsys):
    from xae import runfiles as RF

    names = {v for k, v in vars(RF).items() if k.isupper() and isinstance(v, str)}
    run = tmp_path / "run"
    assert main(["train", "--steps", "10", "--no-progress", "--set", *TINY,
                 "model.latent_dim=2", "train.eval_every=5", "--out", str(run)]) == 0
    assert main(["eval", str(run), "--k", "2", "--no-progress"]) == 0
    assert main(["export", str(run)]) == 0
    assert main(["check", "gradients", str(run), "--samples", "4", "--batch", "8"]) in (0, 1)
    capsys.readouterr()
    parts = {part for p in run.rglob("*") for part in p.relative_to(run).parts}
    assert parts <= names, parts - names
    for name in (RF.CONFIG, RF.WEIGHTS, RF.CHECKPOINT, RF.STATE, RF.LOG, RF.HELD_OUT, RF.BEST,
                 RF.METRICS, RF.FIGURES, RF.RECONSTRUCTIONS_PNG, RF.SAMPLES_PNG,
                 RF.LATENT_MAP_PNG, RF.HOLES_PNG, RF.CURVES_PNG, RF.EVAL, RF.EXPORT,
                 RF.EXPORT_META, RF.DECODER_ONNX, RF.ENCODER_ONNX, RF.CHECKS,
                 RF.GRADIENTS_JSON, RF.GRADIENTS_PNG):
        assert name in parts, name
    assert json.loads((run / RF.EXPORT / RF.EXPORT_META).read_text())["decoder"]["file"] \
        == RF.DECODER_ONNX


# ---- 7. xae check gradients trains its own model --------------------------------------------

def test_check_gradients_without_a_run_trains_a_small_model_and_removes_it(
        tmp_path, monkeypatch, capsys):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the temporary run goes
    monkeypatch.chdir(tmp_path)
    assert main(["check", "gradients"]) == 0
    out = capsys.readouterr().out
    assert "training a small VAE on the digits (300 steps, seed 0)" in out
    assert out.rstrip().endswith("check gradients: PASS (4 of 4 within tolerance)")
    saved = json.loads((tmp_path / "runs" / "check-gradients" / "gradients.json").read_text())
    assert saved["summary"]["samples"] == 200 and saved["summary"]["batch"] == 100
    assert all(v["passed"] for v in saved["verdicts"])
    assert not any(scratch.iterdir())  # the temporary run is gone
    assert main(["check", "gradients", "--samples", "20", "--out", "second"]) in (0, 1)
    assert (tmp_path / "second" / "gradients.png").stat().st_size > 0
    assert not (tmp_path / "runs" / "check-gradients-2").exists() and not any(scratch.iterdir())
