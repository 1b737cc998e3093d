"""A normalizing-flow prior: N(0, I) pushed through a stack of RealNVP affine couplings.

p(z) is the density of z = f(ε), ε ~ N(0, I), where f composes ``layers`` affine coupling
layers (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", eqs. 4–6)
with alternating masks, so consecutive layers transform complementary halves of z. By the
change of variables (ibid. eq. 3),

    log p(z) = log N(f⁻¹(z); 0, I) + log |det ∂f⁻¹/∂z|,

and the inverse of a coupling is as cheap as its forward pass. A learned flow prior lets the
aggregate posterior of a VAE be matched more closely than by N(0, I) (Chen et al. 2017,
"Variational Lossy Autoencoder", sec. 3, use an autoregressive flow prior to that end).
There is no closed-form KL to a Gaussian posterior, so the KL regularizer uses its Monte
Carlo estimate; :meth:`FlowPrior.sample` runs the same object's forward map.
"""
from __future__ import annotations

import torch
from torch import nn

from xae import checks as C
from xae.errors import positive_int
from xae.priors.base import Prior
from xae.priors.normal import StandardNormal

LOG_SCALE_BOUND = 3.0
"""Each layer's log-scale is soft-clamped to (−3, 3), ``b·tanh(s/b)``, for stability."""


def _bounded(raw: torch.Tensor) -> torch.Tensor:
    """Soft clamp of a raw log-scale: identity near 0, bounded by ``LOG_SCALE_BOUND``."""
    return LOG_SCALE_BOUND * torch.tanh(raw / LOG_SCALE_BOUND)


class _AffineCoupling(nn.Module):
    """y_T = x_T ⊙ exp(s(x_C)) + t(x_C), y_C = x_C (Dinh et al. 2017, eqs. 4–5).

    ``trans`` indexes the transformed dimensions T, the rest C condition them; the
    conditioner is an MLP with one hidden layer of ``hidden`` ReLU units (one hidden layer
    keeps the activations that back-propagation stores small) whose output layer starts at
    zero, so the layer starts as the identity. The Jacobian is triangular with log-determinant Σ s (ibid. eq. 6).
    """

    def __init__(self, latent_dim: int, trans: torch.Tensor, hidden: int) -> None:
        super().__init__()
        cond = torch.tensor([j for j in range(latent_dim) if j not in set(trans.tolist())])
        self.register_buffer("trans", trans, persistent=False)
        self.register_buffer("cond", cond, persistent=False)
        self.register_buffer("perm", torch.argsort(torch.cat([cond, trans])), persistent=False)
        self.net = nn.Sequential(nn.Linear(len(cond), hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * len(trans)))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _params(self, x_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(x_c).chunk(2, -1)
        return _bounded(raw_s), t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_c = x.index_select(-1, self.cond)
        s, t = self._params(x_c)
        y_t = x.index_select(-1, self.trans) * torch.exp(s) + t
        return torch.cat([x_c, y_t], -1).index_select(-1, self.perm)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = f⁻¹(y) and log |det ∂x/∂y| = −Σ s, per row."""
        y_c = y.index_select(-1, self.cond)
        s, t = self._params(y_c)
        x_t = (y.index_select(-1, self.trans) - t) * torch.exp(-s)
        return torch.cat([y_c, x_t], -1).index_select(-1, self.perm), -s.sum(-1)


class _ElementwiseAffine(nn.Module):
    """y = x ⊙ exp(s) + t with learned s, t: the layer used when D = 1, where a coupling
    would have nothing to condition on. Starts as the identity."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(latent_dim))
        self.log_scale = nn.Parameter(torch.zeros(latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.exp(_bounded(self.log_scale)) + self.shift

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = _bounded(self.log_scale)
        return (y - self.shift) * torch.exp(-s), (-s.sum()).expand(y.shape[:-1])


class FlowPrior(Prior):
    """p(z) = N(0, I) pushed through ``layers`` RealNVP affine couplings.

    Parameters
    ----------
    latent_dim : D. For D ≥ 2, layer l transforms the dimensions j with j ≡ l (mod 2) given
        the others (so with two or more layers every dimension is transformed, odd D too);
        for D = 1 each layer is an elementwise affine map with learned shift and log-scale.
    layers : number of coupling layers (config ``model.flow.layers``).
    hidden : width of the hidden layer of each conditioner MLP
        (config ``model.flow.hidden``).

    Every layer starts as the identity, so at initialisation p(z) is exactly N(0, I).
    """

    factorized = False
    KEYS = {"layers": ("RealNVP couplings", C.POSITIVE),
            "hidden": ("hidden units of each coupling's conditioner", C.POSITIVE)}

    def __init__(self, latent_dim: int, *, layers: int = 4, hidden: int = 128) -> None:
        super().__init__(latent_dim)
        self.hidden = positive_int(hidden, "model.flow.hidden")
        positive_int(layers, "model.flow.layers")
        self.base = StandardNormal(latent_dim)
        if latent_dim == 1:
            flows = [_ElementwiseAffine(1) for _ in range(layers)]
        else:
            flows = [_AffineCoupling(latent_dim, torch.arange(i % 2, latent_dim, 2), hidden)
                     for i in range(layers)]
        self.flows = nn.ModuleList(flows)

    def transform(self, eps: torch.Tensor) -> torch.Tensor:
        """z = f(ε) for ε of shape (..., D), with gradients."""
        z = eps
        for layer in self.flows:
            z = layer(z)
        return z

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ε = f⁻¹(z), shape (..., D), and log |det ∂f⁻¹/∂z|, shape (...)."""
        eps = z.reshape(-1, z.shape[-1])
        log_det = eps.new_zeros(eps.shape[0])
        for layer in reversed(self.flows):
            eps, ld = layer.inverse(eps)
            log_det = log_det + ld
        return eps.view(z.shape), log_det.view(z.shape[:-1])

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = log N(f⁻¹(z); 0, I) + log |det ∂f⁻¹/∂z| (Dinh et al. 2017, eq. 3);
        ``z`` of shape (..., D) → (...)."""
        eps, log_det = self.inverse(z)
        return self.base.log_prob(eps) + log_det

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        param = next(self.parameters())
        eps = torch.randn(n, self.latent_dim, device=param.device, dtype=param.dtype)
        return self.transform(eps)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, layers={len(self.flows)}, hidden={self.hidden}"
