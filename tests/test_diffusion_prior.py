"""The diffusion prior over continuous latents (``xae prior fit`` on a Gaussian or deterministic
run): the fit, a closed-form check of the sampler, save/load, ``xae sample``, ``xae eval``, the
explorer's draws, an exact resume, DDP and bad input."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import xae
from xae.cli import main
from xae.diffprior import DiffusionPriorConfig, fit_diffusion_prior, fit_latents
from xae.diffprior.fit import encode_latents, load_diffusion_prior, save_diffusion_prior
from xae.stagefit import training_inputs

from conftest import torchrun_xae

SMALL = {"mlp_hidden": 32, "mlp_layers": 1, "time_dim": 16, "batch_size": 64}
COMMON = {"model.mlp.hidden": [64], "steps": 30, "progress": False, "figures": False,
          "log_every": 10}
MNIST_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs on the digits: a flat VAE, a spatial conv VAE (4×2×2), a discrete FSQ
    autoencoder and a two-group hierarchy."""
    base = tmp_path_factory.mktemp("diffusion_prior")
    flat = xae.train(xae.preset("vae", latent_dim=4, **COMMON), base / "flat")
    conv = xae.train(xae.preset("conv-vae", latent_dim=16, **{
        **COMMON, "model.conv_map.channels": [8, 16]}), base / "conv")
    fsq = xae.train(xae.preset("ae", bottleneck="fsq", prior="codes", latent_dim=8,
                               **{"model.fsq.levels": [5, 5]}, **COMMON), base / "fsq")
    ladder = xae.train(xae.preset("ladder-vae", latent_dim=6, **{
        **COMMON, "model.ladder.groups": [2, 4], "model.ladder.hidden": 16,
        "model.mlp.hidden": [16]}), base / "ladder")
    return {"flat": flat, "conv": conv, "fsq": fsq, "ladder": ladder}


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("diffusion_prior*"))
    return dest


@pytest.fixture(scope="module")
def fitted(runs, tmp_path_factory):
    """The flat and the spatial run with a fitted prior each, and the fits' metrics."""
    base = tmp_path_factory.mktemp("fitted")
    out = {}
    for name, sizes in (("flat", SMALL), ("conv", {"conv_channels": 16, "conv_blocks": 1,
                                                    "time_dim": 16, "batch_size": 64})):
        run = copy_run(runs[name], base / name)
        out[name] = (run, fit_diffusion_prior(run, steps=150, lr=3e-3, checkpoint_every=50,
                                              log=lambda _: None, **sizes))
    return out


# ---- (1) the fit lowers its denoising loss -----------------------------------------------
@pytest.mark.parametrize("name", ["flat", "conv"])
def test_the_fit_lowers_its_denoising_loss_and_records_the_scale(fitted, name):
    run, m = fitted[name]
    # the same noise before and after: the loss of a fitted denoiser must be well below its
    # start (the velocity ε − x₀ has variance 2 per element for unit-variance latents)
    assert m["test_loss"] < 0.75 * m["test_loss_initial"]
    assert m["loss_curve"][-1][1] < m["loss_curve"][0][1]
    assert m["steps"] == 150 and m["method"].startswith("flow matching")
    assert sorted(p.name for p in (run / "diffusion_prior").iterdir()) == \
        ["config.json", "metrics.json", "model.safetensors"]
    assert not (run / "diffusion_prior_fit").exists()  # the checkpoints go once it is written
    model = xae.load(run)
    z = encode_latents(model, training_inputs(model)[0])
    assert model.prior.fitted.config.scale == pytest.approx(1 / float(z.std()), rel=1e-5)
    assert model.prior.fitted.config.net == ("mlp" if name == "flat" else "conv")
    assert list(model.prior.fitted.config.latent_shape) == list(model.latent_shape)


# ---- (2) a closed form: latents from a known Gaussian ------------------------------------
@pytest.fixture(scope="module")
def gaussian(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([2.0, -1.0, 0.5])
    a = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.3, 0.4, 0.5]])
    z = mu + torch.randn(4000, 3, generator=g) @ a.T
    cfg = DiffusionPriorConfig(latent_shape=(3,), steps=1200, batch_size=256, lr=2e-3,
                               mlp_hidden=128, mlp_layers=2, checkpoint_every=10_000)
    prior, _ = fit_latents(z, cfg, tmp_path_factory.mktemp("gauss") / "fit",
                           log=lambda _: None)
    return z, prior


def test_samples_of_a_prior_fitted_to_a_gaussian_match_its_mean_and_covariance(gaussian):
    z, prior = gaussian
    # the scale factor: latents of std ≈ 0.83 are multiplied by ≈ 1.2 before diffusion and
    # divided by it after; a sampler that forgot either would miss the covariance by ~45 %
    assert prior.config.scale == pytest.approx(1 / float(z.std()))
    s = prior.sample(8000, generator=torch.Generator().manual_seed(1))
    # compared with the data's own mean and covariance, so the data's sampling error drops
    # out. Left: 8000 samples give a standard error of ≤ 0.012 on each mean and ≤ 0.016 on each
    # covariance entry (σ ≤ 1), and the fit's own error (a 2-block MLP, 1200 steps) measured
    # at ≤ 0.04. 0.08 is twice that, and far below the errors of a wrong scale or sampler.
    assert torch.allclose(s.mean(0), z.mean(0), atol=0.08), (s.mean(0), z.mean(0))
    assert torch.allclose(torch.cov(s.T), torch.cov(z.T), atol=0.08), torch.cov(s.T)


# ---- (3) save and load -------------------------------------------------------------------
def test_a_saved_prior_loads_and_samples_the_same_codes(gaussian, tmp_path):
    _, prior = gaussian
    save_diffusion_prior(tmp_path, prior, {"steps": 1200})
    loaded = load_diffusion_prior(tmp_path, latent_dim=3)
    assert loaded is not prior and loaded.config == prior.config
    a = prior.sample(64, steps=10, generator=torch.Generator().manual_seed(5))
    b = loaded.sample(64, steps=10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert set(load_file(str(tmp_path / "diffusion_prior" / "model.safetensors"))) == \
        set(prior.state_dict())


def test_xae_load_attaches_the_prior_and_samples_are_seeded(fitted):
    run, _ = fitted["conv"]
    draws = []
    for _ in range(2):
        model = xae.load(run)
        torch.manual_seed(3)
        draws.append(model.sample_z(16, source="fitted"))
    assert torch.equal(*draws) and draws[0].shape == (16, model.latent_dim)
    torch.manual_seed(3)
    own = model.sample_z(16)  # the model's own N(0, I), not the fitted prior
    assert not torch.allclose(own, draws[0])
    with pytest.raises(xae.XaeError, match="no temperature"):
        model.sample_z(4, temperature=0.5, source="fitted")
    with pytest.raises(xae.XaeError, match="'own' or 'fitted'"):
        model.sample_z(4, source="diffusion")


def test_a_damaged_or_foreign_prior_is_refused_on_load(fitted, runs, tmp_path):
    run = copy_run(fitted["flat"][0], tmp_path / "run")
    shutil.copytree(fitted["flat"][0] / "diffusion_prior", run / "diffusion_prior")
    (run / "diffusion_prior" / "config.json").write_text("{not json")
    with pytest.raises(xae.XaeError, match="is corrupt"):
        xae.load(run)
    conv = copy_run(runs["conv"], tmp_path / "conv")  # a prior of 4 latents on a 16-d code
    shutil.copytree(fitted["flat"][0] / "diffusion_prior", conv / "diffusion_prior")
    with pytest.raises(xae.XaeError, match="was fitted to codes of shape"):
        xae.load(conv)


# ---- (4) xae sample ------------------------------------------------------------------------
def test_xae_sample_says_which_prior_it_sampled(fitted, runs, tmp_path, capsys):
    run, _ = fitted["flat"]
    for extra, words in (([], "the fitted diffusion prior"), (["--prior", "own"],
                         "the model's own prior (model.prior = normal)"),
                         (["--prior", "fitted", "--sample-steps", "3"], "3 Heun steps")):
        out = tmp_path / f"s{len(extra)}.png"
        assert main(["sample", str(run), "-n", "8", "-o", str(out), *extra]) == 0
        said = capsys.readouterr().out
        assert words in said and str(out) in said and out.read_bytes()[:4] == b"\x89PNG"
    for args, match in (([str(runs["flat"]), "--prior", "fitted"], "no fitted diffusion prior"),
                        ([str(run), "--prior", "own", "--sample-steps", "3"], "--sample-steps"),
                        ([str(run), "--temperature", "0.5"], "no temperature")):
        assert main(["sample", *args, "-o", str(tmp_path / "bad.png")]) == 2
        assert match in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()


# ---- xae eval and the explorer -------------------------------------------------------------
def test_the_explorer_draws_from_the_fitted_prior_and_says_so(fitted):
    from xae.explore.runs import load_run

    run, _ = fitted["flat"]
    view = load_run(run, max_points=50)
    about = view.meta(0)["prior"]["about"]
    assert about.startswith("the fitted diffusion prior")
    model = xae.load(run)
    x = training_inputs(model)[1][:50]
    with torch.random.fork_rng():  # as load_run draws: the test set's means, then the prior
        torch.manual_seed(0)
        model.latent_mean(x)
        want = model.sample_z(len(view.prior), source="fitted")
    assert torch.allclose(torch.from_numpy(view.prior), want, atol=1e-5)


@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="MNIST files not present")
def test_xae_eval_reports_the_fitted_priors_sample_fid_beside_the_own_one(tmp_path, capsys):
    run = xae.train(xae.preset("vae", latent_dim=4, data="mnist", **{
        **COMMON, "data.data_dir": str(MNIST_DIR), "eval_every": 0}), tmp_path / "mnist")
    fit_diffusion_prior(run, steps=30, log=lambda _: None, **SMALL)
    assert main(["eval", str(run), "--k", "0", "--fid-samples", "100", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "fid_lenet " in out and "fid_lenet_fitted_prior" in out
    notes = {line.split(": ")[1]: line for line in out.splitlines()
             if line.strip().startswith("(note: ")}
    assert "samples of the fitted diffusion prior" in notes["fid_lenet_fitted_prior"]
    assert "samples of the model's own prior" in notes["fid_lenet"]
    assert all("NOT Inception FID" in notes[k] for k in ("fid_lenet", "fid_lenet_fitted_prior"))


# ---- (5) an interrupted fit resumes exactly ------------------------------------------------
class Interrupt(KeyboardInterrupt):
    pass


def interrupt_at(step: int):
    def log(line: str) -> None:
        if line.startswith(f"checkpoint at step {step} "):
            raise Interrupt  # as a Ctrl-C right after that checkpoint
    return log


def test_an_interrupted_fit_resumes_exactly(runs, tmp_path, capsys):
    opts = {"steps": 40, "checkpoint_every": 10, "lr": 3e-3, **SMALL, "batch_size": 500}
    whole = copy_run(runs["flat"], tmp_path / "whole")
    m_whole = fit_diffusion_prior(whole, log=lambda _: None, **opts)
    cut = copy_run(runs["flat"], tmp_path / "cut")
    with pytest.raises(Interrupt):
        fit_diffusion_prior(cut, log=interrupt_at(20), **opts)
    assert not (cut / "diffusion_prior").exists()  # no prior until the fit ends
    assert sorted(p.name for p in (cut / "diffusion_prior_fit").iterdir()) == \
        ["fit.json", "model.safetensors", "state.pt"]
    # a new fit would throw the interrupted one away: it must be asked for
    assert main(["prior", "fit", str(cut), "--steps", "5"]) == 2
    assert "holds an interrupted fit" in capsys.readouterr().err
    assert main(["prior", "fit", str(cut), "--resume", "--steps", "5"]) == 2
    assert "with its own settings" in capsys.readouterr().err
    assert main(["prior", "fit", str(cut), "--resume", "--no-progress"]) == 0
    assert "written to" in capsys.readouterr().out
    a = load_file(str(whole / "diffusion_prior" / "model.safetensors"))
    b = load_file(str(cut / "diffusion_prior" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit on the CPU
    m_cut = xae.load(cut).prior.fitted.config
    assert m_cut == xae.load(whole).prior.fitted.config
    import json
    saved = json.loads((cut / "diffusion_prior" / "metrics.json").read_text())
    for key in ("loss_curve", "test_loss", "test_loss_initial", "scale", "steps"):
        assert saved[key] == m_whole[key], key
    assert not (cut / "diffusion_prior_fit").exists()


def test_two_processes_fit_what_one_process_fits(runs, tmp_path):
    """Under torchrun each process takes its half of every batch and draws the whole batch's
    noise, so the fit equals one process's up to the order of the gradient sums."""
    opts = ["--steps", "20", "--mlp-hidden", "32", "--mlp-layers", "1", "--time-dim", "16",
            "--batch-size", "64", "--no-progress"]
    one = copy_run(runs["flat"], tmp_path / "one")
    assert main(["prior", "fit", str(one), *opts]) == 0
    two = copy_run(runs["flat"], tmp_path / "two")
    code, out, err = torchrun_xae("prior", "fit", str(two), *opts)
    assert code == 0, err
    assert out.count("written to") == 1  # one process speaks
    a = load_file(str(one / "diffusion_prior" / "model.safetensors"))
    b = load_file(str(two / "diffusion_prior" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


# ---- (6) bad input -------------------------------------------------------------------------
def test_a_discrete_run_gets_the_code_prior(runs, tmp_path, capsys):
    fsq = copy_run(runs["fsq"], tmp_path / "fsq")
    assert main(["prior", "fit", str(fsq), "--epochs", "1", "--dim", "16", "--layers", "1",
                 "--heads", "2"]) == 0
    assert "bits/image" in capsys.readouterr().out
    assert (fsq / "code_prior").is_dir() and not (fsq / "diffusion_prior").exists()
    for flag in (["--steps", "3"], ["--resume"], ["--mlp-hidden", "8"]):
        assert main(["prior", "fit", str(fsq), *flag]) == 2
        assert "is an option of the diffusion prior" in capsys.readouterr().err
    with pytest.raises(xae.XaeError, match="discrete code"):
        fit_diffusion_prior(fsq, steps=3)


@pytest.mark.parametrize("args,match", [
    (["--steps", "0"], "steps must be a positive integer"),
    (["--steps", "-3"], "steps must be a positive integer"),
    (["--sample-steps", "0"], "sample_steps must be a positive integer"),
    (["--time-dim", "15"], "time_dim must be even"),
    (["--conv-channels", "8"], "sizes the conv denoiser"),
    (["--epochs", "2"], "is an option of the code prior"),
    (["--resume"], "no interrupted diffusion-prior fit"),
])
def test_bad_settings_are_refused_and_nothing_is_written(runs, tmp_path, capsys, args, match):
    run = copy_run(runs["flat"], tmp_path / "run")
    before = sorted(p.name for p in run.iterdir())
    assert main(["prior", "fit", str(run), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xae: error: ") and match in err and "Traceback" not in err
    assert sorted(p.name for p in run.iterdir()) == before


def test_runs_without_one_continuous_code_are_refused(runs, tmp_path, capsys):
    ladder = copy_run(runs["ladder"], tmp_path / "ladder")
    assert main(["prior", "fit", str(ladder), "--steps", "3"]) == 2
    assert "hierarchy of latent groups" in capsys.readouterr().err
    assert not (ladder / "diffusion_prior").exists()
    assert not (ladder / "diffusion_prior_fit").exists()
    assert main(["prior", "fit", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
