"""Holes under each prior and in each hierarchy: trained the same way, measured the same way.

Learned priors are meant to cover the aggregate posterior q(z) = E_x q(z|x) better than
N(0, I) (Tomczak & Welling 2018, sec. 1), so fewer prior draws should land where no datum
encodes. For each prior (``normal``, ``mog``, ``vamp``, ``flow``) this trains the one-layer
MLP of ``mnist_nll.py`` (784-200-200-50, tanh, KL warm-up); the hierarchies (``ladder``:
ladder-vae, ``hvae``: hvae) keep their own architectures and β warm-ups. All get the shared
keys of :mod:`nll_setup` (Bernoulli, dynamic binarization, batch 100, cosine decay), the same
number of epochs and the same seed. Printed on the 10,000 test images: the hole metrics of
:mod:`xae.evaluate.holes` (``holes_mmd``: MMD² between one code per datum and prior draws, in
units of the prior draws' spread; ``holes_fraction``: the share of prior draws where the
aggregate posterior's density is below its 1st percentile at the codes, about 1% for a perfect
cover), the test NLL (IW, K = 100), the Monte Carlo KL and the number of active units. For a
hierarchy the code is all its groups side by side, one ancestral draw of q per datum against
ancestral draws of the prior down the top-down path; its q(z|x) is no single diagonal
Gaussian, so :mod:`xae.evaluate.holes` measures no fraction there ("n/a"). Writes
``benchmarks/results/holes.json``.

    PYTHONPATH=src .venv/bin/python benchmarks/holes.py --epochs 20 --threads 1
    PYTHONPATH=src .venv/bin/python benchmarks/holes.py --epochs 20 --threads 1 \
        --priors normal,mog,vamp,flow,ladder    # until the hvae preset lands
    # a trial: tiny, into a temporary folder
    PYTHONPATH=src .venv/bin/python benchmarks/holes.py --epochs 1 --threads 1 \
        --priors normal,ladder --results /tmp/holes
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

import xae
from describe import architecture
from nll_setup import bench_config, load_mnist
from xae.errors import XaeError
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
PRIORS = {"normal": "vae", "mog": "mog-vae", "vamp": "vamp-vae", "flow": "flow-prior-vae",
          "ladder": "ladder-vae", "hvae": "hvae"}


def run_one(cfg: xae.Config, data: object, out: Path, train: bool = True) -> dict:
    """Train ``cfg`` (unless ``train`` is False: then the run in ``out`` is measured as it
    stands) and measure its holes, NLL and rate."""
    if train:
        shutil.rmtree(out, ignore_errors=True)  # a fresh run each time
        xae.train(cfg, out, data=data)
    model = xae.load(out)
    train_s = json.loads((out / "metrics.json").read_text())["train_time_s"]
    m = xae.evaluate_model(model, data.test_x, batch_size=cfg.train.eval_batch_size).metrics
    nll = xae.likelihood_report(model, data.test_x, k=100, seed=0).summary()
    return {"holes_mmd": m["holes_mmd"], "holes_fraction": m.get("holes_fraction"),
            "nll_iw_k100": nll["nll_iw"], "nll_se": nll["nll_iw_se"],
            "kl": m.get("kl", m["rate"]), "active_units": m["active_units"],
            "latent_dim": model.latent_dim, "architecture": architecture(model),
            "train_s": train_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--priors", default=",".join(PRIORS),
                    help=f"comma-separated subset of the rows ({', '.join(PRIORS)})")
    ap.add_argument("--results", type=Path, default=HERE / "results",
                    help="folder of the runs and of holes.json")
    ap.add_argument("--eval-only", action="store_true", help="measure the runs as they stand")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.priors.split(",")
    unknown = [n for n in names if n not in PRIORS]
    if unknown:
        raise XaeError(f"unknown row(s) {', '.join(unknown)} in --priors; choose from "
                       f"{', '.join(PRIORS)}")
    data = load_mnist()
    configs = {n: bench_config(PRIORS[n], args.epochs, data, checkpoint_every=10**9)[0]
               for n in names}  # every preset checked before anything trains
    rows = {}
    for name, cfg in configs.items():
        out = args.results / f"holes_{name}_run"
        rows[name] = run_one(cfg, data, out, train=not args.eval_only)
        print(f"{name}: measured (training took {rows[name]['train_s']:.0f} s)", flush=True)
    epochs = json.loads((out / "metrics.json").read_text())["epochs"]
    print(f"\n{epochs:g} epochs each, dynamically binarized MNIST; test set (10,000 images)")
    print(f"{'model':8} {'holes MMD²':>11} {'holes frac':>11} {'NLL K=100':>15} {'KL':>7} "
          f"{'active':>9}")
    for name, r in rows.items():
        frac = f"{100 * r['holes_fraction']:10.1f}%" if r["holes_fraction"] is not None \
            else f"{'n/a':>11}"
        active = f"{r['active_units']}/{r['latent_dim']}"
        print(f"{name:8} {r['holes_mmd']:11.4f} {frac} {r['nll_iw_k100']:9.2f} ± "
              f"{r['nll_se']:.2f} {r['kl']:7.2f} {active:>9}")
    print("\nnets:")
    for name, r in rows.items():
        print(f"  {name:8} {r['architecture']}")
    write_json(args.results / "holes.json", {"epochs": args.epochs, "priors": rows})


if __name__ == "__main__":
    try:
        main()
    except XaeError as e:
        sys.exit(f"holes.py: error: {e}")
