"""What every evaluation shares: batching over data, a seeded random stream, a progress bar."""
from __future__ import annotations

import itertools
import sys
from contextlib import contextmanager
from typing import Iterator

import torch
from tqdm import tqdm


def batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``x`` along the first dimension, ``batch_size`` rows each.

    A last slice of a single row joins the one before it, so batch-level estimates (the MMD
    and total-correlation regularizers need two points or more) never see a batch of one.
    """
    n = x.shape[0]
    last = n - 1 if n > 1 and n % batch_size == 1 else n
    for i in range(0, last, batch_size):
        yield x[i:i + batch_size + (1 if i + batch_size == last else 0)]


def paired_batches(x: torch.Tensor, c: torch.Tensor | None, batch_size: int
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """:func:`batches` of ``x`` beside the same rows of ``c`` (each datum's covariate level),
    or beside None when there is no ``c``."""
    return zip(batches(x, batch_size),
               batches(c, batch_size) if c is not None else itertools.repeat(None))


@contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Draw from torch's generators seeded with ``seed`` inside, restore them on exit.

    Evaluations are then deterministic given the seed and leave the caller's random state
    as it was. ``seed=None`` uses (and advances) the caller's state.
    """
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "image") -> tqdm:
    """A tqdm bar on stderr (count, rate and ETA) for ``total`` units of a slow evaluation;
    it draws nothing unless ``enabled``. It is drawn whether or not stderr is a terminal, so
    that a long evaluation whose output goes to a log still shows how far it got. Use it as
    a context manager and ``update`` it as work is done."""
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True,
                disable=not enabled, file=sys.stderr, dynamic_ncols=True)
