"""Synthetic single-cell counts from a known negative-binomial model (``--data
synthetic-counts``), for tests and scale benchmarks: known cell types, a known latent, and
known batch effects.

Each of ``data.n`` cells (plus ``round(n · test_fraction)`` test cells) belongs to one of
``data.cell_types`` types and one of ``data.batches`` batches, uniformly. Its latent is its
type's centre plus noise, z = c_type + 0.5·ε in ``data.true_latent_dim`` dimensions
(centres ~ N(0, 2²)); its expression proportions are ρ = softmax(W z + b + δ_batch) over
``data.dim`` genes (W ~ N(0, 1/d), b ~ N(0, 1), δ ~ N(0, 0.5²) per batch and gene, δ = 0 for
batch 0); its library size is ℓ = exp(N(log 2000 + 0.2·batch, 0.3²)); and its counts are
NB(μ = ℓ·ρ, r) with one inverse dispersion per gene, r = exp(U(0, 2)). Everything is drawn
from ``data.seed``. ``info`` keeps the truth: ``train_z`` / ``test_z`` (the latents),
``train_batch`` / ``test_batch``, ``batch_names`` and ``label_names``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from xae.config import DataConfig
from xae.data.counts import check_counts
from xae.data.dataset import Dataset
from xae.data.split import check_fraction, split_dataset
from xae.errors import positive_int


def load_synthetic_counts(cfg: DataConfig) -> Dataset:
    for key in ("n", "dim", "true_latent_dim", "cell_types", "batches"):
        positive_int(getattr(cfg, key), f"data.{key}", " for 'synthetic-counts'")
    rng = np.random.default_rng(cfg.seed)
    test = round(cfg.n * check_fraction(cfg.test_fraction))
    n = cfg.n + test
    d, genes, k, b = cfg.true_latent_dim, cfg.dim, cfg.cell_types, cfg.batches
    centres = rng.normal(0.0, 2.0, (k, d))
    types = rng.integers(k, size=n)
    batch = rng.integers(b, size=n)
    z = centres[types] + 0.5 * rng.standard_normal((n, d))
    w = rng.normal(0.0, 1.0 / math.sqrt(d), (d, genes))
    bias = rng.normal(0.0, 1.0, genes)
    delta = rng.normal(0.0, 0.5, (b, genes))
    delta[0] = 0.0
    logits = z @ w + bias + delta[batch]
    rho = np.exp(logits - logits.max(1, keepdims=True))
    rho /= rho.sum(1, keepdims=True)
    library = np.exp(rng.normal(math.log(2000.0) + 0.2 * batch, 0.3))
    r = np.exp(rng.uniform(0.0, 2.0, genes))
    mu = library[:, None] * rho
    counts = rng.poisson(rng.gamma(r, mu / r)).astype(np.float32)
    check_counts(counts, "the synthetic counts (raise data.n or lower data.dim)")
    info = {"label_names": [f"type{i}" for i in range(k)],
            "batch_names": [f"batch{i}" for i in range(b)], "genes": [f"g{j}" for j in
                                                                    range(genes)]}
    per_sample = {"z": torch.from_numpy(z.astype(np.float32)),
                  "batch": torch.from_numpy(batch.astype(np.int64))}
    return split_dataset("synthetic-counts", torch.from_numpy(counts),
                         torch.from_numpy(types.astype(np.int64)), test / n,
                         cfg.seed, info, per_sample)
