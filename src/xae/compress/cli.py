"""``xae compress RUN IMAGES -o file.xae`` and ``xae decompress RUN file.xae -o images.npy``.

    xae compress runs/vae-mnist mnist --split test -o test.xae      # lossless, BB-ANS
    xae compress runs/vae-mnist digits.npy -o digits.xae --lossy --step 0.25
    xae decompress runs/vae-mnist test.xae -o test.npy
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xae.errors import XaeError


def add_parser(sub: Any) -> None:
    from xae.compress.bbans import DEFAULT_BLOCK
    from xae.compress.buckets import DEFAULT_BITS, MAX_BITS

    c = sub.add_parser("compress", help="code images into a .xae file through a run's model",
                       description="Lossless (default): binary images coded with bits-back "
                       "ANS through a Bernoulli VAE (BB-ANS); `xae decompress` gives them back "
                       "bit for bit. --lossy: the quantized latent, entropy-coded under the "
                       "prior (or a discrete run's codes under its code prior).")
    c.add_argument("run", help="a run folder")
    c.add_argument("images", help="a .npy/.npz file, or a data set's name (e.g. mnist) with "
                   "--split")
    c.add_argument("-o", "--output", required=True, help="the .xae file to write")
    c.add_argument("--split", choices=["train", "test"], help="with a data set's name: which "
                   "split (its binarization is the run's data.binarize)")
    c.add_argument("--lossy", action="store_true", help="code the quantized latent")
    c.add_argument("--step", type=float, help="with --lossy, a continuous latent's grid step Δ "
                   "in prior deviations (default 0.5)")
    c.add_argument("--bits", type=int, default=DEFAULT_BITS, help=f"lossless: 2^bits buckets "
                   f"of equal prior mass per latent dimension (1 to {MAX_BITS}, default "
                   f"{DEFAULT_BITS})")
    c.add_argument("--block", type=int, default=DEFAULT_BLOCK, help="lossless: images per "
                   f"model pass once the chain has bits to spare (default {DEFAULT_BLOCK})")
    c.add_argument("--elbo-k", type=int, default=10, help="posterior samples for the −ELBO "
                   "printed beside the lossless rate (0 skips it)")
    c.set_defaults(fn=cmd_compress)
    d = sub.add_parser("decompress", help="images back from a .xae file",
                       description="Decode a .xae file with the run that wrote it: the images "
                       "bit for bit (lossless) or their reconstructions (lossy, float32).")
    d.add_argument("run", help="the run folder that compressed the file")
    d.add_argument("file", help="a .xae file")
    d.add_argument("-o", "--output", required=True, help="the .npy file to write")
    d.set_defaults(fn=cmd_decompress)


def read_images(model: Any, source: str, split: str | None) -> tuple[torch.Tensor, dict | None]:
    """The images of a .npy/.npz file (with its dtype and shape) or of a data set's split."""
    from xae.data import SOURCES, load, source_config
    from xae.data.arrays import SUFFIXES, read_arrays, to_samples

    path = Path(source)
    if path.suffix.lower() in SUFFIXES:
        if split is not None:
            raise XaeError("--split chooses a split of a data set named by IMAGES; a .npy/.npz "
                           "file is coded whole: drop --split")
        if not path.is_file():
            raise XaeError(f"'{path}' does not exist; give a .npy/.npz file or a data set's name")
        raw, _ = read_arrays(path)
        return to_samples(raw, path), {"dtype": raw.dtype.str, "shape": list(raw.shape)}
    if source not in SOURCES:
        raise XaeError(f"IMAGES '{source}' is neither a .npy/.npz file nor a data set (one of "
                       f"{', '.join(SOURCES)})")
    if split is None:
        raise XaeError(f"say which split of '{source}' to code: --split test or --split train")
    return getattr(load(source_config(model.config.data, source)), f"{split}_x"), None


def cmd_compress(args: argparse.Namespace) -> int:
    import xae
    from xae.compress.ans import _constriction
    from xae.compress import lossy
    from xae.compress.codec import bits_per_dim, compress
    from xae.compress.exact import require_lossless
    from xae.fileio import output_file

    _constriction()  # the install hint before any work
    out = output_file(args.output, ".xae", "-o")
    from xae.compress.buckets import check_bits
    from xae.errors import positive_int

    check_bits(args.bits)
    positive_int(args.block, "--block")
    if args.elbo_k < 0:
        raise XaeError(f"--elbo-k must be 0 or more, got {args.elbo_k}")
    model = xae.load(args.run)
    lossy.check_options(model, args.lossy, args.step)  # before reading any data
    if not args.lossy:
        require_lossless(model)
    x, raw = read_images(model, args.images, args.split)
    w = compress(model, x, out, lossy_coding=args.lossy, step=args.step, bits=args.bits,
                 block=args.block, raw=raw)
    n = len(x)
    print(f"wrote {out}: {n} images, {w.file_bytes:,} bytes, {w.bits_per_dim:.4f} bits/dim "
          f"({8 * w.file_bytes / n:.1f} bits per image)")
    if not args.lossy:
        print(f"  images {w.data_bits_per_dim:.4f} bits/dim (the coded words less the start-up "
              f"bits); start-up bits {w.startup_bits} (the seed words the chain began from); "
              f"header and checksum {8 * w.file_bytes - w.payload_bits} bits")
        if args.elbo_k:
            from xae.evaluate.likelihood import likelihood_report

            s = likelihood_report(model, x, k=args.elbo_k).summary()
            print(f"  model −ELBO {bits_per_dim(s['neg_elbo_k'], w.dims // n):.4f} bits/dim "
                  f"(K = {args.elbo_k} samples; the rate bits-back coding approaches)")
    else:
        from xae.compress.rd import psnr
        from xae.compress.codec import decompress

        rec, _ = decompress(model, out)
        print(f"  lossy ({w.meta['kind']}, prior {w.meta['prior']}): PSNR {psnr(x, rec):.2f} dB")
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    import xae
    from xae.compress.ans import _constriction
    from xae.compress.codec import as_raw, decompress
    from xae.fileio import atomic_path, output_file

    _constriction()
    out = output_file(args.output, ".npy", "-o")
    model = xae.load(args.run)
    x, meta = decompress(model, args.file)
    arr = as_raw(x, meta.get("raw")) if meta["mode"] == "lossless" else x.numpy()
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)
    what = "images" if meta["mode"] == "lossless" else "reconstructions"
    print(f"wrote {out}: {len(arr)} {what}, shape {arr.shape}, {arr.dtype}")
    return 0
