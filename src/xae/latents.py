"""``xae.latent(model, x, c)``: the representation people use downstream, each datum's
latent mean (the posterior mode; z itself for a deterministic code), computed in batches
under no_grad in eval mode. For a model with a covariate (``model.covariate``), ``c`` holds
each datum's level and the result is the covariate-corrected representation (scVI's
batch-corrected latent)."""
from __future__ import annotations

import torch

from xae.model import Autoencoder, inference


def latent(model: Autoencoder, x: torch.Tensor, c: torch.Tensor | None = None,
           batch_size: int = 500) -> torch.Tensor:
    """The latent means of ``x`` (N, *data_shape), (N, D) float32 on the CPU; ``c`` (N,) the
    covariate levels, required exactly when the model has a covariate."""
    with inference(model) as device:
        return torch.cat([model.latent_mean(x[i:i + batch_size].to(device),
                                            None if c is None else c[i:i + batch_size])
                          .float().cpu() for i in range(0, x.shape[0], batch_size)])
