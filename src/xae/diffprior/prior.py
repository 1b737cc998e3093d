"""A diffusion prior over an autoencoder's continuous codes, trained by flow matching.

Why flow matching rather than DDPM's ε-prediction: with the straight conditional path of
Lipman et al. (2023, "Flow Matching for Generative Modeling", eq. 20–23, σ_min = 0) — the
rectified flow of Liu et al. (2023) — training is a plain regression with no noise-schedule
tables, and the sampler is an ODE whose nearly straight trajectories need few steps; Esser
et al. (2024) train the latent diffusion model of Stable Diffusion 3 this way. In the latent
space scaled as Rombach et al. (2022) do, x₀ = scale·z:

    x_t = (1 − t)·x₀ + t·ε,   ε ~ N(0, I),   t ~ U(0, 1)
    loss = ‖v_θ(x_t, t) − (ε − x₀)‖²  (mean over elements)

and a sample integrates dx/dt = v_θ(x, t) from x₁ ~ N(0, I) at t = 1 to t = 0 with Heun's
second-order method (Karras et al. 2022, alg. 1; the velocity has no singularity at t = 0,
so every step is corrected: 2·steps evaluations), then divides by the scale. The prior reads and returns codes in the model's layout, (B, D); a
spatial code (C, h, w) travels as its map flattened with the channels last (as
``bottlenecks.Positionwise`` lays it out) and is a (B, C, h, w) map for the denoiser.
"""
from __future__ import annotations

import torch
from torch import nn

from xae.diffprior.config import DiffusionPriorConfig
from xae.diffprior.nets import ConvDenoiser, MLPDenoiser
from xae.errors import XaeError, positive_int
from xae.model import inference


class DiffusionPrior(nn.Module):
    """p(z) as the push-forward of N(0, I) through a learned ODE (see the module's text).

    Parameters
    ----------
    config : DiffusionPriorConfig
        The latent shape, the denoiser's sizes and the scale factor (which must be set before
        the prior is trained or sampled; the fit measures it).
    """

    def __init__(self, config: DiffusionPriorConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        shape = config.latent_shape
        if config.net == "mlp":
            self.net: nn.Module = MLPDenoiser(shape[0], hidden=config.mlp_hidden,
                                              layers=config.mlp_layers,
                                              time_dim=config.time_dim)
        else:
            self.net = ConvDenoiser(shape[0], channels=config.conv_channels,
                                    blocks=config.conv_blocks, time_dim=config.time_dim)

    @property
    def latent_dim(self) -> int:
        return int(torch.Size(self.config.latent_shape).numel())

    @property
    def scale(self) -> float:
        if self.config.scale is None:
            raise XaeError("the diffusion prior has no scale factor yet; fit it with "
                           "`xae prior fit RUN` (which measures 1/std of the latents)")
        return float(self.config.scale)

    def to_net(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, D) in the model's layout → scaled denoiser inputs x₀."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise XaeError(f"the diffusion prior takes codes of shape (batch, "
                           f"{self.latent_dim}), got {tuple(z.shape)}")
        x = z.float() * self.scale
        if self.config.net == "conv":
            c, h, w = self.config.latent_shape
            x = x.view(-1, h, w, c).permute(0, 3, 1, 2)
        return x

    def from_net(self, x: torch.Tensor) -> torch.Tensor:
        """Denoiser outputs x₀ → codes (B, D) in the model's layout."""
        if self.config.net == "conv":
            x = x.permute(0, 2, 3, 1)
        return x.reshape(x.shape[0], -1) / self.scale

    def loss(self, z: torch.Tensor, generator: torch.Generator | None = None,
             part: slice = slice(None)) -> torch.Tensor:
        """The flow-matching loss of each code, (B',): t and ε are drawn for all of ``z``
        (from ``generator``, on z's device) and the loss is computed on rows ``part`` only,
        so that processes that split a batch draw what one process would."""
        x0 = self.to_net(z)
        t = torch.rand(x0.shape[0], device=x0.device, generator=generator)[part]
        eps = torch.randn(x0.shape, device=x0.device, generator=generator)[part]
        x0 = x0[part]
        tb = t.view(-1, *([1] * (x0.dim() - 1)))
        v = self.net((1 - tb) * x0 + tb * eps, t)
        return (v.float() - (eps - x0)).pow(2).flatten(1).mean(-1)

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None,
                part: slice = slice(None)) -> torch.Tensor:
        """:meth:`loss`: what the fit loop (and DDP, which wraps the forward) calls."""
        return self.loss(z, generator, part)

    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes (n, D): Heun's method on dx/dt = v(x, t) from t = 1 to 0 in ``steps``
        equal steps (default: the config's ``sample_steps``)."""
        positive_int(n, "n", " (the number of samples)")
        steps = positive_int(self.config.sample_steps if steps is None else steps,
                             "steps", " (the sampler's steps)")
        with inference(self) as device:
            shape = (n, self.latent_dim) if self.config.net == "mlp" else \
                (n, *self.config.latent_shape)
            x = torch.randn(shape, device=device, generator=generator)
            ts = torch.linspace(1.0, 0.0, steps + 1, device=device)
            for i in range(steps):
                t, t_next = ts[i], ts[i + 1]
                dt = t_next - t
                v = self.net(x, t.expand(n))
                v_next = self.net(x + dt * v, t_next.expand(n))  # at the Euler step's end
                x = x + dt * 0.5 * (v + v_next)
        return self.from_net(x)

    def extra_repr(self) -> str:
        c = self.config
        return f"latent_shape={list(c.latent_shape)}, scale={c.scale}, net={c.net}"
