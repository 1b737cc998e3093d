"""Test NLL (K = 5000 importance samples) of the IWAE paper's one-layer VAE on binarized MNIST.

The model is Burda et al. (2016)'s one-stochastic-layer MLP: 784-200-200-50 with tanh, a
diagonal Gaussian posterior, N(0, I) prior and a Bernoulli likelihood, trained on dynamically
binarized MNIST with the ELBO (k = 1). Their VAE reaches 86.76 nats (their Table 1, after 3,280
passes over the data with batch 20); the issue's target for ours is ≤ 86.0 when trained long
enough. Training here: Adam with a cosine learning-rate decay over the planned run, batch 100,
KL warm-up over the first 10 epochs. The test set is one fixed Bernoulli draw of the 10,000
test images. Prints the training time, the IW estimate with its standard error, the K-sample
ELBO and the gap, and writes ``benchmarks/results/mnist_nll.json``.

The figure in the README comes from ``--epochs 1200 --threads 1``: a run started with a
750-epoch horizon and continued (``--resume``, after editing ``train.epochs`` and the cosine
horizon in its ``config.json``) at epoch 200 to 1200 epochs; the learning rate at the switch
moved from 0.84 to 0.93 of its peak.

    PYTHONPATH=src .venv/bin/python benchmarks/mnist_nll.py --epochs 600 --threads 1
    PYTHONPATH=src .venv/bin/python benchmarks/mnist_nll.py --epochs 3000 --device cuda
    PYTHONPATH=src .venv/bin/python benchmarks/mnist_nll.py --resume     # continue a killed run
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import xae
from xae.config import apply
from xae.data import load as load_data
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
PUBLISHED, TARGET = 86.76, 86.0
CONFIG: dict[str, object] = {
    "data.name": "mnist",
    "data.binarize": "dynamic",
    "model.hidden": [200, 200],
    "model.activation": "tanh",
    "model.latent_dim": 50,
    "model.likelihood": "bernoulli",
    "beta.kind": "linear",          # KL warm-up from 0 to 1 over 10 epochs
    "beta.start": 0.0,
    "beta.value": 1.0,
    "beta.warmup": 6000,
    "train.batch_size": 100,
    "train.lr": 1e-3,
    "train.lr_schedule.kind": "cosine",
    "train.lr_schedule.start": 1.0,
    "train.lr_schedule.value": 0.01,
    "train.log_every": 3000,
    "train.checkpoint_every": 30000,
    "train.progress": False,
    "train.figures": False,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument("--k", type=int, default=5000, help="importance samples for the test NLL")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--run", type=Path, default=HERE / "results" / "mnist_nll_run")
    ap.add_argument("--resume", action="store_true", help="continue the run in --run")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the run as it stands")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = xae.preset("vae", **{**CONFIG, "train.epochs": args.epochs, "train.device": args.device,
                               "train.threads": args.threads})
    data = load_data(cfg.data)
    steps = args.epochs * (data.train_x.shape[0] // cfg.train.batch_size)
    apply(cfg, {"train.lr_schedule.warmup": steps})
    if not args.eval_only:
        xae.train(cfg if not args.resume else None, args.run, resume=args.resume, data=data)
    model = xae.load(args.run, device=args.device)
    trained = json.loads((args.run / "metrics.json").read_text())
    t0 = time.perf_counter()
    report = xae.likelihood_report(model, data.test_x.to(args.device), k=args.k, seed=0)
    eval_s = time.perf_counter() - t0
    s = report.summary()
    print(f"model          784-200-200-50 tanh VAE, {model.num_parameters():,} parameters, "
          f"device {args.device}")
    print(f"training       {trained['epochs']:g} epochs ({trained['step']} steps) in "
          f"{trained['train_time_s']:.0f} s ({trained['train_time_s'] / 3600:.2f} h)")
    print(f"test NLL       {s['nll_iw']:.2f} ± {s['nll_iw_se']:.2f} nats (IW, K = {args.k}; "
          f"{s['bits_per_dim_iw']:.4f} bits/dim)  evaluated in {eval_s:.0f} s")
    print(f"test −ELBO     {s['neg_elbo_k']:.2f} ± {s['neg_elbo_k_se']:.2f} nats; gap "
          f"(≈ KL(q‖p(z|x))) {s['gap']:.2f} ± {s['gap_se']:.2f}")
    print(f"active units   {xae.evaluate(model, data.test_x.to(args.device), hole_metrics=False)['active_units']} of 50")
    print(f"published VAE  {PUBLISHED} (Burda et al. 2016); target ≤ {TARGET}: "
          f"{'met' if s['nll_iw'] <= TARGET else 'NOT met'}")
    write_json(HERE / "results" / "mnist_nll.json",
               {**s, "epochs": trained["epochs"], "steps": trained["step"],
                "train_time_s": trained["train_time_s"], "eval_time_s": eval_s,
                "device": args.device, "published": PUBLISHED, "target": TARGET})


if __name__ == "__main__":
    main()
