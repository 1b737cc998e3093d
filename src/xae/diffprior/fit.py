"""``xae prior fit`` on a continuous code: fit a :class:`DiffusionPrior` to a run's latents.

The second stage of latent diffusion (Rombach et al. 2022): encode the training set with the
frozen autoencoder (posterior means for a Gaussian code, z for a deterministic one), scale
the latents to unit variance by s = 1/std (all elements pooled; recorded in the prior's
config), and fit the denoiser by flow matching (:mod:`xae.diffprior.prior`) with the shared
second-stage loop (:mod:`xae.stagefit`: progress bar, checkpoints in
``RUN/diffusion_prior_fit/``, exact resume, DDP under ``torchrun``). The prior is saved as
``RUN/diffusion_prior/`` (``config.json``, ``model.safetensors``, ``metrics.json``), written
into a temporary folder and renamed, so a failed or killed fit leaves the previous prior (or
none), never half of one; the checkpoint folder is removed once the prior is in place.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from xae.diffprior.config import DiffusionPriorConfig
from xae.diffprior.prior import DiffusionPrior
from xae.errors import XaeError
from xae.fileio import atomic_dir, save_safetensors, write_json
from xae.model import inference
from xae.runfiles import CONFIG, DIFFUSION_FIT, DIFFUSION_PRIOR, METRICS, WEIGHTS
from xae.stagefit import FitSpec, fit_tensor, read_meta, training_inputs
from xae.train import distributed as dist_

logger = logging.getLogger("xae.diffprior")
EVAL_SEED = 12345  # the noise of the test loss: the same draws before and after the fit


def continuous_model(run_dir: Path, device: torch.device) -> torch.nn.Module:
    """The run's autoencoder with its weights, checked to have one continuous code."""
    from xae.registry import build
    from xae.train.checkpoint import load_weights, read_config

    # not xae.load, which would also load (and check) the prior this fit is about to replace
    model = build(read_config(run_dir)).to(device)
    load_weights(model, run_dir, device)
    name = model.config.model.bottleneck
    if model.discrete:
        raise XaeError(f"'{run_dir}' has a discrete code (model.bottleneck = '{name}'); its "
                       f"prior is the code prior: run `xae prior fit {run_dir}` without the "
                       f"diffusion-prior options")
    if model.hierarchical:
        raise XaeError(f"'{run_dir}' has a hierarchy of latent groups (model.bottleneck = "
                       f"'{name}'), which the diffusion prior does not model: it needs one "
                       f"flat or spatial code (a gaussian or deterministic bottleneck)")
    return model.eval()


def encode_latents(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The latent means (N, D) of inputs ``x`` (z itself for a deterministic code)."""
    with inference(model) as device:
        return torch.cat([model.latent_mean(x[i:i + batch_size].to(device)).float()
                          for i in range(0, len(x), batch_size)])


def test_loss(prior: DiffusionPrior, latents: torch.Tensor, batch_size: int = 1000) -> float:
    """The mean flow-matching loss of ``latents``, with noise drawn from EVAL_SEED."""
    with inference(prior) as device:
        gen = torch.Generator(device=device).manual_seed(EVAL_SEED)
        total = sum(float(prior.loss(latents[i:i + batch_size].to(device), gen).sum())
                    for i in range(0, len(latents), batch_size))
    return total / len(latents)


def fit_latents(latents: torch.Tensor, config: DiffusionPriorConfig, folder: Path, *,
                resume: bool = False, test: torch.Tensor | None = None,
                progress: bool = False, info: dist_.DistInfo | None = None,
                device: torch.device | str = "cpu",
                log: Callable[[str], None] | None = None) -> tuple[DiffusionPrior, dict]:
    """Fit a prior to ``latents`` (N, D) with the checkpoints in ``folder``; returns it and
    its metrics. ``config.scale`` None is measured here as 1/std of ``latents``; on a resume
    the config saved in ``folder`` is used."""
    info, log = info or dist_.DistInfo(), log or logger.info
    fix = f"delete {folder} and fit again"
    if resume:
        meta = read_meta(folder, fix)
        try:
            config = DiffusionPriorConfig.from_dict(meta.get("config"))
        except (XaeError, TypeError) as e:
            raise XaeError(f"{folder} holds no valid diffusion-prior config ({e}); {fix}") \
                from None
    else:
        std = float(latents.float().std())
        if config.scale is None:
            if not (std > 0 and torch.isfinite(latents).all()):
                raise XaeError(f"the latents have standard deviation {std:.3g}, so they cannot "
                               f"be scaled to unit variance; the autoencoder's code is "
                               f"collapsed or broken: check its training")
            config.scale = 1.0 / std
        meta = {"config": config.to_dict()}
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(config.seed)  # the same initial weights on every process
        prior = DiffusionPrior(config).to(device)
    if not resume and test is not None:
        meta["test_loss_initial"] = test_loss(prior, test)
    spec = FitSpec(steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                   seed=config.seed, checkpoint_every=config.checkpoint_every,
                   progress=progress, desc="diffusion prior")
    result = fit_tensor(prior, latents, spec, folder, meta=meta, resume=resume, info=info,
                        log=log)
    metrics = {"steps": result.steps, "time_s": result.time_s, "loss_curve": result.curve,
               "train_latents": len(latents), "latent_shape": list(config.latent_shape),
               "scale": config.scale, "parameters": sum(p.numel() for p in prior.parameters()),
               "method": "flow matching (Lipman et al. 2023), Heun ODE sampler"}
    if test is not None:
        metrics.update({"test_loss_initial": meta.get("test_loss_initial"),
                        "test_loss": test_loss(prior, test), "test_latents": len(test)})
    return prior, metrics


def fit_diffusion_prior(run_dir: str | Path, *, resume: bool = False, device: str = "cpu",
                        progress: bool = False, log: Callable[[str], None] | None = None,
                        **settings: Any) -> dict[str, Any]:
    """Fit a diffusion prior to a continuous run's training latents; save ``RUN/diffusion_prior/``.

    Parameters
    ----------
    run_dir : a run folder written by ``xae train`` with one Gaussian or deterministic code.
    resume : continue the interrupted fit in ``RUN/diffusion_prior_fit/`` with its settings
        (then no ``settings`` may be given).
    device : ``cpu`` or ``cuda`` (one process per GPU under ``torchrun``).
    progress : show a progress bar on stderr.
    log : called with progress lines (default: the ``xae.diffprior`` logger).
    settings : keys of :class:`DiffusionPriorConfig` (steps, batch_size, lr, seed,
        sample_steps, time_dim, checkpoint_every and the denoiser's sizes).

    Returns
    -------
    dict
        What ``metrics.json`` holds (``test_loss_initial``, ``test_loss``, ``loss_curve``,
        ``scale``, ``steps``, ``time_s``, …) plus ``path`` (the prior's folder).
    """
    run_dir, log = Path(run_dir), log or logger.info
    dist_.checked_device(str(device), "device")
    info = dist_.setup(device)
    dev = dist_.device_for(str(device), info)
    if not info.main:  # one process speaks
        log = _quiet
    try:
        model = continuous_model(run_dir, dev)
        folder = run_dir / DIFFUSION_FIT
        config = _config(model, folder, resume, settings, run_dir)
        train_x, test_x = training_inputs(model)
        train_z, test_z = encode_latents(model, train_x), encode_latents(model, test_x)
        log(f"encoded {len(train_z)} training and {len(test_z)} test images to latents of "
            f"shape {list(model.latent_shape)}")
        prior, metrics = fit_latents(train_z, config, folder, resume=resume, test=test_z,
                                     progress=progress, info=info, device=dev, log=log)
        path = run_dir / DIFFUSION_PRIOR
        if info.main:
            save_diffusion_prior(run_dir, prior, metrics)
            shutil.rmtree(folder, ignore_errors=True)
        dist_.barrier(info)
    finally:
        dist_.teardown(info)
    return {**metrics, "path": str(path)}


def _quiet(line: str) -> None:
    pass


def _config(model: torch.nn.Module, folder: Path, resume: bool, settings: dict[str, Any],
            run_dir: Path) -> DiffusionPriorConfig | None:
    if resume:
        if settings:
            raise XaeError(f"--resume continues the interrupted fit with its own settings; drop "
                           f"{', '.join(sorted(settings))}")
        if not (folder / WEIGHTS).is_file():
            raise XaeError(f"'{run_dir}' has no interrupted diffusion-prior fit to resume "
                           f"(no {folder.name}/); fit one without --resume")
        return None
    if folder.exists():
        raise XaeError(f"{folder} holds an interrupted fit; continue it with `xae prior fit "
                       f"{run_dir} --resume`, or delete the folder to start again")
    return DiffusionPriorConfig(latent_shape=model.latent_shape, **settings)


def save_diffusion_prior(run_dir: str | Path, prior: DiffusionPrior,
                         metrics: dict[str, Any]) -> Path:
    """Write ``RUN/diffusion_prior/`` whole (a temporary folder renamed over the old one)."""
    final = Path(run_dir) / DIFFUSION_PRIOR
    with atomic_dir(final) as tmp:
        write_json(tmp / CONFIG, prior.config.to_dict())
        save_safetensors(prior, tmp / WEIGHTS, {"format": "xae-diffusion-prior"})
        write_json(tmp / METRICS, metrics)
    return final


def load_diffusion_prior(run_dir: str | Path, latent_dim: int,
                         device: str | torch.device = "cpu") -> DiffusionPrior | None:
    """The diffusion prior fitted to a run (``RUN/diffusion_prior/``), in eval mode, or None
    if the run has none; XaeError if it is damaged or fitted to a code of another size."""
    from xae.train.checkpoint import load_module

    run_dir = Path(run_dir)
    folder = run_dir / DIFFUSION_PRIOR
    if not folder.exists():
        return None
    refit = f"delete {folder} or refit it with `xae prior fit {run_dir}`"
    path = folder / CONFIG
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise XaeError(f"{folder} is incomplete (it needs {CONFIG} and {WEIGHTS}); {refit}")
    try:
        cfg = DiffusionPriorConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise XaeError(f"{path} is corrupt ({e}); {refit}") from None
    except (XaeError, TypeError) as e:
        raise XaeError(f"{path} is not a valid diffusion-prior config: {e}; {refit}") from None
    if cfg.scale is None:
        raise XaeError(f"{path} has no scale factor; {refit}")
    prior = DiffusionPrior(cfg)
    if prior.latent_dim != latent_dim:
        raise XaeError(f"{folder} was fitted to codes of shape {list(cfg.latent_shape)} but the "
                       f"run's prior is over {latent_dim} dimensions; {refit}")
    load_module(prior, folder / WEIGHTS, "cpu", refit)
    return prior.to(device).eval()
