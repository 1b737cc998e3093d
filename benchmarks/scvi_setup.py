"""What ``scvi_compare.py`` trains and measures: the same cells, split the same way, given to
scvi-tools' ``SCVI`` and to xae's ``scvi`` preset with the same architecture, likelihood,
batch size, learning rate and epochs, and the same held-out measurements of both.

The shared architecture is scvi-tools' default: one hidden layer of 128 with batch norm,
dropout 0.1 in the encoder, 10 latents, a zero-inflated negative binomial with one inverse
dispersion per gene at the observed library size; a batch covariate, where the data has two
batches, is one-hot beside z in the decoder and not read by the encoder (scvi-tools'
``encode_covariates=False``). Both train with Adam at 1e-3 on batches of 128 at a KL weight
of 1 from the first step (scvi-tools' KL warm-up, 400 epochs by default, is switched off so
that both optimise the same ELBO), on every training cell (no validation split).

Measured on the held-out cells, each library with its own code: the reconstruction NLL and
the −ELBO per cell (one posterior draw each, in eval mode), the silhouette of the cell types
in the posterior means, and, with batches, the batch mixing of the means: the entropy of
the batches among each cell's 50 nearest neighbours over log(2) (1: perfectly mixed).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

import xae
from xae.config import DataConfig
from xae.data import Dataset, covariates, load as load_data

EPOCHS = {"pbmc": 400, "synthetic": 20}  # PBMC: scvi-tools' default for 700 cells
SYNTHETIC = {"name": "synthetic-counts", "n": 55_000, "dim": 1000, "batches": 2,
             "cell_types": 8, "test_fraction": 0.1}
BATCH, LR, HIDDEN, LATENT, DROPOUT = 128, 1e-3, 128, 10, 0.1
NEIGHBOURS = 50


def data(name: str) -> Dataset:
    """The cells of a comparison: scanpy's PBMC (cell types, no batches) or the large
    two-batch synthetic set."""
    if name == "pbmc":
        return load_data(DataConfig(name="pbmc"))
    return load_data(DataConfig(**SYNTHETIC))


def _batched(d: Dataset) -> bool:
    return "train_batch" in d.info and len(d.info.get("batch_names", [])) > 1


def held_out_scores(z: np.ndarray, d: Dataset) -> dict[str, float]:
    """Silhouette of the test cells' types in ``z`` and, with batches, their batch mixing."""
    out = {"silhouette_cell_type": float(silhouette_score(z, d.test_y.numpy()))}
    if _batched(d):
        b = d.info["test_batch"].numpy()
        _, idx = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(z).kneighbors(z)
        share = (b[idx[:, 1:]] == 1).mean(1)  # two batches: the share of batch 1 around each
        ent = -(np.where(share > 0, share * np.log(np.clip(share, 1e-12, 1)), 0)
                + np.where(share < 1, (1 - share) * np.log(np.clip(1 - share, 1e-12, 1)), 0))
        out["batch_mixing"] = float(ent.mean() / np.log(2))
    return out


def run_xae(d: Dataset, epochs: int, run: str, threads: int) -> dict[str, Any]:
    """Train xae's ``scvi`` preset on the training cells; measure the test cells."""
    torch.set_num_threads(threads)
    keys = {"model.covariate": "batch", "model.covariate_encoder": False} if _batched(d) else {}
    if d.name == "synthetic-counts":  # the run's config names the cells it was given
        keys.update({f"data.{k}": v for k, v in SYNTHETIC.items()})
    cfg = xae.preset("scvi", **{"data.name": "pbmc", "train.epochs": epochs,
                                "train.batch_size": BATCH, "train.lr": LR,
                                "model.mlp.hidden": [HIDDEN], "model.latent_dim": LATENT,
                                "model.mlp.dropout": DROPOUT, "train.eval_every": 0,
                                "train.figures": False, "train.progress": False,
                                "train.threads": threads, **keys})
    t0 = time.perf_counter()
    xae.train(cfg, run, data=d)
    wall = time.perf_counter() - t0
    model = xae.load(run)
    c = covariates.for_model(model, d, "test")
    m = xae.evaluate_model(model, d.test_x, c=c, hole_metrics=False).metrics
    z = xae.latent(model, d.test_x, c).numpy()
    loop_s = json.loads((Path(run) / "metrics.json").read_text())["train_time_s"]
    return {"library": "xae", "train_wall_s": wall, "train_loop_s": loop_s,
            "recon_nll": m["distortion"], "neg_elbo": m["neg_elbo"], "kl": m["rate"],
            **held_out_scores(z, d)}


def _adata(x: torch.Tensor, d: Dataset, split: str) -> Any:
    import anndata
    import pandas as pd

    obs = pd.DataFrame(index=[f"{split}{i}" for i in range(len(x))])
    if _batched(d):
        names = d.info["batch_names"]
        obs["batch"] = pd.Categorical([names[int(i)] for i in d.info[f"{split}_batch"]],
                                      categories=names)
    return anndata.AnnData(X=x.numpy().astype(np.float32), obs=obs)


def run_scvi(d: Dataset, epochs: int, threads: int) -> dict[str, Any]:
    """Train scvi-tools' ``SCVI`` on the training cells; measure the test cells."""
    import logging

    import scvi

    torch.set_num_threads(threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    scvi.settings.seed = 0
    train, test = _adata(d.train_x, d, "train"), _adata(d.test_x, d, "test")
    scvi.model.SCVI.setup_anndata(train, batch_key="batch" if _batched(d) else None)
    model = scvi.model.SCVI(train, n_hidden=HIDDEN, n_latent=LATENT, n_layers=1,
                            dropout_rate=DROPOUT, gene_likelihood="zinb", dispersion="gene")
    t0 = time.perf_counter()
    model.train(max_epochs=epochs, batch_size=BATCH, train_size=1.0, accelerator="cpu",
                devices=1, enable_progress_bar=False, early_stopping=False,
                plan_kwargs={"lr": LR, "n_epochs_kl_warmup": None, "n_steps_kl_warmup": None})
    wall = time.perf_counter() - t0
    model.module.eval()
    recon, kl = _scvi_terms(model, test)
    neg_elbo = -float(model.get_elbo(test, batch_size=1000))  # its own figure, a fresh draw
    z = model.get_latent_representation(test, batch_size=1000)
    return {"library": f"scvi-tools {scvi.__version__}", "train_wall_s": wall,
            "recon_nll": recon, "kl": kl, "neg_elbo": recon + kl,
            "neg_elbo_get_elbo": neg_elbo, **held_out_scores(z, d)}


@torch.inference_mode()
def _scvi_terms(model: Any, adata: Any) -> tuple[float, float]:
    """Mean reconstruction NLL and KL per test cell from the same forward passes (what
    scvi-tools' ``get_elbo`` sums), so that the two add up to its −ELBO."""
    rec, kl = [], []
    for tensors in model._make_data_loader(adata=model._validate_anndata(adata),
                                           batch_size=1000):
        _, _, out = model.module(tensors, loss_kwargs={"kl_weight": 1.0})
        parts = [out.reconstruction_loss, out.kl_local]
        r, k = (torch.stack(list(p.values())).sum(0) if isinstance(p, dict) else p
                for p in parts)
        rec.append(r)
        kl.append(k)
    return float(torch.cat(rec).double().mean()), float(torch.cat(kl).double().mean())


def sizes(d: Dataset) -> dict[str, Any]:
    return {"train_cells": int(d.train_x.shape[0]), "test_cells": int(d.test_x.shape[0]),
            "genes": int(d.train_x.shape[1]),
            "batches": len(d.info.get("batch_names", [])) if _batched(d) else 1,
            "cell_types": int(d.test_y.max()) + 1}
