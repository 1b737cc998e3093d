"""The :class:`Dataset` every source returns: a train and a test split held as tensors."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch


def _move(value: Any, device: torch.device | str) -> Any:
    """Move a tensor to ``device``; leave anything else as it is."""
    return value.to(device) if isinstance(value, torch.Tensor) else value


@dataclass(eq=False, repr=False)
class Dataset:
    """A data set split into train and test parts, held in memory as tensors.

    Parameters
    ----------
    name : str
        The source's name (``digits``, ``mnist``, ``fashion-mnist``, ``arrays``,
        ``linear-gaussian``, ``dsprites``, ``ptb``, ``text``).
    train_x, test_x : torch.Tensor
        float32 samples, ``(N, C, H, W)`` for images and ``(N, D)`` for vectors; for
        sentences int64 token ids ``(N, L)``, padded with 0 (:mod:`xae.data.text`).
    train_y, test_y : torch.Tensor or None
        int64 labels of shape ``(N,)``, or ``None`` when the source has none.
    info : dict
        Extra facts about the data, e.g. the true pPCA parameters (tensors) of the
        ``linear-gaussian`` source, the folder MNIST was read from, or the factors of
        ``dsprites`` (:mod:`xae.data.factors`).
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor | None
    test_x: torch.Tensor
    test_y: torch.Tensor | None
    info: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one sample, e.g. ``(1, 28, 28)`` or ``(20,)``."""
        return tuple(self.train_x.shape[1:])

    def to(self, device: torch.device | str) -> Dataset:
        """A copy with every tensor (splits, labels, tensors in ``info``) on ``device``."""
        return dataclasses.replace(
            self,
            train_x=self.train_x.to(device),
            train_y=_move(self.train_y, device),
            test_x=self.test_x.to(device),
            test_y=_move(self.test_y, device),
            info={k: _move(v, device) for k, v in self.info.items()},
        )

    def __repr__(self) -> str:
        labels = "labels" if self.train_y is not None else "no labels"
        return (f"Dataset({self.name!r}, train={self.train_x.shape[0]}, "
                f"test={self.test_x.shape[0]}, shape={self.shape}, {labels}, "
                f"device={self.train_x.device})")
