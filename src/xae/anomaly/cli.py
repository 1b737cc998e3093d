"""``xae score RUN``: per-sample anomaly scores of a trained run, into a CSV, with AUROC,
AUPRC and FPR at 95% TPR when labels say which samples are anomalous, and histograms.

    xae score runs/vae-mnist --score nll recon -o scores.csv --anomalous-classes 1,7
    xae score runs/fmnist --data fashion-mnist --anomalies mnist --score nll llr complexity \\
        --fit-background -o ood.csv
"""
from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from xae.anomaly.background import DEFAULT_RATE, default_folder
from xae.anomaly.complexity import COMPRESSORS
from xae.anomaly.scores import DEFAULT_K, SCORES


def add_parser(sub: Any) -> None:
    """Add the ``score`` command to the ``xae`` parser's ``sub``."""
    from xae.cli import seed_arg

    s = sub.add_parser(
        "score", help="per-sample anomaly scores of a run, with AUROC when labelled",
        description="Score every sample of a data set under a trained run (higher = more "
        "anomalous) into a CSV, one row a sample. With labels (--labels, "
        "--anomalous-classes, or a second data set given by --anomalies) it prints AUROC, "
        "AUPRC and FPR at 95% TPR per score. Histograms of the scores go to a PNG beside "
        "the CSV.")
    s.add_argument("run", help="a run folder")
    s.add_argument("--data", help="the normal data: a data set name as in `xae train --data`, "
                   "or a .npy/.npz file (default: the run's own data set)")
    s.add_argument("--data-dir", help="the folder with the files of --data (mnist, "
                   "fashion-mnist); --anomalies are read from their usual place")
    s.add_argument("--split", default="test", choices=["test", "train"],
                   help="the split of a named data set (default test)")
    s.add_argument("--anomalies", help="a second data set (name or .npy/.npz file) scored "
                   "as the anomalies: labels 0 for --data, 1 for these")
    s.add_argument("--labels", help="a .npy file of 0/1 labels (1 = anomalous), one per sample")
    s.add_argument("--anomalous-classes", help="the classes that are anomalous, e.g. 1,7 "
                   "(the data's class labels decide)")
    s.add_argument("--score", nargs="+", default=["nll"], choices=SCORES, metavar="SCORE",
                   help="nll (IW −log p(x)), elbo (−ELBO), recon (−log p(x|z=mode)), sqerr "
                   "(‖x − x̂‖² of the reconstruction at z=mode), llr "
                   "(likelihood ratio against a background model), complexity (−log2 p(x) − "
                   "L(x)); default nll")
    s.add_argument("--k", type=int, default=DEFAULT_K,
                   help=f"importance samples per datum (default {DEFAULT_K})")
    s.add_argument("--compressor", default="png", choices=COMPRESSORS,
                   help="the compressor of L(x) for the complexity score (default png)")
    s.add_argument("--background", metavar="BGRUN", help="the background run of the llr score "
                   "(with --fit-background: where to train it; default RUN-background)")
    s.add_argument("--fit-background", action="store_true",
                   help="first train the background: the run's config on its training images "
                   "with a share --perturb of the pixels replaced by random grey levels")
    s.add_argument("--perturb", type=float, default=None,
                   help=f"μ, the share of pixels replaced (default {DEFAULT_RATE})")
    s.add_argument("--limit", type=int, help="score only the first N samples of each data set")
    s.add_argument("-o", "--output", default="scores.csv", help="the CSV to write")
    s.add_argument("--figure", help="the histograms' PNG (default: the CSV's name with .png)")
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    s.add_argument("--seed", type=seed_arg, default=0)
    s.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    s.set_defaults(fn=cmd_score)


def _check_args(args: argparse.Namespace) -> tuple[Path, Path]:
    """Every check of the arguments alone; the CSV's and the figure's paths."""
    from xae.errors import XaeError, positive_int
    from xae.fileio import output_file

    out = output_file(args.output, ".csv", "-o")
    fig = output_file(args.figure or out.with_suffix(".png"), ".png", "--figure")
    given = [f for f in ("labels", "anomalous_classes", "anomalies") if getattr(args, f)]
    if len(given) > 1:
        raise XaeError(f"--{given[0].replace('_', '-')} and --{given[1].replace('_', '-')} "
                       f"both say which samples are anomalous; give one")
    if args.limit is not None:
        positive_int(args.limit, "--limit")
    if "llr" not in args.score and (args.background or args.fit_background):
        raise XaeError("--background and --fit-background are for the llr score; add --score "
                       "llr or drop them")
    if args.perturb is not None and not args.fit_background:
        raise XaeError("--perturb sets the background's training; it needs --fit-background")
    return out, fig


def _samples(args: argparse.Namespace, model: Any) -> tuple[Any, np.ndarray | None]:
    """The samples to score and their labels (None without any)."""
    from xae.anomaly import data as D
    from xae.errors import XaeError

    normal = D.first(D.load_source(model.config.data, args.data, args.data_dir, args.split),
                     args.limit)
    labels = None
    if args.anomalies:
        anomalies = D.first(D.load_source(model.config.data, args.anomalies, None, args.split),
                            args.limit)
        normal, labels = D.with_anomalies(normal, anomalies)
    if tuple(normal.x.shape[1:]) != tuple(model.data_shape):
        raise XaeError(f"{normal.name} has samples of shape {tuple(normal.x.shape[1:])} but the "
                       f"run was trained on {tuple(model.data_shape)}; give data of the run's "
                       f"shape")
    if args.labels:
        labels = D.labels_from_file(args.labels, normal.x.shape[0])
    if args.anomalous_classes:
        labels = D.labels_from_classes(normal, D.parse_classes(args.anomalous_classes))
    return normal, labels


def _background(args: argparse.Namespace, model: Any) -> Any:
    """The llr's background model: loaded, or trained first with --fit-background."""
    import xae
    from xae.anomaly.background import fit_background
    from xae.anomaly.scores import check_request
    from xae.errors import XaeError

    if "llr" not in args.score:
        return None
    if not args.fit_background:
        if not args.background:
            raise XaeError("the llr score needs a background model: --background BGRUN, or "
                           "--fit-background to train one")
        return xae.load(args.background, device=args.device)
    check_request(model, args.score, args.k, model, args.compressor)  # all before training
    folder = Path(args.background) if args.background else default_folder(args.run)
    rate = DEFAULT_RATE if args.perturb is None else args.perturb
    print(f"training the background model into {folder} (μ = {rate:g})")
    fit_background(args.run, folder, rate=rate, seed=args.seed)
    return xae.load(folder, device=args.device)


def _csv(columns: dict[str, np.ndarray], labels: np.ndarray | None, n: int) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index"] + (["label"] if labels is not None else []) + list(columns))
    for i in range(n):
        w.writerow([i] + ([int(labels[i])] if labels is not None else [])
                   + [f"{columns[c][i]:.8g}" for c in columns])
    return buf.getvalue()


def cmd_score(args: argparse.Namespace) -> int:
    import xae
    from xae.anomaly.figure import score_histograms
    from xae.anomaly.metrics import check_labels, separation
    from xae.anomaly.scores import check_request, score_samples
    from xae.fileio import write_text

    out, fig = _check_args(args)
    model = xae.load(args.run, device=args.device)
    samples, labels = _samples(args, model)
    if labels is not None:
        check_labels(labels, samples.x.shape[0])
        if labels.all() or not labels.any():
            print("(note: every sample has the same label: no AUROC, AUPRC or FPR95)")
    check_request(model, args.score, args.k, model if "llr" in args.score else None,
                  args.compressor)
    background = _background(args, model)
    columns = score_samples(model, samples.x, args.score, k=args.k, background=background,
                            compressor=args.compressor, seed=args.seed,
                            progress=not args.no_progress)
    title = f"{args.run}: {samples.name}"
    write_text(out, _csv(columns, labels, samples.x.shape[0]))
    score_histograms(columns, labels, fig, title)
    print(f"scored {samples.x.shape[0]} samples of {samples.name} (higher = more anomalous)")
    if labels is not None and 0 < labels.sum() < len(labels):
        print(f"  {'score':<24} {'AUROC':>7} {'AUPRC':>7} {'FPR95':>7}   "
              f"({int(labels.sum())} anomalous of {len(labels)})")
        for name, values in columns.items():
            m = separation(values, labels)
            print(f"  {name:<24} {m['auroc']:>7.4f} {m['auprc']:>7.4f} {m['fpr95']:>7.4f}")
    if "complexity" in args.score and model.config.model.likelihood != "discretized":
        print(f"  (note: the run's likelihood is {model.config.model.likelihood}, not a "
              f"probability of 8-bit values, so −log2 p(x) is not a code length and the "
              f"complexity score mixes units; train with model.likelihood=discretized)")
    print(f"wrote {out} and {fig}")
    return 0

