"""The bottleneck contract."""
from __future__ import annotations

import torch
from torch import nn

from xae.errors import XaeError
from xae.outputs import BottleneckOutput


class Bottleneck(nn.Module):
    """Maps encoder features (B, F) to a latent code (B, D).

    ``stochastic`` bottlenecks return a Gaussian posterior q(z|x) that regularizers and
    likelihood bounds use; deterministic ones return ``posterior=None``. ``discrete`` ones
    (see :mod:`xae.bottlenecks.quantizer`) also return code indices, and ``has_posterior``
    is set where the posterior is categorical (Gumbel-softmax), for the KL to the code prior.
    ``hierarchical`` ones return an ordered list of latent groups, each with its posterior
    and the prior its top-down path computed (see :mod:`xae.bottlenecks.topdown`), and say
    how many in ``num_groups`` (None: a flat code), which the build checks settings against.
    """

    stochastic: bool = False
    discrete: bool = False
    has_posterior: bool = False
    hierarchical: bool = False
    STAGE_KEY: str | None = None  # the setting naming a piece whose section it also gets

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.latent_dim = latent_dim

    @property
    def num_groups(self) -> int | None:
        """The number of latent groups of a hierarchy (``groups`` of its outputs); None for a
        flat code."""
        return None

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        """``step`` is the training step, passed by the trainer to bottlenecks with schedules
        (the Gumbel-softmax temperature); None outside training."""
        raise NotImplementedError

    @classmethod
    def prior_dim(cls, latent_dim: int, settings: dict, data_shape: tuple[int, ...]) -> int:
        """The dimensions of the code the model's prior piece is over, from the build's
        ``latent_dim``, this bottleneck's settings and the data's shape (the top group's
        size, for a hierarchy)."""
        return latent_dim

    def bind(self, model: nn.Module) -> None:
        """Called once by the model that owns this bottleneck; a bottleneck that walks
        another piece's path (the hvae decoder's) keeps it here."""

    def draw(self, h: torch.Tensor, k: int, step: int | None = None,
             out: BottleneckOutput | None = None) -> BottleneckOutput:
        """K draws per datum from q(z|x): the output with z (K, B, D); a stochastic
        bottleneck's posterior is encoded once (or taken from ``out``, this bottleneck's
        output for ``h``) and sampled K times."""
        out = self(h, step=step) if out is None else out
        if not self.stochastic:
            raise XaeError(f"{type(self).__name__} gives no posterior to draw from; K-sample "
                           f"bounds need a stochastic bottleneck (e.g. model.bottleneck=gaussian)")
        return BottleneckOutput(z=out.posterior.sample(k), posterior=out.posterior,
                                indices=out.indices, aux=out.aux)

    def mode(self, h: torch.Tensor) -> torch.Tensor:
        """The code people look at: the posterior's mode, or z itself for a deterministic
        code."""
        out = self(h)
        return out.posterior.mode() if self.stochastic else out.z

    def sample_prior(self, prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
        """n codes z ~ p(z), (n, D): the prior piece's draws (a hierarchy continues them down
        its top-down path), with the prior's spread scaled by ``temperature``."""
        return prior.sample_tempered(n, temperature)
