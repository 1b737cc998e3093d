"""Count data, cells × genes: a user's AnnData file (``--data h5ad``) and scanpy's bundled PBMC
sample (``--data pbmc``).

Counts are held as float32 tensors of whole numbers; a file's sparse matrix stays sparse until
batching (:class:`~xae.data.sparse_rows.SparseRows`: each batch is made dense when the
trainer or an evaluation takes it). Every source checks its
counts: negative or fractional values, cells without counts and genes without counts are
XaeErrors that say which and how many. A batch covariate (``data.batch_key``) is kept per
cell as ``info["train_batch"]`` / ``info["test_batch"]`` (codes) with ``info["batch_names"]``;
cell types (``data.label_key``, default the first of ``cell_type``, ``bulk_labels``) become the
labels.

``pbmc`` is ``10x_pbmc68k_reduced.h5ad`` from the scanpy wheel (700 cells × 765 genes; read
where scanpy installs it, without importing scanpy). Its ``.X`` is scaled; the counts are
recovered from ``raw.X`` = log1p(counts · 10⁴ / n_counts) as round(expm1(raw.X) ·
n_counts / 10⁴), and the recovery is checked: every value within float32 precision (a
relative 10⁻³) of a whole number, or an XaeError.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xae.config import DataConfig
from xae.data.dataset import Dataset
from xae.data.sparse_rows import SparseRows
from xae.data.split import split_dataset
from xae.errors import XaeError

LABEL_KEYS: tuple[str, ...] = ("cell_type", "bulk_labels")
PBMC_FILE = "10x_pbmc68k_reduced.h5ad"
RECOVERY_TOLERANCE = 1e-3


def _anndata() -> Any:
    try:
        import anndata
    except ImportError:
        raise XaeError("reading .h5ad files needs the 'anndata' package: pip install "
                       "'xae[counts]'") from None
    return anndata


def _dense(matrix: Any) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix,
                      dtype=np.float64)


def _matrix(matrix: Any) -> Any:
    """The counts as they come: a sparse matrix stays sparse (CSR, float64), anything else
    becomes a dense float64 array."""
    if hasattr(matrix, "tocsr"):
        return matrix.tocsr().astype(np.float64)
    return _dense(matrix)


def check_counts(x: Any, what: str, genes: list[str] | None = None) -> None:
    """Whole, non-negative numbers, with no empty cell and no empty gene (``x`` dense, or
    sparse with only its stored values checked one by one)."""
    values = x.data if hasattr(x, "tocsr") else x
    if not np.isfinite(values).all():
        raise XaeError(f"{what} holds {int((~np.isfinite(values)).sum())} values that are not "
                       f"finite; counts are whole numbers ≥ 0")
    if (values < 0).any():
        raise XaeError(f"{what} holds {int((values < 0).sum())} negative values; counts are "
                       f"whole numbers ≥ 0 (is this a log-normalised layer? use the raw "
                       f"counts, e.g. --data.layer counts)")
    fractional = values != np.round(values)
    if fractional.any():
        raise XaeError(f"{what} holds {int(fractional.sum())} values that are not whole "
                       f"numbers (e.g. {float(values[fractional][0]):g}); the count "
                       f"likelihoods need raw counts: point data.layer at them")
    empty_cells = int((np.asarray(x.sum(1)).ravel() == 0).sum())
    if empty_cells:
        raise XaeError(f"{what} has {empty_cells} cell(s) without any count; remove them "
                       f"first (e.g. scanpy.pp.filter_cells(adata, min_counts=1))")
    empty = np.flatnonzero(np.asarray(x.sum(0)).ravel() == 0)
    if len(empty):
        names = ", ".join((genes[i] if genes else str(i)) for i in empty[:5])
        raise XaeError(f"{what} has {len(empty)} gene(s) without any count ({names}"
                       f"{', …' if len(empty) > 5 else ''}); remove them first (e.g. "
                       f"scanpy.pp.filter_genes(adata, min_counts=1))")


def _codes(values: Any, key: str) -> tuple[torch.Tensor, list[str]]:
    names, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return torch.from_numpy(codes.astype(np.int64)), [str(n) for n in names]


def cell_columns(adata: Any, cfg: DataConfig, info: dict
                 ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """Every cell's type code (None without a label column) and batch code (``{"batch":
    codes}`` when ``data.batch_key`` names one), in the file's order; ``info`` gets the
    names of the levels and the genes."""
    label_key = cfg.label_key or next((k for k in LABEL_KEYS if k in adata.obs), "")
    if cfg.label_key and cfg.label_key not in adata.obs:
        raise XaeError(f"data.label_key '{cfg.label_key}' is not a column of the cells' "
                       f"table; it has: {', '.join(map(str, adata.obs.columns))}")
    y, label_names = _codes(adata.obs[label_key], label_key) if label_key else (None, [])
    per_sample = {}
    if cfg.batch_key:
        if cfg.batch_key not in adata.obs:
            raise XaeError(f"data.batch_key '{cfg.batch_key}' is not a column of the cells' "
                           f"table; it has: {', '.join(map(str, adata.obs.columns))}")
        per_sample["batch"], info["batch_names"] = _codes(adata.obs[cfg.batch_key],
                                                          cfg.batch_key)
    info.update({"genes": [str(g) for g in adata.var_names], "label_key": label_key,
                 "label_names": label_names})
    return y, per_sample


def from_anndata(name: str, adata: Any, counts: np.ndarray, cfg: DataConfig,
                 info: dict) -> Dataset:
    """A Dataset of ``counts`` (cells × genes) with ``adata``'s labels and batches."""
    y, per_sample = cell_columns(adata, cfg, info)
    x = SparseRows(counts) if hasattr(counts, "tocsr") else torch.from_numpy(
        counts.astype(np.float32))
    return split_dataset(name, x, y, cfg.test_fraction, cfg.seed, info, per_sample)


def read_counts(cfg: DataConfig) -> tuple[Any, Any, dict]:
    """The AnnData of ``cfg`` (``h5ad`` or ``pbmc``), its counts (cells × genes, in the
    file's order, checked; a scipy CSR matrix when the file's is sparse, else a dense array)
    and what the data set's info records about them."""
    if cfg.name == "pbmc":
        return _read_pbmc()
    if not cfg.path:
        raise XaeError("--data h5ad needs a file: set data.path to an .h5ad file")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise XaeError(f"h5ad file '{path}' does not exist; check data.path")
    anndata = _anndata()
    try:
        adata = anndata.read_h5ad(path)
    except Exception as e:  # h5py and anndata raise many kinds on a file that is not AnnData
        raise XaeError(f"'{path}' is not an AnnData .h5ad file ({type(e).__name__}: "
                       f"{str(e)[:200]})") from None
    if cfg.layer:
        if cfg.layer not in adata.layers:
            raise XaeError(f"data.layer '{cfg.layer}' is not in '{path}'; its layers: "
                           f"{', '.join(adata.layers) or 'none (the counts are in .X)'}")
        matrix, where = adata.layers[cfg.layer], f"layer '{cfg.layer}' of '{path}'"
    else:
        matrix, where = adata.X, f".X of '{path}'"
    counts = _matrix(matrix)
    check_counts(counts, where, [str(g) for g in adata.var_names])
    return adata, counts, {"source": where, "path": str(path)}


def load_h5ad(cfg: DataConfig) -> Dataset:
    """A user's ``.h5ad``: counts from ``.X`` or the layer ``data.layer``."""
    adata, counts, info = read_counts(cfg)
    return from_anndata("h5ad", adata, counts, cfg, info)


def pbmc_path() -> Path:
    spec = importlib.util.find_spec("scanpy")
    path = Path(spec.origin).parent / "datasets" / PBMC_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise XaeError(f"--data pbmc reads {PBMC_FILE}, which the scanpy wheel ships: pip "
                       f"install scanpy (xae does not import it, it only reads the file)")
    return path


def _read_pbmc() -> tuple[Any, np.ndarray, dict]:
    path = pbmc_path()
    with warnings.catch_warnings():  # the bundled file's old format: nothing a user can do
        warnings.simplefilter("ignore")
        adata = _anndata().read_h5ad(path)
    scaled = _dense(adata.raw.X)
    n_counts = adata.obs["n_counts"].to_numpy(dtype=np.float64)[:, None]
    recovered = np.expm1(scaled) * n_counts / 1e4
    counts = np.round(recovered)
    off = np.abs(recovered - counts) / np.maximum(counts, 1.0)
    if off.max() > RECOVERY_TOLERANCE:
        raise XaeError(f"the counts recovered from {path} are not whole numbers (off by up to "
                       f"{off.max():.2g} relative); the file is not the one scanpy ships")
    raw = adata.raw.to_adata()
    check_counts(counts, str(path), [str(g) for g in raw.var_names])
    return raw, counts, {"source": str(path), "recovery_max_relative_error": float(off.max())}


def load_pbmc(cfg: DataConfig) -> Dataset:
    """scanpy's PBMC sample, its raw counts recovered and checked."""
    adata, counts, info = read_counts(cfg)
    return from_anndata("pbmc", adata, counts, cfg, info)
