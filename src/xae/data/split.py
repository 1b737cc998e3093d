"""Helpers every source shares: one scaling rule, one train/test split, one validator."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from xae.data.dataset import Dataset
from xae.data.sparse_rows import SparseRows, take_rows
from xae.errors import XaeError


def check_fraction(test_fraction: float) -> float:
    """Return ``test_fraction`` if it lies strictly between 0 and 1, else raise XaeError."""
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) \
            or not 0.0 < float(test_fraction) < 1.0:
        raise XaeError(f"data.test_fraction must be a number strictly between 0 and 1 "
                       f"(e.g. 0.2), got {test_fraction!r}")
    return float(test_fraction)


def to_float32(array: np.ndarray, what: str) -> torch.Tensor:
    """Convert a numeric array to a float32 tensor with the library's one scaling rule.

    ``uint8`` is divided by 255 (pixels to [0, 1]); ``bool`` becomes 0.0/1.0; floating point
    and other integer types keep their values.

    Parameters
    ----------
    array : numpy.ndarray
        The data.
    what : str
        How to name the data in an error message, e.g. ``"file 'x.npy'"``.
    """
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32).div_(255.0)
    if kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(array).astype(np.float32, copy=False))
    raise XaeError(f"{what} holds values of type {array.dtype}, which are not numbers; "
                   f"save the data as a float, uint8, integer or bool array")


def split_dataset(name: str, x: torch.Tensor, y: torch.Tensor | None, test_fraction: float,
                  seed: int, info: dict | None = None,
                  per_sample: dict[str, torch.Tensor] | None = None) -> Dataset:
    """Split samples into train and test with a permutation drawn from ``seed``.

    The test part has ``round(N * test_fraction)`` samples; the same ``seed`` always gives
    the same split.

    Parameters
    ----------
    name : str
        The data set's name.
    x : torch.Tensor
        All samples, ``(N, ...)``.
    y : torch.Tensor or None
        Labels ``(N,)`` or ``None``.
    test_fraction : float
        Fraction of samples held out, in (0, 1).
    seed : int
        Seed of the permutation.
    info : dict, optional
        Extra facts kept in :attr:`Dataset.info`.
    per_sample : dict, optional
        Other values of each sample, ``(N, ...)`` (e.g. a cell's batch), split with x and
        kept as ``info["train_<key>"]`` and ``info["test_<key>"]``.
    """
    n = x.shape[0]
    n_test = round(n * check_fraction(test_fraction))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    info = dict(info or {})
    for key, values in (per_sample or {}).items():
        info[f"train_{key}"], info[f"test_{key}"] = values[train_idx], values[test_idx]
    return Dataset(
        name=name,
        train_x=take_rows(x, train_idx),
        train_y=None if y is None else y[train_idx],
        test_x=take_rows(x, test_idx),
        test_y=None if y is None else y[test_idx],
        info=info,
    )


def _check_split(ds: Dataset, split: str) -> None:
    """Check one split of ``ds``: dtype, sample count, finite values, labels."""
    x: torch.Tensor = getattr(ds, f"{split}_x")
    y: torch.Tensor | None = getattr(ds, f"{split}_y")
    where = f"data set '{ds.name}'"
    if "vocab" in ds.info:  # sentences: token ids, checked against the vocabulary
        _check_tokens(x, len(ds.info["vocab"]), f"{where}: {split}_x")
        return
    if not isinstance(x, (torch.Tensor, SparseRows)) or x.dtype != torch.float32 or x.ndim < 2:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise XaeError(f"{where}: {split}_x must be a float32 tensor of shape (N, ...), "
                       f"got {got}")
    n = x.shape[0]
    if n < 2:
        raise XaeError(f"{where} has {n} sample(s) in {split}_x but each split needs at least "
                       f"2; use more samples or change data.test_fraction")
    if isinstance(x, SparseRows):  # the loader checked its counts; finite is all left
        if not x.all_finite():
            raise XaeError(f"{where} has values in {split}_x that are not finite")
    elif not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        if n_nan:
            raise XaeError(f"{where} has {n_nan} NaN values in {split}_x; clean or impute them "
                           f"first")
        raise XaeError(f"{where} has {int(torch.isinf(x).sum())} infinite values in {split}_x; "
                       f"clean them or rescale the data (float32 holds values up to ~3.4e38)")
    if y is not None and (y.dtype != torch.int64 or tuple(y.shape) != (n,)):
        raise XaeError(f"{where}: {split}_y must be int64 labels of shape ({n},), got "
                       f"{y.dtype} {tuple(y.shape)}")


def _check_tokens(x: torch.Tensor, vocab_size: int, where: str) -> None:
    """Token data: an int64 ``(N, L)`` tensor of ids in [0, vocab_size), N ≥ 2."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.int64 or x.ndim != 2:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise XaeError(f"{where} must be int64 token ids of shape (N, L), got {got}")
    if x.shape[0] < 2:
        raise XaeError(f"{where} has {x.shape[0]} sentence(s) but each split needs at least 2")
    if x.numel() and not (0 <= int(x.min()) and int(x.max()) < vocab_size):
        raise XaeError(f"{where} holds ids outside the vocabulary's 0 … {vocab_size - 1}")


def validate(ds: Dataset) -> Dataset:
    """Check every split of ``ds`` and return it unchanged.

    Raises
    ------
    XaeError
        When a split is not float32, has fewer than 2 samples, contains NaN or infinite
        values, has labels that are not int64 of length N, or when train and test samples
        differ in shape.
    """
    for split in ("train", "test"):
        _check_split(ds, split)
    if 0 in ds.train_x.shape[1:]:
        raise XaeError(f"data set '{ds.name}': each sample has shape "
                       f"{tuple(ds.train_x.shape[1:])}, which holds no values; a sample needs "
                       f"at least one feature")
    if ds.train_x.shape[1:] != ds.test_x.shape[1:]:
        raise XaeError(f"data set '{ds.name}': train samples have shape "
                       f"{tuple(ds.train_x.shape[1:])} but test samples "
                       f"{tuple(ds.test_x.shape[1:])}")
    if (ds.train_y is None) != (ds.test_y is None):
        raise XaeError(f"data set '{ds.name}': labels must be given for both splits or neither")
    return ds


def is_finite_number(value: float) -> bool:
    """True for a real, finite int or float (bools excluded)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def hold_out(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Set ``round(N · fraction)`` training samples aside (a seeded permutation, as for the
    test split), for held-out evaluations in training: the data set without them, and a data
    set whose test split is them. The training split's per-sample values in ``info``
    (``train_<key>``, e.g. a cell's batch) are split with the samples."""
    n = ds.train_x.shape[0]
    per_sample = {k[len("train_"):]: v for k, v in ds.info.items() if k.startswith("train_")
                  and isinstance(v, torch.Tensor) and tuple(v.shape[:1]) == (n,)}
    part = split_dataset(ds.name, ds.train_x, ds.train_y, fraction, seed, ds.info, per_sample)
    if part.train_x.shape[0] < 1 or part.test_x.shape[0] < 1:
        raise XaeError(f"train.validation_fraction {fraction} leaves no training or no "
                       f"validation samples out of {ds.train_x.shape[0]}; change it, or set "
                       f"train.eval_split=test (or train.eval_every=0)")
    rest = dataclasses.replace(ds, train_x=part.train_x, train_y=part.train_y, info={
        **ds.info, **{f"train_{k}": part.info[f"train_{k}"] for k in per_sample}})
    return rest, part
