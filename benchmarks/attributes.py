"""Attribute edits on MNIST: do edits along learned latent directions change what they should?

A VAE (the ``vae`` preset: an MLP 784-512-256-16 with ReLU, a Gaussian posterior, N(0, I)
prior, Bernoulli likelihood on MNIST's grey levels, batch 100, Adam at lr 1e-3, seed 0) is
trained for ``--epochs`` (default 20) epochs into ``results/attributes_run`` (reused when it
is there and finished; ``--fresh`` retrains), or ``--run RUN`` measures a trained run with a
continuous latent. Directions (:func:`xae.edits.from_latents`) are learned from the latent
means of the first ``--fit-n`` training images (default all 60,000) for:

- ``thickness`` and ``slant`` measured from the pixels (top third against bottom third of the
  measure; :mod:`xae.edits.measures`),
- ``class=K`` for K in ``--classes`` (default 0, 1, 7; class K against the rest),

each by both methods: ``mean`` (difference of the groups' mean latents) and ``probe`` (a
logistic regression's normal at the mean difference's length). The first ``--edit-n`` test
images (default 1000) are edited by the amounts −2, −1, 0, 1, 2 (lengths of the direction)
and measured (:func:`xae.edits.edit_report`): Spearman's ρ between the amount and the
attribute measured on the decoded images (thickness, slant; for class=K the shipped MNIST
LeNet's log-probability of class K), over all images × amounts; for thickness and slant the
share of edits the LeNet puts in the same class as the unedited reconstruction (in all and
per amount). There is no published figure to compare with; the edit "works" when ρ > 0
(printed) and, for thickness and slant, most edits keep their class.

Outputs: ``results/attributes.json`` and ``results/attributes.png`` (``--results`` to move
them): 4 test images per attribute edited by −2 … +2 along the mean-difference direction.

Budget (two cores, both busy with other benchmarks when measured, 1 torch thread): training
took 4.4 s for 300 steps of batch 100 (0.015 s a step), so 20 epochs × 600 steps ≈ 3 min;
the whole measurement at full size (latents and thickness of the 60,000 training images,
ten directions, 1000 test images × 5 amounts decoded and measured each time) took 42 s on a
trained run (``--run``). ≈ 5 minutes in all, far within 90. The wall time is printed.

    PYTHONPATH=src .venv/bin/python benchmarks/attributes.py --threads 2
    PYTHONPATH=src .venv/bin/python benchmarks/attributes.py --run runs/vae-mnist
    # a trial: seconds, into a temporary folder
    PYTHONPATH=src .venv/bin/python benchmarks/attributes.py --smoke --threads 1
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import xae
from describe import architecture, machine, machine_line
from xae.edits import edit, edit_report, from_latents
from xae.edits.directions import latents
from xae.edits.figure import edit_figure
from xae.edits.labels import built_in
from xae.config import apply
from xae.data import load as load_data
from xae.errors import XaeError
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
AMOUNTS = [-2.0, -1.0, 0.0, 1.0, 2.0]
FIGURE_IMAGES = 4
KEYS: dict[str, Any] = {
    "data.name": "mnist", "model.mlp.hidden": [512, 256], "model.latent_dim": 16,
    "train.batch_size": 100, "train.lr": 1e-3, "train.eval_every": 0, "train.log_every": 600,
    "train.checkpoint_every": 10**9, "train.progress": False, "train.figures": False,
}


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, help="measure this trained run instead of training")
    ap.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    ap.add_argument("--fresh", action="store_true", help="retrain a finished run")
    ap.add_argument("--fit-n", type=int, default=60_000, help="training images the "
                    "directions are learned from (default all 60,000)")
    ap.add_argument("--edit-n", type=int, default=1000, help="test images edited (default 1000)")
    ap.add_argument("--classes", default="0,1,7", help="class attributes, comma-separated")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seed", type=int, default=0, help="training seed and the probe's split")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--smoke", action="store_true", help="seconds: 40 steps, 2000 training "
                    "images, 50 test images, into a temporary folder")
    args = ap.parse_args()
    if min(args.epochs, args.fit_n, args.edit_n, args.threads) < 1:
        ap.error("--epochs, --fit-n, --edit-n and --threads must be ≥ 1")
    try:
        args.classes = [int(k) for k in args.classes.split(",")]
    except ValueError:
        ap.error(f"--classes takes integers separated by commas, got {args.classes!r}")
    if args.smoke:
        args.fit_n, args.edit_n = 2000, 50
        args.results = Path(tempfile.mkdtemp(prefix="xae-attributes-"))
    return args


def trained_model(args: argparse.Namespace) -> tuple[xae.Autoencoder, dict[str, Any]]:
    """The model to edit: ``--run`` as it is, or the VAE in the results folder's
    ``attributes_run``: reused when it finished the planned steps (``--fresh`` retrains),
    else trained there now."""
    if args.run is not None:
        return xae.load(args.run), {"run": str(args.run), "trained_now": False}
    run = args.results / "attributes_run"
    steps = 40 if args.smoke else args.epochs * 60_000 // KEYS["train.batch_size"]
    metrics = run / "metrics.json"
    if not args.fresh and metrics.is_file() and \
            json.loads(metrics.read_text()).get("step") == steps:
        print(f"reusing {run} ({steps} steps; --fresh retrains)")
        return xae.load(run), {"run": str(run), "trained_now": False}
    shutil.rmtree(run, ignore_errors=True)
    cfg = apply(xae.preset("vae"), {**KEYS, "train.threads": args.threads,
                                    "train.seed": args.seed, "train.steps": steps})
    t0 = time.perf_counter()
    xae.train(cfg, run)
    return xae.load(run), {"run": str(run), "trained_now": True,
                           "train_s": time.perf_counter() - t0}


def main() -> None:
    args = _args()
    begun = time.perf_counter()
    torch.set_num_threads(args.threads)
    mach = machine("cpu")
    print(f"machine  {machine_line(mach)}")
    model, about = trained_model(args)
    if tuple(model.data_shape) != (1, 28, 28):
        raise XaeError(f"the run's images are {tuple(model.data_shape)}; this benchmark "
                       f"measures MNIST edits (1, 28, 28)")
    data = load_data(apply(xae.preset("vae"), {"data.name": "mnist"}).data)
    fit_x, fit_y = data.train_x[:args.fit_n], data.train_y[:args.fit_n]
    show = data.test_x[:args.edit_n]
    t0 = time.perf_counter()
    z = latents(model, fit_x)
    names = ["thickness", "slant", *[f"class={k}" for k in args.classes]]
    labels = {n: built_in(n, fit_x, fit_y) for n in names}
    print(f"latents and labels of {len(fit_x)} training images: {time.perf_counter() - t0:.1f} s")
    results: dict[str, dict[str, Any]] = {}
    blocks = []
    for name in names:
        for method in ("mean", "probe"):
            t0 = time.perf_counter()
            attr = from_latents(z, labels[name], name, method, args.seed)[name]
            edits = edit(model, show, attr.direction, AMOUNTS)
            rep = edit_report(model, show, attr, AMOUNTS, edits)
            rep["seconds"] = time.perf_counter() - t0
            results[f"{name} ({method})"] = rep
            if method == "mean":
                blocks.append((name, edits[:FIGURE_IMAGES]))
    _report(results, len(show))
    figure = edit_figure(blocks, AMOUNTS, args.results / "attributes.png",
                         title=f"MNIST, {FIGURE_IMAGES} test images per attribute, edited along "
                         f"the mean-difference direction")
    spent = (time.perf_counter() - begun) / 60
    print(f"wrote {figure}\nbudget  {spent:.1f} of 90 minutes of wall time")
    if args.smoke:
        print("SMOKE SIZES: the figures above measure nothing; run without --smoke")
    out = args.results / "attributes.json"
    write_json(out, {"model": {**about, "architecture": architecture(model)},
                     "fit_n": len(fit_x), "edit_n": len(show), "amounts": AMOUNTS,
                     "results": results, "wall_minutes": spent, "machine": mach,
                     "smoke": args.smoke, "keys": KEYS, "epochs": args.epochs})
    print(f"wrote {out}")


def _report(results: dict[str, dict[str, Any]], n: int) -> None:
    print(f"\n{n} test images × amounts {', '.join(f'{a:+g}' for a in AMOUNTS)}")
    print("| attribute (method) | probe acc. | Spearman ρ | measure at −2 … +2 | class kept |")
    print("|---|---|---|---|---|")
    for key, r in results.items():
        kept = r.get("class_preserved")
        print(f"| {key} | {r['probe_accuracy']:.3f} | {r['spearman_rho']:.3f} | "
              + " ".join(f"{v:.3g}" for v in r["mean_by_amount"])
              + f" | {'–' if kept is None else f'{kept:.3f}'} |")
    falling = [k for k, r in results.items() if not r["spearman_rho"] > 0]
    print("every edit raises its measure (ρ > 0)" if not falling else
          f"NOT rising with the amount (ρ ≤ 0): {', '.join(falling)}")
    print("measures: " + "; ".join(sorted({r["measure"] for r in results.values()})))


if __name__ == "__main__":
    try:
        main()
    except XaeError as e:
        sys.exit(f"attributes.py: error: {e}")
