"""``xae edit RUN --attribute NAME``: move images along an attribute direction, as a figure.

    xae edit runs/vae-mnist --attribute thickness -o thicker.png       # −2 … +2
    xae edit runs/vae-mnist --attribute slant --amounts -3,0,3 --method probe -o slant.png
    xae edit runs/vae-mnist --attribute class=3 --measure -o three.png --save three.npy
    xae edit RUN mine.npz --labels mine.csv --attribute smiling -o smiling.png

The direction is learned from one set of images: an IMAGES file (``.npy``/``.npz``, every
image in it) or a data set (the run's, or ``--data``: its training split, or its first
``--fit-n`` images); the first ``-n`` images of the file, or of the data set's test split,
are edited. With ``--labels``, the CSV file has one row per image the direction is learned
from, in their order.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xae.errors import XaeError, positive_int


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "edit", help="edit images along an attribute direction of the latent space",
        description="Learn an attribute's direction in the latent space (the difference of the "
        "two groups' mean latents, or a logistic-regression probe's normal at the same "
        "length), move images' latents along it by each amount and decode them: a figure "
        "with one row per image and one column per amount. Attributes: thickness and slant "
        "(measured from the pixels; top third vs bottom third), class=K (the data's labels), "
        "or a boolean column of a CSV file (--labels).")
    # "--amounts -2,-1,0,1,2": a value starting with a minus and a digit is a value, not an
    # option (argparse does so itself from Python 3.13; this parser has no such options)
    p._negative_number_matcher = re.compile(r"^-\.?\d")
    p.add_argument("run", help="a run folder (with a continuous latent)")
    p.add_argument("images", nargs="?", help="a .npy/.npz file of images to learn from and "
                   "edit (default: the run's data set)")
    p.add_argument("--attribute", required=True, help="thickness, slant, class=K, or a "
                   "column of --labels")
    amounts = p.add_mutually_exclusive_group()
    amounts.add_argument("--amount", type=float, default=2.0, help="the largest amount: "
                         "columns −A, −A/2, 0, A/2, A (default 2), in lengths of the direction")
    amounts.add_argument("--amounts", help="the amounts, comma-separated, e.g. -2,-1,0,1,2")
    p.add_argument("--method", default="mean", choices=["mean", "probe"],
                   help="mean: difference of the groups' mean latents (default); probe: a "
                   "logistic regression's normal, scaled to the mean difference's length")
    p.add_argument("--data", help="learn from and edit this data set instead of the run's "
                   "(digits, mnist, fashion-mnist)")
    p.add_argument("--data-dir", help="folder with the data files (mnist, fashion-mnist)")
    p.add_argument("--labels", metavar="CSV", help="a CSV file with a header and one row per "
                   "image learned from; --attribute names one of its boolean columns")
    p.add_argument("--fit-n", type=int, help="learn from the first N training images of the "
                   "data set (default: all)")
    p.add_argument("-n", type=int, default=8, help="images to edit (default 8)")
    p.add_argument("-o", "--output", default="edits.png", help="PNG to write")
    p.add_argument("--save", metavar="NPY", help="also write the edited images as a .npy "
                   "array (images, amounts, *data shape)")
    p.add_argument("--measure", action="store_true", help="measure the edit: Spearman's ρ "
                   "between amount and the attribute measured on the decoded images, and the "
                   "share keeping their class (thickness, slant)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe's held-out split")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.set_defaults(fn=cmd_edit)


def _file_images(path: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    from xae.data.arrays import _resolve, read_arrays, to_labels, to_samples

    file = _resolve(path)
    raw_x, raw_y = read_arrays(file)
    x = to_samples(raw_x, file)
    return x, None if raw_y is None else to_labels(raw_y, x.shape[0], file)


def images_of(args: argparse.Namespace, model: Any) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """(images to learn from, their class labels or None, images to edit)."""
    from xae.data import load, source_config

    if args.images is not None:
        if args.data or args.data_dir:
            raise XaeError("give IMAGES or --data, not both")
        x, y = _file_images(args.images)
        fit, show = (x, y), x
    else:
        data = load(source_config(model.config.data, args.data, args.data_dir))
        fit, show = (data.train_x, data.train_y), data.test_x
        if args.fit_n is not None:
            fit = (fit[0][:args.fit_n], None if fit[1] is None else fit[1][:args.fit_n])
    if tuple(show.shape[1:]) != tuple(model.data_shape):
        where = args.images or f"data set '{args.data or model.config.data.name}'"
        raise XaeError(f"{where} holds images of shape {tuple(show.shape[1:])} but the run "
                       f"{args.run} expects {tuple(model.data_shape)}; give images of the "
                       f"run's shape")
    return fit[0], fit[1], show[:args.n]


def _check_args(args: argparse.Namespace) -> tuple[list[float], Path, Path | None]:
    from xae.edits.editing import evenly, parse_amounts
    from xae.fileio import output_file

    positive_int(args.n, "-n")
    if args.fit_n is not None:
        positive_int(args.fit_n, "--fit-n")
        if args.images is not None:
            raise XaeError("--fit-n limits a data set's training images; with IMAGES every "
                           "image in the file is learned from")
    if args.amounts is not None:
        amounts = parse_amounts(args.amounts)
    elif np.isfinite(args.amount) and args.amount > 0:
        amounts = evenly(args.amount)
    else:
        raise XaeError(f"--amount must be a number > 0, got {args.amount}")
    output = output_file(args.output, ".png", "-o")
    save = output_file(args.save, ".npy", "--save") if args.save else None
    if save is not None and save.resolve() == output.resolve():
        raise XaeError("-o and --save name the same file; give two names")
    return amounts, output, save


def cmd_edit(args: argparse.Namespace) -> int:
    import xae
    from xae.edits.directions import from_latents, latents
    from xae.edits.editing import edit, edit_report
    from xae.edits.figure import edit_figure
    from xae.edits.labels import attribute_labels
    from xae.fileio import atomic_path

    amounts, output, save = _check_args(args)
    model = xae.load(args.run, device=args.device)
    fit_x, fit_y, show = images_of(args, model)
    labels = attribute_labels(args.attribute, fit_x, fit_y, args.labels)
    z = latents(model, fit_x)
    attr = from_latents(z, labels, args.attribute, args.method, args.seed)[args.attribute]
    edits = edit(model, show, attr.direction, amounts)
    report = edit_report(model, show, attr, amounts, edits) if args.measure else None
    how = "mean difference" if attr.method == "mean" else "logistic-regression probe"
    edit_figure([(attr.name, edits)], amounts, output,
                title=f"{attr.name}: {how}, {attr.groups}")
    if save is not None:
        with atomic_path(save) as tmp, open(tmp, "wb") as f:
            np.save(f, edits.numpy().astype(np.float32))
    print(f"wrote {output}: {len(show)} images × {len(amounts)} amounts "
          f"({', '.join(f'{a:g}' for a in amounts)}) along {attr.name}"
          + (f"; {save}" if save else ""))
    print(f"  direction   {how}, length {attr.length:.4g}; {attr.groups}: "
          f"{attr.sizes[0]} and {attr.sizes[1]} images; probe accuracy "
          f"{attr.probe_accuracy:.3f} (held out)")
    if report is not None:
        print(f"  measure     {report['measure']}, mean by amount: "
              + ", ".join(f"{v:.3g}" for v in report["mean_by_amount"]))
        print(f"  spearman ρ  {report['spearman_rho']:.3f} (amount vs measure, "
              f"{len(show)} images × {len(amounts)} amounts)")
        if "class_preserved" in report:
            kept = report["class_preserved"]
            print("  class kept  " + (f"{kept:.3f} of the edits keep the reconstruction's "
                                      f"LeNet class" if kept is not None else
                                      f"not measured: {report['class_preserved_skipped']}"))
    return 0
