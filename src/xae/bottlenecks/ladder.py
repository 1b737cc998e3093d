"""The Ladder VAE (Sønderby et al. 2016): a deterministic bottom-up pass, then a top-down
pass whose posterior at each group merges the bottom-up estimate with the prior by precision
(their eq. 19–21), with batch norm in every deterministic layer.

Groups are listed top first, as for :mod:`xae.bottlenecks.topdown` (the paper's MNIST model,
64-32-16-8-4 from the bottom, is ``groups = [4, 8, 16, 32, 64]``). Bottom-up, level after
level from the encoder's features, d_l = MLP_l(d_{l−1}) gives a Gaussian estimate
N(μ̂_l, σ̂_l²). Top-down, q(z_top|x) is that estimate; below it the prior
p(z_l | z_{l+1}) = N(μ_p, σ_p²) comes from an MLP of the group above, and

    σ_q² = 1 / (σ̂_l⁻² + σ_p⁻²),   μ_q = (μ̂_l σ̂_l⁻² + μ_p σ_p⁻²) σ_q²,

the normalised product of the two Gaussians. The decoder reads every group side by side, and
the KL of each group is its own term ``rate/zI``, against the prior its path computed.
"""
from __future__ import annotations

import torch
from torch import nn

from xae import checks as C
from xae.bottlenecks.base import Bottleneck
from xae.bottlenecks.topdown import TopDown, _gaussian, group_sizes
from xae.distributions import DiagonalGaussian
from xae.outputs import LatentGroup


class _Layer(nn.Module):
    """Linear → batch norm → leaky ReLU, on inputs with any leading dimensions."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear, self.norm, self.act = nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), \
            nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return self.act(self.norm(y.reshape(-1, y.shape[-1])).view(y.shape))


def merge(estimate: DiagonalGaussian, prior: DiagonalGaussian) -> DiagonalGaussian:
    """The precision-weighted merge of two Gaussians (Sønderby et al. 2016, eq. 19–21)."""
    w_e, w_p = torch.exp(-estimate.logvar), torch.exp(-prior.logvar)
    precision = w_e + w_p
    mean = (estimate.mean * w_e + prior.mean * w_p) / precision
    return DiagonalGaussian(mean, -torch.log(precision))


class Ladder(TopDown):
    """See the module's docstring."""

    KEYS = {"groups": ("sizes of the latent groups, top first (they sum to model.latent_dim)",
                       C.each(C.POSITIVE, min_len=1)),
            "hidden": ("units of each level's deterministic layer (bottom-up and top-down)",
                       C.POSITIVE)}

    def __init__(self, in_features: int, latent_dim: int, *,
                 groups: list[int] = [4, 8, 16, 32, 64], hidden: int = 256) -> None:
        Bottleneck.__init__(self, in_features, latent_dim)
        self.sizes = sizes = group_sizes(groups, latent_dim, "model.ladder.groups")
        bottom_up = list(reversed(sizes))
        self.up = nn.ModuleList(_Layer(in_features if i == 0 else hidden, hidden)
                                for i in range(len(sizes)))
        self.estimates = nn.ModuleList(nn.Linear(hidden, 2 * d) for d in bottom_up)
        self.priors = nn.ModuleList(nn.Sequential(_Layer(a, hidden), nn.Linear(hidden, 2 * d))
                                    for a, d in zip(sizes[:-1], sizes[1:]))

    def _estimates(self, h: torch.Tensor) -> list[DiagonalGaussian]:
        """The bottom-up pass: each group's Gaussian estimate from the data, top first."""
        d, estimates = h, []
        for layer, head in zip(self.up, self.estimates):
            d = layer(d)
            estimates.append(_gaussian(head(d)))
        return estimates[::-1]

    def _walk(self, h: torch.Tensor, k: int | None = None, modes: bool = False
              ) -> tuple[list[LatentGroup], torch.Tensor]:
        estimates = self._estimates(h)
        q = estimates[0]
        z = q.mode() if modes else q.sample(k)
        groups = [LatentGroup("z1", z, q)]
        for i, (prior_net, estimate) in enumerate(zip(self.priors, estimates[1:]), start=2):
            p = _gaussian(prior_net(z))
            q = merge(estimate, p)
            z = q.mode() if modes else q.sample()
            groups.append(LatentGroup(f"z{i}", z, q, p))
        return groups, torch.cat([g.z for g in groups], -1)

    def descend(self, top: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """As :meth:`TopDown.descend`, each group's prior given the group just above it."""
        z, out, at = top, [top], 0
        for prior_net in self.priors:
            p = _gaussian(prior_net(z))
            d = p.mean.shape[-1]
            z = p.mean + p.std * noise[:, at:at + d]
            out.append(z)
            at += d
        return torch.cat(out, -1)

    def posterior_then_prior(self, h: torch.Tensor, keep: int, prior: nn.Module
                             ) -> torch.Tensor:
        """The code with the top ``keep`` groups at their posterior means and the rest drawn
        from the prior given them."""
        estimates = self._estimates(h)
        z = estimates[0].mode() if keep >= 1 else prior.sample(h.shape[0])
        out = [z]
        for i, (prior_net, estimate) in enumerate(zip(self.priors, estimates[1:]), start=2):
            p = _gaussian(prior_net(z))
            z = merge(estimate, p).mode() if i <= keep else p.sample()
            out.append(z)
        return torch.cat(out, -1)

    def sample_prior(self, prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
        """z_top from the prior piece, then each group from p(z_l | z_{l+1}), every spread
        scaled by ``temperature``."""
        z = prior.sample_tempered(n, temperature)
        out = [z]
        for prior_net in self.priors:
            z = _gaussian(prior_net(z)).tempered(temperature).sample()
            out.append(z)
        return torch.cat(out, -1)

    def extra_repr(self) -> str:
        return f"groups={self.sizes}"
