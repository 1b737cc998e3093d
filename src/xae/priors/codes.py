"""The prior over a discrete bottleneck's codes: categorical at each position, uniform while the
autoencoder trains (as in van den Oord et al. 2017, sec. 3.1), autoregressive once
``xae prior fit`` has learned one over the training set's index grids (ibid. sec. 3.2).

The prior samples index grids and maps them to codes through the model's own quantizer (lent
by :meth:`CodePrior.bind`), so sampling decodes exactly what the decoder saw in training.
The KL regularizer asks it for KL(q ‖ uniform) = log K − H(q) per position, the rate of a
categorical posterior (Gumbel-softmax); deterministic quantizers have no rate.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from xae.errors import XaeError
from xae.priors.base import Prior


class CodePrior(Prior):

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)
        self.ar: nn.Module | None = None
        self._to_z: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.grid: tuple[int, ...] = ()
        self.codebook_size = 0

    def bind(self, model: nn.Module) -> None:
        """Lend the prior the model's quantizer: its index grid and its index → z map."""
        q = model.bottleneck
        if not q.discrete:
            raise XaeError("model.prior 'codes' is a prior over code indices, so it needs a "
                           "discrete bottleneck (model.bottleneck = vq, rvq, fsq, lfq or "
                           "gumbel); use model.prior=normal for continuous codes")
        self._to_z = q.indices_to_z
        self._owner = (model,)  # in a tuple: not registered as a submodule of the prior
        self.grid = (q.positions, q.stages) if q.stages > 1 else (q.positions,)
        self.codebook_size = q.codebook_size

    def on_load(self, run_dir: Path) -> None:
        """Attach the code prior fitted to the run (``xae prior fit``), if there is one."""
        from xae.codeprior import load_code_prior  # fitting it imports the run's checkpoint

        ar = load_code_prior(run_dir, self._anchor.device, model=self._owner[0])
        if ar is not None:
            self.attach(ar)

    @property
    def tokens(self) -> int:
        """Indices per sample: positions × stages."""
        return math.prod(self.grid)

    def attach(self, ar: nn.Module) -> None:
        """Use a fitted autoregressive model over the flattened index grid (see
        :mod:`xae.codeprior`) for ``sample`` and ``log_prob_indices``."""
        self.ar = ar.to(self._anchor.device)

    def kl(self, posterior: Any) -> torch.Tensor:
        """KL(q ‖ uniform) = log K − H(q) per position, (B, P), for a categorical posterior."""
        return posterior.kl_uniform()

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise XaeError("the code prior scores code indices, not codes z: use "
                       "log_prob_indices(model.encode(x).indices)")

    def log_prob_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """log p(index grid) per sample (B,), in nats; indices (B, P) or (B, P, S)."""
        tokens = indices.reshape(indices.shape[0], -1)
        if self.ar is None:
            return tokens.new_full((tokens.shape[0],), -tokens.shape[1] *
                                   math.log(self.codebook_size), dtype=torch.float32)
        return self.ar.log_prob(tokens)

    @torch.no_grad()
    def sample_indices(self, n: int) -> torch.Tensor:
        """n index grids (n, P) or (n, P, S) from the prior."""
        if self._to_z is None:
            raise XaeError("this code prior is not bound to a quantizer; build the model with "
                           "xae.build, which binds it")
        device = self._anchor.device
        if self.ar is None:
            tokens = torch.randint(self.codebook_size, (n, self.tokens), device=device)
        else:
            tokens = self.ar.sample(n)
        return tokens.view(n, *self.grid)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n codes z (n, D): index grids from the prior, mapped through the quantizer."""
        return self._to_z(self.sample_indices(n))

    def extra_repr(self) -> str:
        kind = "uniform" if self.ar is None else "autoregressive"
        return f"{kind}, grid={self.grid}, codebook_size={self.codebook_size}"
