"""Train a FID-LeNet classifier reproducibly:
``python -m xae.evaluate.fid_train --data mnist|fashion-mnist --out PATH``.

Adam (Kingma & Ba 2015) on the data set's 60,000 real training images, a fixed seed,
deterministic algorithms, one thread and a step-decayed learning rate; no augmentation. The
defaults are the data set's recipe (:attr:`FeatureNet.recipe`). It prints the test accuracy
and the SHA-256 of the written safetensors file, whose metadata records the recipe, the data
set and the accuracy. The shipped files were written by this script with its defaults;
bit-for-bit the same file needs the same PyTorch version and CPU kind.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from xae.config import DataConfig
from xae.data import load
from xae.errors import XaeError
from xae.evaluate.fid import accuracy
from xae.evaluate.fid_nets import FEATURE_NETS, LeNet, Recipe, feature_net
from xae.fileio import save_safetensors

__all__ = ["Recipe", "main", "save_classifier", "train_classifier"]

log = logging.getLogger(__name__)


def train_classifier(train_x: torch.Tensor, train_y: torch.Tensor, recipe: Recipe,
                     data: str = "mnist") -> LeNet:
    """Train the :class:`~xae.evaluate.fid_nets.LeNet` of data set ``data`` (its input
    standardization) on images in [0, 1] with integer labels."""
    torch.manual_seed(recipe.seed)
    net = feature_net(data).build()
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    generator = torch.Generator().manual_seed(recipe.seed)
    net.train()
    for epoch in range(recipe.epochs):
        for group in opt.param_groups:
            group["lr"] = recipe.lr * recipe.lr_decay ** epoch
        order = torch.randperm(train_x.shape[0], generator=generator)
        for i in range(0, len(order), recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            loss = F.cross_entropy(net(train_x[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


def save_classifier(net: LeNet, out: Path, metadata: dict[str, str]) -> str:
    """Write the weights atomically as safetensors; return the file's SHA-256.

    The metadata go in as one sorted JSON string: safetensors writes several keys in an
    arbitrary order, which would change the file's hash from one run to the next.
    """
    save_safetensors(net, out, {"recipe": json.dumps(metadata, sort_keys=True)})
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="safetensors file to write")
    parser.add_argument("--data", default="mnist", choices=sorted(FEATURE_NETS),
                        help="the data set to train on (default mnist)")
    parser.add_argument("--data-dir", default="", help="folder with the data set's IDX files")
    parser.add_argument("--epochs", type=int, help="default: the data set's recipe")
    parser.add_argument("--seed", type=int, help="default: the data set's recipe")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    recipe = FEATURE_NETS[args.data].recipe
    recipe = dataclasses.replace(recipe, **{k: getattr(args, k) for k in ("epochs", "seed")
                                            if getattr(args, k) is not None})
    torch.set_num_threads(1)  # thread count changes float reduction order
    torch.use_deterministic_algorithms(True)
    try:
        ds = load(DataConfig(name=args.data, data_dir=args.data_dir))
    except XaeError as e:
        parser.exit(2, f"error: {e}\n")
    start = time.perf_counter()
    net = train_classifier(ds.train_x, ds.train_y, recipe, args.data)
    seconds = time.perf_counter() - start
    acc = accuracy(net, ds.test_x, ds.test_y)
    meta = {k: str(v) for k, v in dataclasses.asdict(recipe).items()}
    meta.update(test_accuracy=f"{acc:.4f}", torch=torch.__version__, threads="1")
    if args.data != "mnist":  # fid_lenet.safetensors (MNIST) was written before this key
        meta["data"] = args.data
    digest = save_classifier(net, args.out, meta)
    log.info("trained in %.0f s; %s test accuracy %.4f", seconds, args.data, acc)
    log.info("wrote %s (%d bytes)", args.out, args.out.stat().st_size)
    log.info("sha256 %s", digest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
