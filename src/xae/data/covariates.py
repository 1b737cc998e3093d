"""A data set's categorical covariate (``model.covariate``): each datum's level, one int64 code
per sample, that a conditioned model reads beside its input and its code.

- ``batch``: the batch column the source kept (``data.batch_key`` of ``h5ad``/``pbmc``, the
  batches of ``synthetic-counts``), as ``info["train_batch"]``/``info["test_batch"]`` with the
  names in ``info["batch_names"]``; scVI's batch correction.
- ``label``: the class labels ``train_y``/``test_y``, named by ``info["label_names"]`` when
  the source has them; a conditional VAE.
"""
from __future__ import annotations

import torch

from xae.data.dataset import Dataset
from xae.errors import XaeError

#: Valid values of ``model.covariate``.
COVARIATES: tuple[str, ...] = ("none", "batch", "label")
SPLITS = ("train", "test")


def codes(data: Dataset, which: str, split: str) -> torch.Tensor | None:
    """The ``split``'s covariate levels, (N,) int64 (None for ``which`` = none)."""
    if which not in COVARIATES or split not in SPLITS:
        raise XaeError(f"the covariate is one of {', '.join(COVARIATES)} on the train or test "
                       f"split, got {which!r} on {split!r}")
    if which == "none":
        return None
    if which == "label":
        c = data.train_y if split == "train" else data.test_y
        if c is None:
            raise XaeError(f"model.covariate=label needs labels, and the {data.name} data set "
                           "has none; use model.covariate=none")
        return c
    c = data.info.get(f"{split}_batch")
    if c is None:
        raise XaeError(f"model.covariate=batch needs each cell's batch: the {data.name} data "
                       "has no batch column; name it with data.batch_key (h5ad, pbmc) or set "
                       "data.batches (synthetic-counts), or use model.covariate=none")
    return c


def levels(data: Dataset, which: str) -> list[str]:
    """The names of the covariate's levels, in code order (empty for none)."""
    if which == "none":
        return []
    names = data.info.get("batch_names" if which == "batch" else "label_names")
    if names:
        return [str(n) for n in names]
    both = [c for c in (codes(data, which, s) for s in SPLITS
                        if getattr(data, f"{s}_x").shape[0]) if c is not None and c.numel()]
    return [str(i) for i in range(int(max(int(c.max()) for c in both)) + 1)]


def check_levels(data: Dataset, which: str, saved: list[str]) -> list[str]:
    """The data's levels, checked against those a model was built with (``saved``, empty for
    a new model): a model's one-hot columns mean the levels it was trained on."""
    found = levels(data, which)
    if saved and list(saved) != found:
        raise XaeError(f"the model was trained on the covariate levels {list(saved)}, the data "
                       f"has {found}; use the data it was trained on")
    for split in (s for s in SPLITS if getattr(data, f"{s}_x").shape[0]):
        c = codes(data, which, split)
        if c is not None and c.numel() and (int(c.min()) < 0 or int(c.max()) >= len(found)):
            raise XaeError(f"the {split} split's covariate codes lie outside the "
                           f"{len(found)} levels {found}")
    return found


def for_model(model: object, data: Dataset, split: str) -> torch.Tensor | None:
    """The ``split``'s covariate levels that ``model`` reads (None for a model without a
    covariate), checked against the levels it was trained on."""
    if not getattr(model, "covariates", 0):
        return None
    m = model.config.model
    check_levels(data, m.covariate, m.covariate_levels)
    return codes(data, m.covariate, split)
