"""The samples ``xae score`` scores and their anomaly labels: a data source named as in
``xae train --data`` (read with the run's own data settings: binarization, split, seed) or
a ``.npy``/``.npz`` file (all its samples), optionally a second source of anomalies, and the
labels from a file, from anomalous classes, or from which source a sample came."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xae.anomaly.metrics import check_labels
from xae.data.arrays import SUFFIXES, read_arrays, to_labels, to_samples
from xae.errors import XaeError

SPLITS = ("test", "train")


@dataclass
class Samples:
    """Samples (N, *shape), their class labels if the source has any, and what they are."""

    x: torch.Tensor
    classes: torch.Tensor | None
    name: str


def load_source(run_data: object, source: str | None, data_dir: str | None,
                split: str) -> Samples:
    """The samples of ``source`` (None: the run's own data set): its ``split`` for a named
    source, every sample of a ``.npy``/``.npz`` file."""
    if source is not None and Path(source).suffix.lower() in SUFFIXES:
        path = Path(source)
        if not path.is_file():
            raise XaeError(f"data file '{path}' does not exist")
        raw, labels = read_arrays(path)
        x = to_samples(raw, path)
        return Samples(x, None if labels is None else to_labels(labels, x.shape[0], path),
                       path.name)
    from xae.data import load, source_config

    if split not in SPLITS:
        raise XaeError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    ds = load(source_config(run_data, source, data_dir))
    return Samples(getattr(ds, f"{split}_x"), getattr(ds, f"{split}_y"), f"{ds.name} {split}")


def first(samples: Samples, limit: int | None) -> Samples:
    """The first ``limit`` samples (all when None)."""
    if limit is None:
        return samples
    classes = None if samples.classes is None else samples.classes[:limit]
    return Samples(samples.x[:limit], classes, samples.name)


def parse_classes(text: str) -> list[int]:
    """``"1,2"`` → [1, 2]."""
    try:
        out = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise XaeError(f"--anomalous-classes takes class numbers separated by commas, e.g. "
                       f"1,7; got {text!r}") from None
    if not out:
        raise XaeError("--anomalous-classes names no class; give e.g. --anomalous-classes 1,7")
    return out


def labels_from_classes(samples: Samples, classes: list[int]) -> np.ndarray:
    """1 where a sample's class is one of ``classes``, else 0."""
    if samples.classes is None:
        raise XaeError(f"{samples.name} has no class labels, so --anomalous-classes cannot "
                       f"apply; give --labels FILE.npy (0 normal, 1 anomalous) instead")
    present = set(samples.classes.tolist())
    missing = sorted(set(classes) - present)
    if missing:
        raise XaeError(f"--anomalous-classes {missing} do not occur in {samples.name} (its "
                       f"classes: {sorted(present)})")
    return np.isin(samples.classes.numpy(), classes).astype(np.int64)


def labels_from_file(path: str, n: int) -> np.ndarray:
    """0/1 labels read from a ``.npy`` file, one per scored sample."""
    p = Path(path)
    if p.suffix.lower() != ".npy" or not p.is_file():
        raise XaeError(f"--labels {path}: give an existing .npy file of 0/1 labels, one per "
                       f"sample")
    try:
        y = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise XaeError(f"--labels {path} could not be read ({e}); save the labels with "
                       f"numpy.save") from None
    return check_labels(y, n, f"the labels in {path}").astype(np.int64)


def with_anomalies(normal: Samples, anomalies: Samples) -> tuple[Samples, np.ndarray]:
    """Both sets in one (normal first) and their labels, 0 for normal and 1 for anomalous."""
    if tuple(normal.x.shape[1:]) != tuple(anomalies.x.shape[1:]):
        raise XaeError(f"the anomalies ({anomalies.name}) have samples of shape "
                       f"{tuple(anomalies.x.shape[1:])}, the normal data "
                       f"{tuple(normal.x.shape[1:])}; give anomalies of the run's shape")
    x = torch.cat([normal.x, anomalies.x])
    labels = np.r_[np.zeros(len(normal.x), np.int64), np.ones(len(anomalies.x), np.int64)]
    return Samples(x, None, f"{normal.name} + {anomalies.name}"), labels
