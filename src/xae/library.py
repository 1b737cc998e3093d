"""scVI's latent library size (Lopez et al. 2018, ``model.library=latent``): a cell's log
library log ℓ is a latent variable of its own, with the posterior q(log ℓ | x) = N(m(x), v(x))
from a small net on what the encoder reads (log1p of the counts, and the one-hot covariate
when the encoder reads one), and the prior p(log ℓ | batch) = N(μ_b, σ²_b), the mean and
variance of the log library sizes of the training cells of batch b (one level without a
covariate). The count likelihood then uses the mean μ = ℓ·ρ with the drawn ℓ in place of the
observed Σ_g x_g; the model adds KL(q(log ℓ|x) ‖ p(log ℓ|b)) as the rate term
``rate/library`` and, in the K-draw path, draws log ℓ with z, so that the importance weights
cover both latents.

The prior's moments are buffers, set from the training data by :meth:`LatentLibrary.fit`
before the first step, so a saved run keeps them in its weights.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xae.data.sparse_rows import row_sums
from xae.distributions import DiagonalGaussian
from xae.errors import XaeError

LIBRARIES = ("observed", "latent")
HIDDEN = 128  # scVI's l_encoder: one hidden layer of the model's width (128 by default)


class LatentLibrary(nn.Module):
    """q(log ℓ | x) and p(log ℓ | level) for cells of ``in_features`` encoder inputs and a
    covariate of ``levels`` levels (1: none)."""

    def __init__(self, in_features: int, levels: int = 1, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2))
        self.register_buffer("prior_mean", torch.zeros(levels))
        self.register_buffer("prior_logvar", torch.zeros(levels))

    def posterior(self, seen: torch.Tensor) -> DiagonalGaussian:
        """q(log ℓ | x) from the encoder's input ``seen`` (B, in_features): (B, 1) moments."""
        mean, logvar = self.net(seen).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def prior(self, c: torch.Tensor | None, n: int) -> DiagonalGaussian:
        """p(log ℓ | level) for ``n`` cells of levels ``c`` (None: the one level)."""
        idx = torch.zeros(n, dtype=torch.long, device=self.prior_mean.device) if c is None \
            else c.to(self.prior_mean.device).long()
        return DiagonalGaussian(self.prior_mean[idx].unsqueeze(-1),
                                self.prior_logvar[idx].unsqueeze(-1))

    @torch.no_grad()
    def fit(self, counts: Any, c: torch.Tensor | None) -> None:
        """Set the prior to the mean and variance of log Σ_g x_g over the cells of each
        level (scVI's per-batch library moments); a level needs two cells or more."""
        log_lib = row_sums(counts).log()
        levels = self.prior_mean.shape[0]
        codes = torch.zeros_like(log_lib, dtype=torch.long) if c is None else c.long()
        for b in range(levels):
            sel = log_lib[codes.to(log_lib.device) == b]
            if sel.numel() < 2:
                raise XaeError(f"the latent library's prior needs two training cells or more "
                               f"of each batch; batch {b} has {sel.numel()}")
            self.prior_mean[b] = sel.mean()
            self.prior_logvar[b] = sel.var().clamp_min(1e-8).log()
