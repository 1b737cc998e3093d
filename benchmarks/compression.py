"""Compression of the 10,000 binarized MNIST test images: xae's BB-ANS beside gzip, bz2, lzma,
PNG and WebP, and a lossy rate–distortion curve against JPEG and WebP.

Lossless: the test images are the fixed binarization that every dynamically binarized run is
evaluated on (``xae.data.load`` draws the test split once, seeded by ``data.seed`` = 0). They
are coded by ``xae.compress`` (bits-back ANS, Townsend et al. 2019; 2^8 buckets of equal prior
mass per latent dimension; the whole .xae file counted: header, start-up words, checksum) and
decoded again, every image compared bit for bit; encode and decode speed in images/s (one
torch thread: the coder runs the model reproducibly on one). Beside it the generic
compressors on the same bits (how each is fed: :mod:`compression_setup`), and the model's
−ELBO in bits/dim (K = ``--elbo-k`` posterior samples per image), the rate bits-back should
approach. Goals: lossless ≤ 0.165 bits/dim (BB-ANS published 0.19 with its smaller VAE; bz2
about 0.25) and within 1% of the model's −ELBO; the round trip exact on every image.

Lossy: the 10,000 grey-level test images; the model's latent mean rounded to a grid of step Δ
(``--steps``) and coded under the prior's mass of each bin, against JPEG and WebP (Pillow) at
the highest quality whose rate does not exceed the model's (:mod:`xae.compress.rd`), with the
codecs' quality sweeps; PSNR averaged over images. Written to ``compression.json`` and
``compression_rd.png``.

The model: a VAE of ``compression_setup.MODEL_KEYS`` (mnist_elbo.py's) trained here: a
2-epoch piece measures the seconds per epoch, then the run goes on to the epochs that fit in
``--minutes`` of training (at most ``--epochs``), the cosine decay ending there; or ``--run
RUN``, any finished run xae can code losslessly (Bernoulli, Gaussian code, N(0, I) prior).

Budget: training at most ``--minutes 50`` (mnist_elbo.py measured 3.8 s per epoch on 2 idle
threads, so the ``--epochs 600`` cap in about 38 minutes; at the 12 s per epoch measured on 1
thread with the cores shared, about 240 epochs in the 50 minutes); the
measurements about a minute (with ``--run`` on a 50-latent MNIST VAE, all 10,000 images, one
thread, the cores shared: 53 s in all, BB-ANS encoding 1087 and decoding 1328 images/s).
About 52 minutes in all.

    PYTHONPATH=src .venv/bin/python benchmarks/compression.py --threads 2
    PYTHONPATH=src .venv/bin/python benchmarks/compression.py --run RUN   # an existing run
    PYTHONPATH=src .venv/bin/python benchmarks/compression.py --smoke     # seconds, temp folder
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import torch

import xae
from compression_setup import MODEL_KEYS, figure, lossless_baselines
from describe import architecture, machine, machine_line
from mnist_elbo import FIRST_EPOCHS, train_to
from xae.compress import compress, decompress, rd
from xae.config import apply
from xae.data import load as load_data
from xae.evaluate.likelihood import likelihood_report
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
GOAL_BPD, GOAL_GAP = 0.165, 0.01
STEPS = [2.0, 1.0, 0.5, 0.25, 0.12]
QUALITIES = [1, 5, 10, 20, 35, 50, 70, 90]


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, help="use this finished run instead of training one")
    ap.add_argument("--epochs", type=int, default=600, help="planned epochs (cosine horizon)")
    ap.add_argument("--minutes", type=float, default=50.0, help="training-time cap (minutes)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training")
    ap.add_argument("--bits", type=int, default=8, help="latent bits per dimension (BB-ANS)")
    ap.add_argument("--elbo-k", type=int, default=20, help="posterior samples for the −ELBO")
    ap.add_argument("--steps", type=float, nargs="+", default=STEPS, help="lossy grid steps Δ")
    ap.add_argument("--test-n", type=int, default=10_000, help="test images")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--smoke", action="store_true", help="seconds: 3 epochs on 3000 training "
                    "images, 200 test images, into a temporary folder")
    args = ap.parse_args()
    if args.smoke:
        args.epochs = 3
    if min(args.epochs, args.threads, args.elbo_k, args.test_n) < 1 or args.minutes <= 0:
        ap.error("--epochs, --threads, --elbo-k, --test-n and --minutes must be positive")
    return args


def train_model(args: argparse.Namespace, run: Path) -> Path:
    """The benchmark's VAE, trained into ``run`` (reused when a finished one is there): a
    2-epoch piece measures this machine's seconds per epoch, then the run is resumed up to
    the epochs that fit in ``--minutes`` (at most ``--epochs``), the cosine decay's end moved
    there (mnist_elbo.py's ``train_to``; the learning rate is still at its peak after 2 of
    hundreds of epochs)."""
    if (run / "metrics.json").is_file():
        print(f"model  reusing the finished run {run}")
        return run
    cfg = xae.preset("vae")
    apply(cfg, {**MODEL_KEYS, "train.threads": args.threads,
                "train.max_minutes": args.minutes + 5})  # a backstop only
    data = load_data(cfg.data)
    if args.smoke:
        data = dataclasses.replace(data, train_x=data.train_x[:3000], test_x=data.test_x[:200],
                                   train_y=None, test_y=None)
    first = min(FIRST_EPOCHS, args.epochs)
    t = time.perf_counter()
    train_to(cfg, run, first, args.epochs, data, resume=False)
    per_epoch = (time.perf_counter() - t) / first
    fits = first + math.floor(0.95 * (60 * args.minutes - per_epoch * first) / per_epoch)
    plan = max(first, min(args.epochs, fits))
    print(f"model  {per_epoch:.1f} s per epoch on {args.threads} threads: training to "
          f"{plan} epochs (cosine decay over them; --minutes {args.minutes:g})", flush=True)
    if plan > first:
        train_to(cfg, run, plan, plan, data, resume=True)
    return run


def lossless(model: xae.Autoencoder, x: torch.Tensor, args: argparse.Namespace,
             folder: Path) -> dict:
    s = likelihood_report(model, x, k=args.elbo_k).summary()
    elbo_bpd = s["neg_elbo_k"] / (784 * math.log(2))
    t = time.perf_counter()
    w = compress(model, x, folder / "test.xae", bits=args.bits)
    enc_s = time.perf_counter() - t
    t = time.perf_counter()
    back, _ = decompress(model, folder / "test.xae")
    dec_s = time.perf_counter() - t
    exact = int((back == x).flatten(1).all(1).sum())
    assert exact == len(x), f"{len(x) - exact} images did not decode exactly"
    res = {"bits_per_dim": w.bits_per_dim, "data_bits_per_dim": w.data_bits_per_dim,
           "file_bytes": w.file_bytes, "startup_bits": w.startup_bits, "latent_bits": args.bits,
           "neg_elbo_nats": s["neg_elbo_k"], "neg_elbo_bits_per_dim": elbo_bpd,
           "elbo_k": args.elbo_k, "nll_iw_bits_per_dim": s["bits_per_dim_iw"],
           "gap_to_elbo": w.bits_per_dim / elbo_bpd - 1, "exact_images": exact,
           "encode_images_per_s": len(x) / enc_s, "decode_images_per_s": len(x) / dec_s,
           "block_runs": w.meta["runs"]}
    print(f"BB-ANS  {w.bits_per_dim:.4f} bits/dim (whole file, {w.file_bytes:,} bytes; the "
          f"images alone {w.data_bits_per_dim:.4f}, start-up {w.startup_bits} bits); −ELBO "
          f"{elbo_bpd:.4f} (K = {args.elbo_k}); exact {exact}/{len(x)}; encode "
          f"{res['encode_images_per_s']:.0f} images/s, decode {res['decode_images_per_s']:.0f}")
    for name, b in lossless_baselines(x).items():
        res[name] = b
        print(f"{name:7} {b['bits_per_dim']:.4f} bits/dim ({b['how']}; exact {b['exact']})")
    return res


def lossy(model: xae.Autoencoder, grey: torch.Tensor, steps: list[float]) -> dict:
    points = [rd.model_point(model, grey, s) for s in steps]
    curves = {fmt: [rd.codec_point(grey, fmt, q) for q in QUALITIES] for fmt in rd.FORMATS}
    matched = {fmt: [rd.matched(grey, fmt, p["bpp"]) for p in points] for fmt in rd.FORMATS}
    def cell(fmt: str, m: dict) -> str:
        what = f"{fmt} q{m['quality']} {m['bpp']:.3f} bpp {m['psnr']:.2f} dB"
        return what if m["matched"] else f"{what} (its lowest rate is above the model's)"

    for p, j, w in zip(points, matched["JPEG"], matched["WEBP"]):
        print(f"lossy  Δ {p['step']:<5g} {p['bpp']:.3f} bpp {p['psnr']:.2f} dB | "
              f"{cell('JPEG', j)} | {cell('WebP', w)}")
    return {"model": points, "codec_sweeps": curves, "matched": matched}


def goals(r: dict) -> list[dict]:
    out = [{"goal": f"lossless ≤ {GOAL_BPD} bits/dim", "value": r["bits_per_dim"],
            "met": r["bits_per_dim"] <= GOAL_BPD},
           {"goal": "within 1% of the model's −ELBO", "value": r["gap_to_elbo"],
            "met": r["gap_to_elbo"] <= GOAL_GAP},
           {"goal": "round trip exact on every image", "value": r["exact_images"], "met": True}]
    for g in out:
        print(f"goal  {g['goal']}: {g['value']:.4g}: {'met' if g['met'] else 'NOT met'}")
    return out


def main() -> None:
    args = _args()
    begun = time.perf_counter()
    torch.set_num_threads(args.threads)
    print(f"machine  {machine_line(machine('cpu'))}")
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) if args.smoke else args.results
        run = args.run or train_model(args, results / "compression_run")
        trained_s = time.perf_counter() - begun
        model = xae.load(run)
        n = 200 if args.smoke else args.test_n
        data = load_data(model.config.data)
        grey = load_data(dataclasses.replace(model.config.data, binarize="none")).test_x[:n]
        res = {"run": str(run), "architecture": architecture(model), "test_n": n,
               "train_and_load_s": trained_s,
               "lossless": lossless(model, data.test_x[:n], args, Path(tmp)),
               "lossy": lossy(model, grey, args.steps)}
        res["goals"] = goals(res["lossless"])
        res["machine"], res["wall_s"] = machine("cpu"), time.perf_counter() - begun
        metrics = json.loads((Path(run) / "metrics.json").read_text())
        res["model_training"] = {k: metrics.get(k) for k in ("step", "epochs", "train_time_s")}
        write_json(results / "compression.json", res)
        figure(results / "compression_rd.png", res["lossy"]["model"],
               res["lossy"]["codec_sweeps"], res["lossy"]["matched"])
        print(f"written to {results / 'compression.json'} and compression_rd.png "
              f"({res['wall_s'] / 60:.1f} minutes)")


if __name__ == "__main__":
    main()
