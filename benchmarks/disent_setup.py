"""What ``disentanglement.py`` trains and measures: the six models with their two
hyper-parameters each, the sizes that fit its 90-minute budget on two cores, and one job
(train a run, or reuse a finished one, then measure it) that runs in a one-thread worker.

Sizes (per-step times measured with one torch thread and another worker on the other core:
about 10 steps a second for the β-VAE family at batch 64, 7 for FactorVAE with its
discriminator):

- dSprites-like 64×64 (``--data dsprites``, the full factor grid), a fixed sample of
  ``TRAIN_N`` = 50,000 training images per seed of the data (``data.seed`` 0); the trainer's
  own end-of-run test metrics on the first 1000 test images;
- the conv encoder and decoder of Locatello et al. (2019) without its 256-unit dense layer:
  four 4×4 stride-2 convolutions of 32, 32, 64, 64 channels, 10 latents, a Bernoulli
  likelihood summed over pixels;
- ``STEPS`` = 2000 steps of batch 64 at Adam's lr 1e-3 (Locatello et al.: 300,000 steps at
  1e-4; this budget is 0.7% of theirs), the same for every model; the AnnealedVAE's capacity
  ramp and every other step-counted schedule scaled by the same 1/150 (theirs reaches C_max
  at step 100,000 of 300,000, here at a third of the run);
- the metrics at lowered counts (``COUNTS``; disentanglement_lib's 10,000/5,000 take about
  20 minutes per model here): BetaVAE and FactorVAE 200 training and 100 evaluation points
  of 64 images, MIG 10,000 points, SAP 10,000/5,000, DCI 1000/500 (its gradient-boosted
  trees cost 4 minutes at 10,000); about a minute per model in all.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import xae
from xae.data import Dataset, load as load_data
from xae.data.factors import factor_source
from xae.evaluate.disentanglement import disentanglement_scores, model_representation
from xae.fileio import write_json
from xae.presets import preset

STEPS = 2000
BATCH = 64
LR = 1e-3
TRAIN_N = 50_000
TRAINER_TEST_N = 1000
RECON_N = 2000
SEEDS = (0, 1, 2)
COUNTS = {"beta_vae": (200, 100), "factor_vae": (200, 100), "mig": (10_000,),
          "sap": (10_000, 5_000), "dci": (1_000, 500)}
SMOKE_COUNTS = {"beta_vae": (20, 10), "factor_vae": (20, 10), "mig": (1000,),
                "sap": (1000, 500), "dci": (200, 100)}
NETS = {"data.name": "dsprites", "data.n": TRAIN_N, "model.encoder": "conv",
        "model.decoder": "conv", "model.conv.channels": [32, 32, 64, 64],
        "model.likelihood": "bernoulli", "model.latent_dim": 10, "train.batch_size": BATCH,
        "train.lr": LR, "train.figures": False}
# Each model's paper setting first (on dSprites where the paper gives one), then one other
# value from the grid of Locatello et al. (2019, Table 2).
MODELS: dict[str, dict[str, Any]] = {
    "beta-vae": {"label": "β-VAE", "key": "β", "paper": {"beta.value": 4.0},
                 "other": {"beta.value": 16.0}},
    "beta-tcvae": {"label": "β-TCVAE", "key": "β", "paper": {"model.tc.weight": 6.0},
                   "other": {"model.tc.weight": 2.0}},
    "factor-vae": {"label": "FactorVAE", "key": "γ", "paper": {"model.factor.gamma": 35.0},
                   "other": {"model.factor.gamma": 10.0}},
    "dip-vae-i": {"label": "DIP-VAE-I", "key": "λ_od",
                  "paper": {"model.dip.lambda_od": 10.0, "model.dip.lambda_d": 100.0},
                  "other": {"model.dip.lambda_od": 2.0, "model.dip.lambda_d": 20.0}},
    "dip-vae-ii": {"label": "DIP-VAE-II", "key": "λ_od",
                   "paper": {"model.dip.lambda_od": 10.0, "model.dip.lambda_d": 10.0},
                   "other": {"model.dip.lambda_od": 50.0, "model.dip.lambda_d": 50.0}},
    "annealed-vae": {"label": "AnnealedVAE", "key": "C_max",
                     "paper": {"model.capacity.c_max": 25.0},
                     "other": {"model.capacity.c_max": 10.0}},
}
SETTING_KEYS = {"beta-vae": "beta.value", "beta-tcvae": "model.tc.weight",
                "factor-vae": "model.factor.gamma", "dip-vae-i": "model.dip.lambda_od",
                "dip-vae-ii": "model.dip.lambda_od", "annealed-vae": "model.capacity.c_max"}


@dataclasses.dataclass(frozen=True)
class Job:
    model: str
    setting: str  # "paper" or "other"
    seed: int
    steps: int
    run: str
    counts: tuple = tuple(sorted(COUNTS.items()))  # the metrics' (hashable)

    @property
    def value(self) -> float:
        return float(MODELS[self.model][self.setting][SETTING_KEYS[self.model]])


def config(job: Job) -> Any:
    keys = {**NETS, **MODELS[job.model][job.setting], "train.steps": job.steps,
            "train.seed": job.seed}
    if job.model == "annealed-vae":
        keys["model.capacity.ramp_steps"] = max(1, job.steps // 3)
    return preset(job.model, **keys)


_DATA: dict[int, Dataset] = {}


def _data(cfg: Any) -> Dataset:
    """The data set, drawn once per worker (every job shares data.seed and data.n)."""
    key = hash((cfg.data.n, cfg.data.seed, tuple(cfg.data.factor_grid), cfg.data.image_size))
    if key not in _DATA:
        _DATA[key] = load_data(cfg.data)
    return _DATA[key]


def work(job: Job) -> dict[str, Any]:
    """Train (unless a finished run is there) and measure one job; the result is also kept
    as ``result.json`` in its run folder, so a later invocation reuses it."""
    torch.set_num_threads(1)
    run, out = Path(job.run), Path(job.run) / "result.json"
    if out.is_file():
        done = json.loads(out.read_text())
        if done.get("steps") == job.steps and done.get("counts") == _plain(dict(job.counts)):
            return {**done, "reused": True}
    cfg = config(job)
    data = _data(cfg)
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    short = dataclasses.replace(data, test_x=data.test_x[:TRAINER_TEST_N],
                                test_y=None if data.test_y is None
                                else data.test_y[:TRAINER_TEST_N])
    xae.train(cfg, run, data=short)
    train_s = time.perf_counter() - t0
    model = xae.load(run)
    t1 = time.perf_counter()
    scores = disentanglement_scores(factor_source(data.info, "the benchmark"),
                                    model_representation(model), seed=job.seed,
                                    counts=dict(job.counts))
    result = {"model": job.model, "setting": job.setting, "value": job.value,
              "seed": job.seed, "steps": job.steps, "counts": _plain(dict(job.counts)),
              "metrics": {k.split("/", 1)[1]: v for k, v in scores["metrics"].items()},
              "normalized_mi": scores["normalized_mi"],
              "factor_names": scores["factor_names"],
              "sklearn_version": scores["sklearn_version"],
              **reconstruction(model, data.test_x[:RECON_N]),
              "train_s": train_s, "eval_s": time.perf_counter() - t1, "reused": False}
    write_json(out, result)
    return result


@torch.no_grad()
def reconstruction(model: xae.Autoencoder, x: torch.Tensor) -> dict[str, float]:
    """The reconstruction error of the posterior means on test images: the Bernoulli NLL
    (nats per image, summed over its 4096 pixels) and the share of pixels wrong when the
    decoded probability is thresholded at ½."""
    model.eval()
    nll, wrong = [], []
    for chunk in x.split(500):
        z = model.latent_mean(chunk)
        log_px, theta = model.log_px(chunk, z[None])
        nll.append(-log_px[0])
        wrong.append(((theta[0] > 0).float() != chunk).float().flatten(1).mean(1))
    return {"recon_nll": float(torch.cat(nll).mean()),
            "recon_pixel_error": float(torch.cat(wrong).mean())}


def _plain(counts: dict[str, tuple]) -> dict[str, list[int]]:
    return {k: list(v) for k, v in sorted(counts.items())}


def summary(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max over seeds."""
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max()), "n": int(len(a))}
