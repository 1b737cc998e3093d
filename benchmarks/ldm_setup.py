"""What the latent-diffusion benchmarks share (``latent_diffusion.py``, ``kl_weight.py``): the
sizes that fit their 90-minute budget on two CPU cores, the training keys every model gets,
training a run (or reusing a finished one), fitting its diffusion prior, and measuring it.

Sizes, chosen from per-step times measured at tiny scale (``MEASURED_STEP_S``: batch 100,
1 torch thread, another benchmark on the other core) so that each script fits 90 minutes:

- the ``kl-ae`` preset's diffusers-layout nets at ``block_out_channels`` [16, 32, 32] instead
  of [32, 64, 64] (a 4×7×7 code either way): 0.23 s per VAE step against 0.71;
- ST-LPIPS with the AlexNet trunk (``stlpips-alex``) instead of the preset's VGG: the KL-AE
  without GAN took 0.98 s per step with alex, 2.46 s with vgg (preset nets);
- a PatchGAN of width 32 (3 layers, batch norm, hinge) instead of 64, started at half of the
  run (``model.patchgan.start`` = steps/2 + 1; the preset's 3001 is for its 10 epochs);
- ``STEPS`` = 1200 steps of batch 100 (2 epochs of the 60,000 training images) per model,
  the same for every model; Adam β = (0.5, 0.9) at the preset's lr 4.5e-4 for all;
- the diffusion prior (``xae prior fit``'s Python entry point,
  :func:`xae.diffprior.fit_diffusion_prior`, encoding all 60,000 training images) fitted for
  ``PRIOR_STEPS`` = 2000 steps of batch 256; sample FID on ``FID_SAMPLES`` = 5000 samples
  (FID is biased upwards at small sets: every row is measured at the same size).

The trainer's own end-of-run test metrics (``metrics.json``) use the first
``TRAINER_TEST_N`` = 1000 test images; every figure of the benchmarks is measured here on all
10,000 (``--test-n`` to change).
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

import xae
from describe import machine, machine_line
from xae.config import Config, apply
from xae.data import Dataset, load as load_data
from xae.diffprior import fit_diffusion_prior
from xae.diffprior.config import DiffusionPriorConfig
from xae.diffprior.fit import encode_latents, fit_latents, save_diffusion_prior
from xae.evaluate import fid
from xae.evaluate.fid_nets import feature_net
from xae.evaluate.images import reconstruction_quality
from xae.runfiles import DIFFUSION_PRIOR

STEPS = 1200
PRIOR_STEPS = 2000
PRIOR_BATCH = 256
FID_SAMPLES = 5000
TEST_N = 10_000
TRAINER_TEST_N = 1000
CHANNELS = [16, 32, 32]
PERCEPTUAL = "stlpips-alex"
PATCHGAN_WIDTH = 32
BUDGET_MIN = 90.0
# seconds per training step, batch 100, 1 torch thread, measured at tiny scale (8-12 steps)
# with the sizes above; "GAN on" after model.patchgan.start, "GAN off" before it
MEASURED_STEP_S: dict[str, float] = {
    "vae (gaussian likelihood, no critic)": 0.23,
    "kl-ae without GAN (ST-LPIPS alex)": 0.66,
    "kl-ae, GAN on": 0.89,
    "vq-gan, GAN on": 0.96,
}
# seconds of evaluation per continuous-code run at 1 thread, measured at tiny scale and
# scaled: encoding 70,000 images for the prior 34, 2000 prior steps 0.077 each, 5000
# diffusion samples (25 Heun steps) 35, 5000 own samples 6, 10,000 reconstructions with
# PSNR/SSIM/rFID and the rate with ST-LPIPS ~60
MEASURED_EVAL_S = 34 + 2000 * 0.077 + 35 + 6 + 60

# every model: the data, the training length, and the sizes above
SHARED: dict[str, Any] = {
    "model.diffusers.block_out_channels": CHANNELS,
    "train.batch_size": 100,
    "train.eval_every": 0,
    "train.log_every": 100,
    "train.checkpoint_every": 10**9,  # one checkpoint, at the end
    "train.progress": False,
    "train.figures": False,
}
# the reconstruction loss and critic of the first stages of latent diffusion
LDM_LOSS: dict[str, Any] = {"model.reconstruction.perceptual": PERCEPTUAL,
                            "model.patchgan.width": PATCHGAN_WIDTH}


@dataclasses.dataclass
class Sizes:
    """The run's sizes: full by default, seconds with ``--smoke``."""

    steps: int = STEPS
    prior_steps: int = PRIOR_STEPS
    fid_samples: int = FID_SAMPLES
    test_n: int = TEST_N
    prior_train_n: int = 0  # 0: all training images (the `xae prior fit` path)

    @classmethod
    def smoke(cls) -> "Sizes":
        return cls(steps=6, prior_steps=10, fid_samples=100, test_n=200, prior_train_n=300)


def data_set(name: str) -> Dataset:
    """Fashion-MNIST or MNIST (grey levels in [0, 1]), all 60,000 training images."""
    return load_data(apply(Config(), {"data.name": name}).data)


def config(preset: str, keys: dict[str, Any], data: str, sizes: Sizes, threads: int,
           seed: int = 0) -> Config:
    """``preset`` with the shared keys, ``keys`` and the run's length; a PatchGAN (if the
    config keeps one) starts at half of the run."""
    cfg = xae.preset(preset)
    apply(cfg, {**SHARED, "data.name": data, "train.steps": sizes.steps,
                "train.threads": threads, "train.seed": seed,
                "model.patchgan.start": sizes.steps // 2 + 1, **keys})
    return cfg


def train(cfg: Config, run: Path, data: Dataset, fresh: bool) -> tuple[dict, bool]:
    """Train ``cfg`` into ``run`` unless a run that reached ``train.steps`` is there (then it
    is reused as it is; ``fresh`` retrains). Returns its metrics.json and whether it trained
    now."""
    metrics = run / "metrics.json"
    if not fresh and metrics.is_file():
        done = json.loads(metrics.read_text())
        if done.get("step", 0) >= cfg.train.steps:
            return done, False
    shutil.rmtree(run, ignore_errors=True)
    short = dataclasses.replace(data, test_x=data.test_x[:TRAINER_TEST_N],
                                test_y=None if data.test_y is None
                                else data.test_y[:TRAINER_TEST_N])
    xae.train(cfg, run, data=short)
    return json.loads(metrics.read_text()), True


def fit_prior(run: Path, sizes: Sizes, data: Dataset, refit: bool = False) -> dict | None:
    """Fit the diffusion prior of a continuous-code run (kept if one is there, unless
    ``refit``); its metrics. The full size goes through ``xae prior fit``'s entry point,
    which encodes all training images; ``--smoke`` fits the same way to the latents of its
    first ``prior_train_n`` training images (:func:`fit_latents`, what that entry point
    calls), to stay within seconds."""
    folder = run / DIFFUSION_PRIOR
    if folder.is_dir() and not refit:
        return json.loads((folder / "metrics.json").read_text())
    shutil.rmtree(folder, ignore_errors=True)
    settings = {"steps": sizes.prior_steps, "batch_size": PRIOR_BATCH}
    if not sizes.prior_train_n:
        return fit_diffusion_prior(run, **settings)
    model = xae.load(run)
    z = encode_latents(model, data.train_x[:sizes.prior_train_n])
    cfg = DiffusionPriorConfig(latent_shape=model.latent_shape, **settings)
    prior, metrics = fit_latents(z, cfg, run / "diffusion_prior_fit",
                                 test=encode_latents(model, data.test_x[:sizes.test_n]))
    save_diffusion_prior(run, prior, metrics)
    shutil.rmtree(run / "diffusion_prior_fit", ignore_errors=True)
    return metrics


def latent_scale(model: xae.Autoencoder, x: torch.Tensor) -> dict[str, float]:
    """The test latents' (posterior means) pooled mean and std, largest |z|, and the outlier
    mass: the share of values with |z − mean| > 4·std (6.3e-5 for a Gaussian)."""
    z = encode_latents(model, x).double()
    mean, std = float(z.mean()), float(z.std())
    return {"latent_mean": mean, "latent_std": std, "latent_abs_max": float(z.abs().max()),
            "latent_abs_max_over_std": float(z.abs().max()) / std if std > 0 else math.inf,
            "outlier_share_4std": float(((z - mean).abs() > 4 * std).double().mean())}


def measure(run: Path, data: Dataset, sizes: Sizes, own: bool, fitted: bool,
            seed: int = 0) -> dict[str, Any]:
    """PSNR, SSIM, rFID, rate, latent scale, and sample FID of the own prior (``own``) and
    of the fitted diffusion prior (``fitted``), on the first ``sizes.test_n`` test images."""
    t0 = time.perf_counter()
    model = xae.load(run)
    x, y = data.test_x[:sizes.test_n], data.test_y[:sizes.test_n]
    ev = xae.evaluate_model(model, x, batch_size=500, hole_metrics=False).metrics
    out: dict[str, Any] = {k: v for k, v in ev.items()
                           if k.startswith(("latent_", "rate", "code_", "distortion"))}
    if "code_bits_per_image" in ev:  # a quantizer: the index stream under the uniform prior
        out["rate_nats"] = ev["code_bits_per_image"] * math.log(2)
        out["rate_is"] = "code bits per image × ln 2 (uniform code prior)"
    else:
        out["rate_nats"] = ev["rate"]
        out["rate_is"] = "KL(q(z|x) ‖ N(0, I)), analytic, nats per image"
    if not model.discrete:
        out.update(latent_scale(model, x))
    rq = reconstruction_quality(model, x, batch_size=500)
    out.update({"psnr": rq["psnr"], "ssim": rq["ssim"], "rfid": fid.recon_fid(model, x)})
    from xae.diffprior.choice import describe
    if own:
        q = fid.sample_quality(model, x, y, n=sizes.fid_samples, seed=seed)
        out.update({"fid_own": q["fid_lenet"], "own_prior": describe(model, "own")})
    if fitted and model.prior.fitted is not None:
        q = fid.sample_quality(model, x, y, n=sizes.fid_samples, seed=seed, source="fitted")
        out.update({"fid_fitted": q["fid_lenet"], "fitted_prior": describe(model, "fitted"),
                    "prior_scale": model.prior.fitted.config.scale})
    out["fid_net"] = feature_net(model.config.data.name).note
    out["eval_s"] = time.perf_counter() - t0
    return out


def fmt(v: Any, spec: str = ".2f") -> str:
    """A number for a table cell, or its absence."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return format(v, spec)


def ratio_goal(name: str, better: float | None, worse: float | None, factor: float) -> dict:
    """``worse ≥ factor × better`` (lower is better): met, NOT met, or not measured."""
    if better is None or worse is None:
        print(f"goal  {name}: not measured (a row is missing)")
        return {"goal": name, "met": None}
    ratio = worse / better if better > 0 else math.inf
    met = ratio >= factor
    print(f"goal  {name}: {worse:.2f} / {better:.2f} = {ratio:.2f}× "
          f"(≥ {factor:g}×): {'met' if met else 'NOT met'}")
    return {"goal": name, "ratio": ratio, "factor": factor, "met": met}


def budget_line(start: float, results: dict[str, dict[str, Any]] | None = None,
                minutes: float = BUDGET_MIN) -> dict[str, Any]:
    """Print and return the time spent against the budget: this invocation's wall time, and
    the whole table's cost, the sum over its rows of the recorded training, prior-fit and
    evaluation seconds (rows reused from an earlier invocation count what they cost then).
    The budget is judged on the larger of the two."""
    spent = (time.perf_counter() - start) / 60
    table = sum(r.get("train_s", 0.0) + (r.get("prior_fit") or {}).get("time_s", 0.0)
                + r.get("eval_s", 0.0) for r in (results or {}).values()) / 60
    worst = max(spent, table)
    cost = (f"; the whole table cost {table:.1f} minutes of training, prior fits and "
            f"evaluation" if results else "")
    print(f"budget  {spent:.1f} minutes of wall time now{cost}: "
          f"{'within' if worst <= minutes else 'OVER'} the {minutes:g}-minute budget")
    return {"wall_minutes": spent, "table_minutes": table, "budget_minutes": minutes,
            "within": worst <= minutes}


def finish_args(ap: Any, args: Any, runs: str) -> Any:
    """The checks and derived values both scripts' arguments share: every count ≥ 1, the
    sizes (``--smoke`` or the flags), the run folder (``<results>/<runs>/<data>``)."""
    if min(args.steps, args.prior_steps, args.fid_samples, args.test_n, args.threads) < 1:
        ap.error("--steps, --prior-steps, --fid-samples, --test-n and --threads must be ≥ 1")
    args.sizes = Sizes.smoke() if args.smoke else Sizes(
        steps=args.steps, prior_steps=args.prior_steps, fid_samples=args.fid_samples,
        test_n=min(args.test_n, TEST_N))
    args.run_dir = args.run_dir or args.results / runs / args.data
    return args


def start(threads: int) -> tuple[float, dict[str, Any]]:
    """Set the threads and print the machine: the start time and the machine's record."""
    begun = time.perf_counter()
    torch.set_num_threads(threads)
    mach = machine("cpu")
    print(f"machine  {machine_line(mach)}")
    return begun, mach
