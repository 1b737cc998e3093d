"""The posterior of a top-down ResNet VAE (NVAE, VDVAE): spatial latent groups at several
scales, drawn down the decoder's own generative path (see :mod:`xae.nets.hvae`).

For each group, a head reads the decoder's state and the encoder's map at the group's scale.
Below the top, the posterior is parametrized relative to the prior the path computed (NVAE's
residual normal, Vahdat & Kautz 2020, sec. 3.2):

    q(z_l | x, z_<l) = N(μ_p + Δμ, σ_p² · exp(Δ)),   Δμ, Δ from the head,

so the KL of a group depends on the head's output alone (and is 0 where it outputs 0), which
keeps the early KLs finite; log-variances pass through a soft clamp. The top group's
posterior is N(μ, σ²) from its head, against the model's prior piece. One walk down the path
gives every group and, at its end, the likelihood's parameters, which the model uses instead
of decoding z a second time (``BottleneckOutput.theta``).
"""
from __future__ import annotations

import torch
from torch import nn

from xae.bottlenecks.base import Bottleneck
from xae.bottlenecks.topdown import TopDown
from xae.distributions import DiagonalGaussian
from xae.errors import XaeError
from xae.nets.hvae import KEYS, HVAEDecoder, HVAEEncoder, gaussian_map, plan, soft_clamp
from xae.outputs import BottleneckOutput, LatentGroup


class HVAE(Bottleneck):
    """See the module's docstring; needs the ``hvae`` encoder and decoder."""

    stochastic = True
    has_posterior = True
    hierarchical = True
    KEYS = KEYS

    def __init__(self, in_features: int, latent_dim: int, *, channels: int = 32,
                 groups: list[int] = [1, 2, 2], z_channels: int = 4, cells: int = 1) -> None:
        super().__init__(in_features, latent_dim)
        n = sum(int(g) for g in groups)
        self.heads = nn.ModuleList(nn.Sequential(
            nn.Conv2d(2 * channels, channels, 3, padding=1), nn.SiLU(),
            nn.Conv2d(channels, 2 * z_channels, 1)) for _ in range(n))
        self._path: tuple[HVAEEncoder, HVAEDecoder] | None = None

    @property
    def num_groups(self) -> int:
        return len(self.heads)

    @classmethod
    def prior_dim(cls, latent_dim: int, settings: dict, data_shape: tuple[int, ...]) -> int:
        return plan(data_shape, **settings).sizes[0]

    def bind(self, model: nn.Module) -> None:
        """Keep the model's encoder (its maps) and decoder (the path), not as submodules."""
        if not (isinstance(model.encoder, HVAEEncoder) and isinstance(model.decoder, HVAEDecoder)):
            raise XaeError("model.bottleneck=hvae draws its groups down the hvae decoder's "
                           "top-down path from the hvae encoder's maps: set model.encoder=hvae "
                           "and model.decoder=hvae (or use model.bottleneck=topdown or ladder)")
        self._path = (model.encoder, model.decoder)

    def _walk(self, h: torch.Tensor, k: int | None = None, modes: bool = False
              ) -> tuple[list[LatentGroup], torch.Tensor]:
        """Down the path, each group from the posterior (its mode with ``modes``; K draws
        per datum with ``k``, as (K, B, ·)); the groups and the likelihood's parameters."""
        encoder, decoder = self._path
        if k is not None:
            h = h.unsqueeze(0).expand(k, *h.shape).flatten(0, 1)
        maps, scale_of = encoder.maps(h), encoder.plan.group_scale
        groups: list[LatentGroup] = []

        def choose(i: int, s: torch.Tensor, p: DiagonalGaussian | None) -> torch.Tensor:
            q = self.posterior(i, s, maps[scale_of[i]], p)
            z = q.mode() if modes else q.sample()
            groups.append(LatentGroup(f"z{i + 1}", z, q, p))
            return z

        theta = decoder.walk(h.shape[0], choose)
        if k is not None:
            groups = [_unfold(g, k) for g in groups]
            theta = theta.view(k, -1, *theta.shape[1:])
        return groups, theta

    def posterior(self, i: int, s: torch.Tensor, f: torch.Tensor,
                  p: DiagonalGaussian | None) -> DiagonalGaussian:
        """q(z_i | x, z_<i) from the state ``s`` and the encoder's map ``f``; residual to the
        prior ``p`` below the top group."""
        mean, logvar = gaussian_map(self.heads[i](torch.cat([s, f], 1)))
        if p is None:
            return DiagonalGaussian(mean, soft_clamp(logvar))
        return DiagonalGaussian(p.mean + mean, p.logvar + soft_clamp(logvar))

    def _out(self, groups: list[LatentGroup], theta: torch.Tensor) -> BottleneckOutput:
        return BottleneckOutput(z=torch.cat([g.z for g in groups], -1),
                                posterior=TopDown._joined(groups), groups=groups, theta=theta)

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        return self._out(*self._walk(h))

    def draw(self, h: torch.Tensor, k: int, step: int | None = None,
             out: BottleneckOutput | None = None) -> BottleneckOutput:
        """K walks per datum, each group drawn given the draws above it (``out`` is not
        reused)."""
        return self._out(*self._walk(h, k))

    def mode(self, h: torch.Tensor) -> torch.Tensor:
        """Each group's posterior mean, given the means above it."""
        return torch.cat([g.z for g in self._walk(h, modes=True)[0]], -1)

    def sample_prior(self, prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
        """The top group from the prior piece, each group below from p(z_l | z_<l), every
        spread scaled by ``temperature``."""
        def choose(i: int, s: torch.Tensor, p: DiagonalGaussian | None) -> torch.Tensor:
            return prior.sample_tempered(n, temperature) if p is None \
                else p.tempered(temperature).sample()
        return self._codes(n, choose)

    def descend(self, top: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """As :meth:`TopDown.descend`, each group's prior from the path's state above it."""
        at = [0]

        def choose(i: int, s: torch.Tensor, p: DiagonalGaussian | None) -> torch.Tensor:
            if p is None:
                return top
            d = p.mean.shape[-1]
            at[0] += d
            return p.mean + p.std * noise[:, at[0] - d:at[0]]
        return self._codes(top.shape[0], choose)

    def posterior_then_prior(self, h: torch.Tensor, keep: int, prior: nn.Module
                             ) -> torch.Tensor:
        """The top ``keep`` groups at their posterior means, the rest drawn from the prior
        given them: what each level encodes."""
        encoder = self._path[0]
        maps, scale_of, n = encoder.maps(h), encoder.plan.group_scale, h.shape[0]

        def choose(i: int, s: torch.Tensor, p: DiagonalGaussian | None) -> torch.Tensor:
            if i < keep:
                return self.posterior(i, s, maps[scale_of[i]], p).mode()
            return prior.sample(n) if p is None else p.sample()
        return self._codes(n, choose)

    def _codes(self, n: int, choose) -> torch.Tensor:
        """The codes ``choose`` picks down the path, side by side (n, D)."""
        codes: list[torch.Tensor] = []

        def keep(i: int, s: torch.Tensor, p: DiagonalGaussian | None) -> torch.Tensor:
            codes.append(choose(i, s, p))
            return codes[-1]
        self._path[1].walk(n, keep)
        return torch.cat(codes, -1)

    def extra_repr(self) -> str:
        return f"groups={len(self.heads)}"


def _unfold(g: LatentGroup, k: int) -> LatentGroup:
    """A group of K·B rows as (K, B, ·)."""
    def fold(t: torch.Tensor) -> torch.Tensor:
        return t.view(k, -1, *t.shape[1:])
    q, p = g.posterior, g.prior
    return LatentGroup(g.name, fold(g.z), DiagonalGaussian(fold(q.mean), fold(q.logvar)),
                       None if p is None else DiagonalGaussian(fold(p.mean), fold(p.logvar)))
