"""``xae embed RUN --out cells.h5ad``: a run on count data (``--data h5ad`` or ``pbmc``) writes
its cells back as AnnData, in the source file's order, with what a biologist reads next:

- ``obsm["X_xae"]``: each cell's posterior mean (the latent a scanpy user clusters);
- ``layers["xae_normalized"]``: the decoded normalized expression ρ·10⁴ at that latent
  (at the cell's own batch, for a model with a batch covariate);
- ``uns["xae"]``: the run folder, its preset and the likelihood.

The source file is read again (its counts checked as for training), so every cell is
embedded, training and test alike; the output is written whole or not at all.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xae.errors import XaeError
from xae.fileio import atomic_path, output_file

COUNT_SOURCES = ("h5ad", "pbmc")
BATCH = 1000


def add_parser(sub: Any) -> None:
    """Add the ``embed`` command to the ``xae`` parser's ``sub``."""
    s = sub.add_parser("embed", help="write a count-data run's latents into an .h5ad",
                       description="Embed every cell of the run's AnnData source and write "
                       "a copy with obsm['X_xae'] (posterior means) and "
                       "layers['xae_normalized'] (decoded ρ·10⁴).")
    s.add_argument("run", help="a run folder trained on --data h5ad or pbmc")
    s.add_argument("--out", required=True, help="the .h5ad file to write")
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    s.set_defaults(fn=cmd_embed)


@torch.no_grad()
def embed(model: Any, counts: Any, c: torch.Tensor | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and decoded normalized expression of every cell (at its covariate
    level ``c``, for a model with a covariate), in batches."""
    model.eval()
    device = next(model.parameters()).device
    means, expression = [], []
    for start in range(0, counts.shape[0], BATCH):
        rows = counts[start:start + BATCH]
        rows = rows.toarray() if hasattr(rows, "toarray") else rows  # sparse: this batch only
        x = torch.as_tensor(rows, dtype=torch.float32, device=device)
        cb = None if c is None else c[start:start + BATCH].to(device)
        z = model.latent_mean(x, cb)
        means.append(z.cpu().numpy())
        expression.append(model.decode(z, c=cb).cpu().numpy())
    return np.concatenate(means), np.concatenate(expression)


def _levels(model: Any, adata: Any, counts: Any, cfg: Any) -> torch.Tensor | None:
    """Every cell's covariate level, in the file's order (None for a model without one),
    checked against the levels the model was trained on."""
    from xae.data import Dataset, covariates
    from xae.data.counts import cell_columns

    info: dict = {}
    y, per_sample = cell_columns(adata, cfg, info)
    info.update({f"test_{k}": v for k, v in per_sample.items()})
    cells = Dataset(cfg.name, torch.empty(0, counts.shape[1]), None,
                    torch.empty(counts.shape[0], 0), y, info)
    return covariates.for_model(model, cells, "test")


def cmd_embed(args: argparse.Namespace) -> int:
    import xae
    from xae.data.counts import read_counts

    out = output_file(args.out, ".h5ad", "--out")
    model = xae.load(args.run, device=args.device)
    cfg = model.config.data
    if cfg.name not in COUNT_SOURCES:
        raise XaeError(f"xae embed writes AnnData for runs on count data (--data h5ad or "
                       f"pbmc); this run was trained on {cfg.name}")
    adata, counts, _ = read_counts(cfg)
    if counts.shape[1] != model.data_shape[0]:
        raise XaeError(f"the source now has {counts.shape[1]} genes; the run was trained on "
                       f"{model.data_shape[0]}")
    means, expression = embed(model, counts, _levels(model, adata, counts, cfg))
    adata = adata.copy()
    adata.obsm["X_xae"] = means
    adata.layers["xae_normalized"] = expression.astype(np.float32)
    adata.uns["xae"] = {"run": str(Path(args.run).resolve()), "preset": str(
        model.config.preset or ""), "likelihood": model.config.model.likelihood}
    with atomic_path(out) as tmp:
        adata.write_h5ad(tmp)
    print(f"wrote {out}: {adata.n_obs} cells, obsm['X_xae'] ({means.shape[1]} latents), "
          f"layers['xae_normalized']")
    return 0
