"""What every evaluation shares: batching over data and a seeded random stream."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


def batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``x`` along the first dimension, ``batch_size`` rows each.

    A last slice of a single row joins the one before it, so batch-level estimates (the MMD
    and total-correlation regularizers need two points or more) never see a batch of one.
    """
    n = x.shape[0]
    last = n - 1 if n > 1 and n % batch_size == 1 else n
    for i in range(0, last, batch_size):
        yield x[i:i + batch_size + (1 if i + batch_size == last else 0)]


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
