"""Every quantizer on MNIST with the conv autoencoder at one bit budget: usage and distortion.

Each run is the same conv encoder and decoder (``model.conv.channels``, default [32, 64]), Bernoulli
likelihood on the grey-level images, 16 code positions per image and about 10 bits per
position (160 bits per image), trained for the same number of epochs with the same seed:

- ``vq``: K = 1024 codes of 16 values, k-means initialisation and dead-code restarts
  (codes unused for 100 steps are re-seeded from encoder outputs);
- ``vq-no-restart``: the same with ``restart_every = 0`` (k-means initialisation kept);
- ``vq-plain``: neither k-means nor restarts (the 2017 paper's recipe);
- ``vq-ema``: EMA codebook updates (decay 0.99) with restarts;
- ``rvq``: 2 residual VQ stages of 32 codes (2 × 5 bits), quantizer dropout;
- ``fsq``: levels [8, 5, 5, 5] (1000 codes, 9.97 bits);
- ``lfq``: 10 sign bits (1024 codes), entropy penalty 0.1;
- ``gumbel``: K = 1024 relaxed categorical codes, temperature 1 → 1/16, KL to uniform.

On the 10,000 test images it prints and writes to ``benchmarks/results/codebooks/``
(``table.md``, ``results.json``): codebook usage (fraction of the K codes used at least once
on the test set; per stage for residual VQ), perplexity, bits per image of the index stream
(uniform code distribution), reconstruction MSE and PSNR (pixels in [0, 1]), distortion in
nats, restarts done and training time. Targets (issue 5): VQ usage ≥ 95% with restarts,
FSQ ≥ 99%.

    PYTHONPATH=src .venv/bin/python benchmarks/codebooks.py --epochs 5 --threads 1
    PYTHONPATH=src .venv/bin/python benchmarks/codebooks.py --only vq,fsq   # a subset
    PYTHONPATH=src .venv/bin/python benchmarks/codebooks.py --report        # table only
    PYTHONPATH=src .venv/bin/python benchmarks/codebooks.py --only vq --prior-epochs 20

``--prior-epochs`` also fits the autoregressive code prior (``xae prior fit``) to each run and
adds its test bits per image to the table.

Runs already finished in the results folder are kept (``--fresh`` retrains them), so the set
can be split over processes with ``--only`` and gathered with ``--report``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

import xae
from xae.codeprior import fit_code_prior
from xae.data import load as load_data
from xae.evaluate.images import mse, psnr, reconstruction_quality
from xae.model import inference
from xae.fileio import write_json, write_text
from xae.viz import save_grid

HERE = Path(__file__).resolve().parent
MNIST = HERE.parent.parent / "shared" / "data" / "mnist"
POSITIONS = 16
COMMON: dict[str, Any] = {
    "data.name": "mnist", "model.encoder": "conv", "model.decoder": "conv",
    "train.batch_size": 128, "train.lr": 1e-3, "train.log_every": 100,
    "train.checkpoint_every": 2000, "train.progress": False, "train.figures": False,
}
VQ = {"model.vq.codebook_size": 1024, "model.vq.code_dim": 16,
      "model.latent_dim": 16 * POSITIONS}
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "vq": ("vq-vae", VQ),
    "vq-no-restart": ("vq-vae", {**VQ, "model.vq.restart_every": 0}),
    "vq-plain": ("vq-vae", {**VQ, "model.vq.restart_every": 0, "model.vq.kmeans_init": False}),
    "vq-ema": ("vq-vae-ema", VQ),
    "rvq": ("rvq-vae", {"model.rvq.stages": 2, "model.vq.codebook_size": 32,
                        "model.vq.code_dim": 16, "model.latent_dim": 16 * POSITIONS}),
    "fsq": ("fsq-ae", {"model.fsq.levels": [8, 5, 5, 5], "model.latent_dim": 4 * POSITIONS}),
    "lfq": ("lfq-ae", {"model.lfq.codebook_size": 1024, "model.latent_dim": 10 * POSITIONS}),
    "gumbel": ("dvae", {"model.gumbel.codebook_size": 1024, "model.gumbel.code_dim": 16,
                        "model.latent_dim": 16 * POSITIONS}),
}


def config(name: str, epochs: int, channels: list[int]) -> xae.Config:
    preset, overrides = RUNS[name]
    cfg = xae.preset(preset, **{**COMMON, **overrides, "model.conv.channels": channels,
                                "data.data_dir": str(MNIST), "train.epochs": epochs})
    steps = epochs * (60_000 // cfg.train.batch_size)
    if cfg.model.bottleneck == "gumbel":  # anneal the temperature over the first half
        xae.config.apply(cfg, {"model.gumbel.temperature.warmup": steps // 2})
    return cfg


def measure(run: Path, data: Any) -> dict[str, Any]:
    model = xae.load(run)
    metrics = json.loads((run / "metrics.json").read_text())
    prior = run / "code_prior" / "metrics.json"
    prior_bits = json.loads(prior.read_text())["test_bits_per_image"] if prior.is_file() else None
    test = xae.evaluate_model(model, data.test_x, hole_metrics=False).metrics
    quality = reconstruction_quality(model, data.test_x)
    q = model.bottleneck
    return {
        "bottleneck": model.config.model.bottleneck, "codebook_size": q.codebook_size,
        "stages": q.stages, "positions": q.positions,
        "bits_per_position": round(q.bits_per_position, 3),
        "code_bits_per_image": test["code_bits_per_image"],
        "usage": test["code_usage"], "perplexity": test["code_perplexity"],
        "mse": quality["mse"], "psnr": quality["psnr"], "distortion_nats": test["distortion"],
        "restarts": q.restarts_done or 0,
        "epochs": metrics["epochs"], "train_time_s": metrics["train_time_s"],
        "prior_bits_per_image": prior_bits,
        "first_stages": first_stages(model, data.test_x) if q.stages > 1 else None,
    }


def first_stages(model: xae.Autoencoder, x: torch.Tensor) -> dict[int, dict[str, float]]:
    """MSE and PSNR when only the first n residual stages are decoded, n = 1..S (what
    quantizer dropout trains for)."""
    q, out = model.bottleneck, {}
    with inference(model):
        grid = torch.cat([model.encode(xb).indices for xb in x.split(1000)])
        for n in range(1, q.stages + 1):
            x_hat = torch.cat([model.decode(q.indices_to_z(g[..., :n])).clamp(0, 1)
                               for g in grid.split(1000)])
            out[n] = {"mse": float(mse(x_hat, x).mean()), "psnr": float(psnr(x_hat, x).mean())}
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    head = ("| run | quantizer | K × stages | bits/position | bits/image | usage | perplexity "
            "| restarts | MSE | PSNR (dB) | distortion (nats) | epochs | train (s) "
            "| code prior (bits/image) |")
    rows = [head, "|" + "---|" * 14]
    for name, r in results.items():
        rows.append(f"| {name} | {r['bottleneck']} | {r['codebook_size']} × {r['stages']} | "
                    f"{r['bits_per_position']:.2f} | {r['code_bits_per_image']:.0f} | "
                    f"{100 * r['usage']:.1f}% | {r['perplexity']:.0f} | {r['restarts']} | "
                    f"{r['mse']:.5f} | {r['psnr']:.2f} | {r['distortion_nats']:.2f} | "
                    f"{r['epochs']:g} | {r['train_time_s']:.0f} | "
                    + (f"{r['prior_bits_per_image']:.1f} |" if r["prior_bits_per_image"]
                       is not None else "– |"))
    for name, r in results.items():
        for n, m in (r["first_stages"] or {}).items():
            rows.append(f"{'' if n > 1 else chr(10)}{name}: the first {n} of {r['stages']} "
                        f"stages decoded alone: MSE {m['mse']:.5f}, PSNR {m['psnr']:.2f} dB")
    return "\n".join(rows) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channels", default="32,64")
    p.add_argument("--only", help="comma-separated run names (default: all)")
    p.add_argument("--fresh", action="store_true", help="retrain runs that already finished")
    p.add_argument("--report", action="store_true", help="only measure finished runs")
    p.add_argument("--prior-epochs", type=int, default=0, help="also fit a code prior (xae "
                   "prior fit) of this many epochs to each finished run that has none, and "
                   "write 64 samples from it to RUN/prior_samples.png")
    p.add_argument("--out", default=str(HERE / "results" / "codebooks"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = args.only.split(",") if args.only else list(RUNS)
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run(s) {unknown}; choose from {', '.join(RUNS)}")
    out = Path(args.out)
    channels = [int(c) for c in args.channels.split(",")]
    data = load_data(xae.config.DataConfig(name="mnist", data_dir=str(MNIST)))
    for name in names:
        run = out / name
        if args.report or ((run / "metrics.json").is_file() and not args.fresh):
            continue
        resume = (run / "state.pt").is_file() and not args.fresh
        if not resume:
            shutil.rmtree(run, ignore_errors=True)
        t = time.perf_counter()
        xae.train(None if resume else config(name, args.epochs, channels), run, resume=resume,
                  data=data)
        print(f"{name}: trained in {time.perf_counter() - t:.0f} s", flush=True)
    for name in names if args.prior_epochs else []:
        run = out / name
        if (run / "metrics.json").is_file() and not (run / "code_prior").is_dir():
            fit = fit_code_prior(run, epochs=args.prior_epochs)
            print(f"{name}: code prior {fit['test_bits_per_image']:.1f} bits/image (uniform "
                  f"{fit['uniform_bits_per_image']:.1f}) in {fit['time_s']:.0f} s", flush=True)
            torch.manual_seed(0)
            save_grid(xae.load(run).sample(64), run / "prior_samples.png",
                      title=f"{name}: 64 samples from the code prior")
    results = {n: measure(out / n, data) for n in RUNS if (out / n / "metrics.json").is_file()}
    write_json(out / "results.json", results)
    write_text(out / "table.md", table(results))
    print(table(results))


if __name__ == "__main__":
    main()
