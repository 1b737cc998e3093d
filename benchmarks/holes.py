"""Holes under each prior: the same encoder and decoder, trained the same way, four priors.

Learned priors are meant to cover the aggregate posterior q(z) = E_x q(z|x) better than
N(0, I) (Tomczak & Welling 2018, sec. 1), so fewer prior draws should land where no datum
encodes. For each prior (``normal``, ``mog``, ``vamp``, ``flow``) this trains the one-layer
MLP of ``mnist_nll.py`` (784-200-200-50, tanh, Bernoulli, dynamic binarization, KL warm-up)
for the same number of epochs with the same seed, then prints on the 10,000 test images the
hole metrics of :mod:`xae.evaluate.holes` (``holes_mmd``: MMD² between one code per datum and
prior draws, in units of the prior draws' spread; ``holes_fraction``: the share of prior draws
where the aggregate posterior's density is below its 1st percentile at the codes, about 1% for
a perfect cover), the test NLL
(IW, K = 100), the Monte Carlo KL and the number of active units. Writes
``benchmarks/results/holes.json``.

    PYTHONPATH=src .venv/bin/python benchmarks/holes.py --epochs 20 --threads 1
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

import xae
from mnist_nll import CONFIG
from xae.config import apply
from xae.data import load as load_data
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
PRIORS = {"normal": "vae", "mog": "mog-vae", "vamp": "vamp-vae", "flow": "flow-prior-vae"}


def run_one(preset: str, epochs: int, data: object, out: Path,
            train: bool = True) -> dict[str, float]:
    """Train ``preset`` on the shared config (unless ``train`` is False: then the run in
    ``out`` is measured as it stands) and measure its holes, NLL and rate."""
    if train:
        shutil.rmtree(out, ignore_errors=True)  # a fresh run each time
        cfg = xae.preset(preset, **{**CONFIG, "train.epochs": epochs,
                                    "train.checkpoint_every": 10**9})
        steps = epochs * (data.train_x.shape[0] // cfg.train.batch_size)
        apply(cfg, {"train.lr_schedule.warmup": steps})
        xae.train(cfg, out, data=data)
    model = xae.load(out)
    train_s = json.loads((out / "metrics.json").read_text())["train_time_s"]
    m = xae.evaluate_model(model, data.test_x).metrics
    nll = xae.likelihood_report(model, data.test_x, k=100, seed=0).summary()
    return {"holes_mmd": m["holes_mmd"], "holes_fraction": m["holes_fraction"],
            "nll_iw_k100": nll["nll_iw"], "nll_se": nll["nll_iw_se"],
            "kl": m.get("kl", m["rate"]), "active_units": m["active_units"], "train_s": train_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--priors", default=",".join(PRIORS), help="comma-separated subset")
    ap.add_argument("--eval-only", action="store_true", help="measure the runs as they stand")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_data(xae.preset("vae", **CONFIG).data)
    rows = {}
    for prior in args.priors.split(","):
        out = HERE / "results" / f"holes_{prior}_run"
        rows[prior] = run_one(PRIORS[prior], args.epochs, data, out, train=not args.eval_only)
        print(f"{prior}: measured (training took {rows[prior]['train_s']:.0f} s)", flush=True)
    epochs = json.loads((HERE / "results" / f"holes_{prior}_run" / "metrics.json").read_text())
    print(f"\n{epochs['epochs']:g} epochs each, 784-200-200-50 tanh, dynamically binarized MNIST; "
          f"test set (10,000 images)")
    print(f"{'prior':8} {'holes MMD²':>11} {'holes frac':>11} {'NLL K=100':>15} {'KL':>7} "
          f"{'active':>7}")
    for prior, r in rows.items():
        print(f"{prior:8} {r['holes_mmd']:11.4f} {100 * r['holes_fraction']:10.1f}% "
              f"{r['nll_iw_k100']:9.2f} ± {r['nll_se']:.2f} {r['kl']:7.2f} {r['active_units']:7d}")
    write_json(HERE / "results" / "holes.json", {"epochs": args.epochs, "priors": rows})


if __name__ == "__main__":
    main()
