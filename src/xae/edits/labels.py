"""Where an attribute's labels come from, by name: a built-in measure, a class, or a CSV column.

- ``thickness``, ``slant``: measured from the pixels of one-channel images
  (:mod:`xae.edits.measures`): float labels, top third against bottom third;
- ``class=K``: the data's class labels, class K against the rest;
- a column of a CSV file (``--labels file.csv``): one row per image, in the images' order,
  with a header row; the column's values are booleans (``true``/``false``, ``1``/``0``,
  ``yes``/``no``, ``t``/``f``, ``y``/``n``, any case).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from xae.edits.measures import MEASURES
from xae.errors import XaeError

TRUE = frozenset({"true", "1", "yes", "t", "y"})
FALSE = frozenset({"false", "0", "no", "f", "n"})


def read_csv(path: str | Path) -> dict[str, list[str]]:
    """Column name -> its values, from a CSV file with a header row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise XaeError(f"cannot read the labels file '{path}' ({e}); give a CSV file with a "
                       f"header row and one row per image") from None
    if not rows or not any(h.strip() for h in rows[0]):
        raise XaeError(f"the labels file '{path}' has no header row; its first row names the "
                       f"columns")
    header = [h.strip() for h in rows[0]]
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise XaeError(f"the labels file '{path}', line {i}: {len(row)} values for "
                           f"{len(header)} columns; every row needs one value per column")
    return {h: [r[j].strip() for r in rows[1:]] for j, h in enumerate(header)}


def csv_labels(path: str | Path, column: str, n: int) -> np.ndarray:
    """The boolean column ``column`` of the CSV file ``path``, which must have ``n`` rows."""
    table = read_csv(path)
    if column not in table:
        raise XaeError(f"the labels file '{path}' has no column '{column}'; its columns are "
                       f"{', '.join(table)}")
    values = table[column]
    if len(values) != n:
        raise XaeError(f"the labels file '{path}' has {len(values)} rows but there are {n} "
                       f"images; give one row per image, in the images' order")
    out = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        low = v.lower()
        if low not in TRUE | FALSE:
            raise XaeError(f"the labels file '{path}', column '{column}', line {i + 2}: "
                           f"{v!r} is not a boolean; use true/false, 1/0 or yes/no")
        out[i] = low in TRUE
    return out


def available(x: torch.Tensor, y: torch.Tensor | None) -> list[str]:
    """The built-in attribute names for images ``x`` with class labels ``y`` (or None)."""
    names = list(MEASURES) if x.dim() == 4 and x.shape[1] == 1 else []
    if y is not None:
        names += [f"class={k}" for k in torch.unique(y).tolist()]
    return names


def built_in(name: str, x: torch.Tensor, y: torch.Tensor | None) -> np.ndarray:
    """The labels of the built-in attribute ``name`` (see :func:`available`) for ``x``."""
    names = available(x, y)
    if name in MEASURES and name in names:
        return MEASURES[name](x)
    if name.startswith("class=") and y is not None:
        k = name[len("class="):]
        if k.lstrip("-").isdigit():  # a class with no images is an empty group, said later
            return (y == int(k)).cpu().numpy()
    why = ("" if names else "; thickness and slant need one-channel images and class=K "
           "needs labelled data")
    raise XaeError(f"unknown attribute '{name}'; the available ones are "
                   f"{', '.join(names) or 'none'}{why} (or give --labels file.csv with a "
                   f"boolean column of that name)")


def attribute_labels(name: str, x: torch.Tensor, y: torch.Tensor | None,
                     csv_path: str | Path | None = None) -> np.ndarray:
    """The labels of attribute ``name`` for images ``x``: a CSV column when ``csv_path`` is
    given, else a built-in."""
    if csv_path is not None:
        return csv_labels(csv_path, name, len(x))
    return built_in(name, x, y)
