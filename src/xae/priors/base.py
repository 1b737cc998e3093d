"""The prior contract."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from xae.errors import XaeError


class Prior(nn.Module):
    """p(z) over ``latent_dim`` dimensions.

    ``factorized`` priors also give ``log_prob_per_dim``; priors with a closed-form KL to a
    posterior return it from :meth:`kl` (None otherwise: then the KL is estimated by Monte
    Carlo, see :func:`xae.distributions.kl_divergence`).
    """

    factorized: bool = False
    needs_posterior: bool = False  # a mixture of the encoder's posteriors (the VampPrior)
    needs_data_shape: bool = False  # built as (latent_dim, data_shape) (pseudo-inputs)

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not factorize over dimensions")

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def sample_tempered(self, n: int, temperature: float) -> torch.Tensor:
        """n draws with the prior's spread scaled by ``temperature`` (NVAE's reduced-
        temperature samples); only priors with a scale to reduce define it."""
        if temperature == 1.0:
            return self.sample(n)
        raise XaeError(f"the {type(self).__name__} prior has no temperature; sample at "
                       f"temperature 1 or use model.prior=normal")

    def kl(self, posterior: object) -> torch.Tensor | None:
        """KL(posterior ‖ self) in closed form, per dimension (or position); None where this
        prior has none."""
        return None

    def bind(self, model: nn.Module) -> None:
        """Called once by the model that owns this prior; priors built from the model's own
        pieces (the VampPrior: the encoder; the code prior: the quantizer) keep what they
        need."""

    def on_load(self, run_dir: Path) -> None:
        """Called when the model is loaded from a run folder, after its weights: a prior
        with files of its own there attaches them. Here: the diffusion prior that
        ``xae prior fit`` fitted to a continuous code (``RUN/diffusion_prior/``), drawn from
        by ``model.sample_z(n, source="fitted")``; the code prior attaches its own."""
        from xae.diffprior import load_diffusion_prior  # it imports the fit's machinery

        fitted = load_diffusion_prior(run_dir, self.latent_dim, self._device())
        self._fitted = (fitted,) if fitted is not None else ()  # a tuple: not a submodule

    @property
    def fitted(self) -> nn.Module | None:
        """The prior fitted to the run's latents by ``xae prior fit`` and attached on load
        (see :meth:`on_load`), or None."""
        held = getattr(self, "_fitted", ())
        return held[0] if held else None

    def _device(self) -> torch.device:
        t = next(iter(self.buffers()), None)
        t = t if t is not None else next(iter(self.parameters()), None)
        return t.device if t is not None else torch.device("cpu")
