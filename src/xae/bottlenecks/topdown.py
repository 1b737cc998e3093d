"""A top-down hierarchy of Gaussian latent groups (Sønderby et al. 2016, LVAE; Vahdat & Kautz
2020, NVAE; Child 2021, VDVAE), the ordered-groups case of the bottleneck contract.

Groups z_1 (top), …, z_L, of sizes ``groups``. The generative path is top-down: p(z_1) is
the model's prior piece and p(z_l | z_<l) = N(μ_l(z_<l), σ_l²(z_<l)) is computed at run time
by a net of this piece. The posterior follows the same order, q(z_l | x, z_<l) =
N(μ̂_l(h, z_<l), σ̂_l²(h, z_<l)) from the encoder's features h and the groups drawn above,
so ancestral sampling of q and of p walk the same path (NVAE's shared top-down structure).
The rate is one KL per group, KL(q(z_l | x, z_<l) ‖ p(z_l | z_<l)) at the drawn z_<l (the
terms ``rate/z1`` … ``rate/zL``, closed form between Gaussians); the decoder reads all groups
side by side, z = [z_1, …, z_L]. With one group this is the plain Gaussian VAE.
"""
from __future__ import annotations

import torch
from torch import nn

from xae import checks as C
from xae.bottlenecks.base import Bottleneck
from xae.bottlenecks.gaussian import LOGVAR_RANGE
from xae.distributions import DiagonalGaussian
from xae.errors import XaeError
from xae.nets.common import activation, init_linear
from xae.outputs import BottleneckOutput, LatentGroup


def _net(n_in: int, n_out: int, hidden: int, zero: bool = False) -> nn.Module:
    """A linear map or a one-hidden-layer MLP; ``zero`` starts its output layer at zero (a
    conditional prior that starts as N(0, I), as VDVAE zero-initialises its last layers), so
    early KLs stay finite whatever the scale of the groups above."""
    last = init_linear(nn.Linear(hidden or n_in, n_out), None)
    if zero:
        nn.init.zeros_(last.weight)
    if not hidden:
        return last
    return nn.Sequential(init_linear(nn.Linear(n_in, hidden), "relu"), activation("relu"), last)


def group_sizes(groups: list[int], latent_dim: int, key: str) -> list[int]:
    """The groups' sizes, checked: positive, and summing to the code's size."""
    sizes = [int(g) for g in groups]
    if not sizes or min(sizes) < 1 or sum(sizes) != latent_dim:
        raise XaeError(f"{key} {groups} must be positive sizes that sum to model.latent_dim "
                       f"({latent_dim}); e.g. [{latent_dim // 2}, {latent_dim - latent_dim // 2}]")
    return sizes


def _gaussian(params: torch.Tensor) -> DiagonalGaussian:
    mean, logvar = params.chunk(2, dim=-1)
    return DiagonalGaussian(mean, logvar.clamp(*LOGVAR_RANGE))


class TopDown(Bottleneck):
    """Gaussian latent groups, top first; see the module's docstring."""

    stochastic = True
    has_posterior = True
    hierarchical = True
    KEYS = {"groups": ("sizes of the latent groups, top first (they sum to model.latent_dim)",
                       C.each(C.POSITIVE, min_len=1)),
            "hidden": ("hidden units of the nets of each group's prior and posterior "
                       "(0: linear maps)", C.NON_NEGATIVE)}

    def __init__(self, in_features: int, latent_dim: int, *, groups: list[int] = [8, 8],
                 hidden: int = 0) -> None:
        super().__init__(in_features, latent_dim)
        self.sizes = sizes = group_sizes(groups, latent_dim, "model.topdown.groups")
        self.top = init_linear(nn.Linear(in_features, 2 * sizes[0]), None)
        above = [sum(sizes[:i]) for i in range(1, len(sizes))]
        self.priors = nn.ModuleList(_net(a, 2 * d, hidden, zero=True)
                                    for a, d in zip(above, sizes[1:]))
        self.posteriors = nn.ModuleList(_net(in_features + a, 2 * d, hidden)
                                        for a, d in zip(above, sizes[1:]))

    @classmethod
    def prior_dim(cls, latent_dim: int, settings: dict, data_shape: tuple[int, ...]) -> int:
        groups = settings.get("groups") or [latent_dim]
        return int(groups[0])

    @property
    def num_groups(self) -> int:
        return len(self.sizes)

    def _walk(self, h: torch.Tensor, k: int | None = None, modes: bool = False
              ) -> tuple[list[LatentGroup], torch.Tensor]:
        """Down the groups: each drawn from q given h and the groups above (K draws per
        datum with ``k``; the posterior modes with ``modes``)."""
        def pick(q: DiagonalGaussian, first: bool) -> torch.Tensor:
            return q.mode() if modes else q.sample(k if first else None)

        q = _gaussian(self.top(h))
        z = pick(q, True)
        groups, above = [LatentGroup("z1", z, q)], z
        for i, (prior_net, post_net) in enumerate(zip(self.priors, self.posteriors), start=2):
            p = _gaussian(prior_net(above))
            feats = h.expand(*above.shape[:-1], h.shape[-1])
            q = _gaussian(post_net(torch.cat([feats, above], -1)))
            z = pick(q, False)
            groups.append(LatentGroup(f"z{i}", z, q, p))
            above = torch.cat([above, z], -1)
        return groups, above

    @staticmethod
    def _joined(groups: list[LatentGroup]) -> DiagonalGaussian:
        """The groups' conditional posteriors side by side (each at the draws above it)."""
        qs = [g.posterior for g in groups]
        shape = groups[-1].z.shape[:-1]
        return DiagonalGaussian(torch.cat([q.mean.expand(*shape, -1) for q in qs], -1),
                                torch.cat([q.logvar.expand(*shape, -1) for q in qs], -1))

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        groups, z = self._walk(h)
        return BottleneckOutput(z=z, posterior=self._joined(groups), groups=groups)

    def draw(self, h: torch.Tensor, k: int, step: int | None = None,
             out: BottleneckOutput | None = None) -> BottleneckOutput:
        """K ancestral draws per datum down the groups (``out`` is not reused: each draw
        of a lower group depends on the draws above it)."""
        groups, z = self._walk(h, k)
        return BottleneckOutput(z=z, posterior=self._joined(groups), groups=groups)

    def mode(self, h: torch.Tensor) -> torch.Tensor:
        """Each group's posterior mean, given the means of the groups above."""
        return self._walk(h, modes=True)[1]

    def sample_prior(self, prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
        """z_1 from the prior piece, then each group from p(z_l | z_<l), every spread scaled
        by ``temperature``."""
        above = prior.sample_tempered(n, temperature)
        for prior_net in self.priors:
            p = _gaussian(prior_net(above)).tempered(temperature)
            above = torch.cat([above, p.sample()], -1)
        return above

    def descend(self, top: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The code (n, D) with the top group ``top`` and each group below
        z_l = μ_l + σ_l·ε_l of p(z_l | z_<l), its ε_l the next columns of ``noise``
        (n, D − size of the top): the hierarchy's prior below a given top, noise given (the
        explorer's graph; with ε ~ N(0, I) it draws what :meth:`sample_prior` draws)."""
        above, at = top, 0
        for prior_net in self.priors:
            p = _gaussian(prior_net(above))
            d = p.mean.shape[-1]
            above = torch.cat([above, p.mean + p.std * noise[:, at:at + d]], -1)
            at += d
        return above

    def posterior_then_prior(self, h: torch.Tensor, keep: int, prior: nn.Module
                             ) -> torch.Tensor:
        """The code with the top ``keep`` groups at their posterior means and the rest drawn
        from the prior given them: what each level of the hierarchy encodes."""
        top = _gaussian(self.top(h)).mode() if keep >= 1 else prior.sample(h.shape[0])
        above = top
        for i, (prior_net, post_net) in enumerate(zip(self.priors, self.posteriors), start=2):
            if i <= keep:
                z = _gaussian(post_net(torch.cat([h, above], -1))).mode()
            else:
                z = _gaussian(prior_net(above)).sample()
            above = torch.cat([above, z], -1)
        return above

    def extra_repr(self) -> str:
        return f"groups={self.sizes}"
