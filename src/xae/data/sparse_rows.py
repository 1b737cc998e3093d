"""A split of cells held as a sparse matrix until batching: ``--data h5ad`` keeps an AnnData
file's sparse counts (scipy CSR) as :class:`SparseRows`, which the trainer and the
evaluations index like a tensor. Indexing rows (an index tensor, a slice, an int) gives them
dense, float32, on the device the rows were moved to, so only a batch is ever dense; the
matrix itself stays on the CPU. :meth:`take` selects rows and stays sparse (the splits)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


class SparseRows:
    """Rows of a CSR matrix (cells × genes) that become dense float32 tensors when indexed."""

    dtype = torch.float32
    ndim = 2

    def __init__(self, csr: Any, device: torch.device | str = "cpu") -> None:
        self.csr = csr.tocsr().astype(np.float32)
        self.device = torch.device(device)

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.csr.shape)

    def __len__(self) -> int:
        return self.csr.shape[0]

    def __getitem__(self, idx: Any) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        rows = self.csr[idx]
        dense = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows)
        return torch.from_numpy(dense.reshape(-1, self.csr.shape[1])).to(self.device)

    def take(self, idx: Any) -> SparseRows:
        """The rows ``idx`` (an index tensor or array), still sparse."""
        idx = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        return SparseRows(self.csr[idx], self.device)

    def to(self, device: torch.device | str) -> SparseRows:
        """The same rows, densified onto ``device`` when indexed."""
        return SparseRows(self.csr, device) if torch.device(device) != self.device else self

    def min(self) -> torch.Tensor:
        low = float(self.csr.data.min()) if self.csr.nnz else 0.0
        return torch.tensor(min(low, 0.0) if self.csr.nnz < np.prod(self.csr.shape) else low)

    def max(self) -> torch.Tensor:
        high = float(self.csr.data.max()) if self.csr.nnz else 0.0
        return torch.tensor(max(high, 0.0) if self.csr.nnz < np.prod(self.csr.shape) else high)

    def all_finite(self) -> bool:
        return bool(np.isfinite(self.csr.data).all())

    def row_sums(self) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.csr.sum(1), dtype=np.float64).ravel())


def take_rows(x: Any, idx: torch.Tensor) -> Any:
    """``x[idx]``, kept sparse for :class:`SparseRows`."""
    return x.take(idx) if isinstance(x, SparseRows) else x[idx]


def row_sums(x: Any) -> torch.Tensor:
    """Each row's sum in float64 (a cell's library size), for a tensor or sparse rows."""
    return x.row_sums() if isinstance(x, SparseRows) else x.double().sum(-1)
