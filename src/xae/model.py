"""The one model class: encoder → bottleneck → decoder → likelihood, plus prior and regularizer."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from xae.errors import XaeError
from xae.objectives import effective_sample_size, free_bits
from xae.outputs import AEOutput, BottleneckOutput


@contextmanager
def inference(model: nn.Module) -> Iterator[torch.device]:
    """Eval mode and no_grad inside; yields the model's device; restores ``model.training``
    even when the body raises."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield next(model.parameters()).device
    finally:
        model.train(was_training)


class Autoencoder(nn.Module):
    """Every model of the family, composed from its pieces (see DESIGN.md).

    Build it with :func:`xae.build` from a :class:`~xae.config.Config`; the pieces are plain
    modules, so a user can also compose one by hand.
    """

    def __init__(self, *, encoder: nn.Module, bottleneck: nn.Module, decoder: nn.Module,
                 likelihood: nn.Module, prior: nn.Module, regularizer: nn.Module,
                 objective: nn.Module, data_shape: tuple[int, ...], latent_dim: int,
                 free_bits: float = 0.0, config: object | None = None) -> None:
        super().__init__()
        self.encoder, self.bottleneck, self.decoder = encoder, bottleneck, decoder
        self.likelihood, self.prior, self.regularizer = likelihood, prior, regularizer
        self.objective = objective
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        self.free_bits = free_bits
        self.config = config
        if hasattr(prior, "bind"):  # priors built from the model's own pieces: the VampPrior
            prior.bind(self)        # (the encoder's posteriors), the code prior (the codebook)

    def posterior_of(self, x: torch.Tensor) -> object:
        """q(z|x) for a batch (None for a deterministic bottleneck); lent to priors that are
        built from the encoder."""
        return self.encode(x).posterior

    def _check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.data_shape:
            raise XaeError(f"input has shape {tuple(x.shape)} but the model expects "
                           f"(batch, {', '.join(map(str, self.data_shape))}); reshape the data")

    def encode(self, x: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        """q(z|x): the bottleneck's output for a batch of data (``step``: the training step,
        for bottlenecks with a schedule)."""
        self._check(x)
        return self.bottleneck(self.encoder(x), step=step)

    def decode_params(self, z: torch.Tensor) -> torch.Tensor:
        """θ = decoder(z), the likelihood's parameters (e.g. Bernoulli logits)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z), in data space."""
        return self.likelihood.mean(self.decode_params(z))

    def forward(self, x: torch.Tensor, beta: float = 1.0, step: int | None = None) -> AEOutput:
        """One pass of the objective: loss (scalar) and per-sample terms in nats. The trainer
        passes the training ``step`` for bottlenecks with schedules."""
        out = self.encode(x, step)
        if self.objective.importance_weighted:
            return self._forward_samples(x, out, beta)
        theta = self.decode_params(out.z)
        distortion = -self.likelihood.log_prob(x, theta)
        rate_dims = self.regularizer(out, self.prior)
        rate = rate_dims.sum(-1)
        per_dim = rate_dims if rate_dims.shape[-1] == self.latent_dim else None
        # free bits clip each latent dimension's KL, so they need the per-dimension rate
        rate_for_loss = free_bits(per_dim, self.free_bits) if (
            self.free_bits > 0 and per_dim is not None) else rate
        aux = out.aux_loss if out.aux_loss is not None else torch.zeros_like(distortion)
        loss = self.objective(distortion, rate_for_loss, aux, beta).mean()
        return AEOutput(loss=loss, distortion=distortion, rate=rate, rate_per_dim=per_dim,
                        z=out.z, posterior=out.posterior, x_mean=self.likelihood.mean(theta),
                        aux_loss=aux, beta=beta, indices=out.indices)

    def _forward_samples(self, x: torch.Tensor, out: BottleneckOutput, beta: float) -> AEOutput:
        """A K-sample objective (IWAE): K draws z_k ~ q(z|x) decoded in one batch, with the
        per-draw terms −log p(x|z_k) and log q(z_k|x) − log p(z_k), each (K, B)."""
        q, k = out.posterior, self.objective.samples
        z = q.sample(k)
        theta = self.decode_params(z.flatten(0, 1))
        theta = theta.view(k, x.shape[0], *theta.shape[1:])
        distortion = -self.likelihood.log_prob_samples(x, theta)
        rate = q.log_prob(z) - self.prior.log_prob(z)
        aux = out.aux_loss if out.aux_loss is not None else x.new_zeros(x.shape[0])
        loss = self.objective(distortion, rate, aux, beta).mean()
        ess = effective_sample_size(-(distortion + beta * rate).detach())
        return AEOutput(loss=loss, distortion=distortion.mean(0), rate=rate.mean(0),
                        rate_per_dim=None, z=z[0], posterior=q,
                        x_mean=self.likelihood.mean(theta[0]), aux_loss=aux, beta=beta,
                        indices=out.indices, ess=ess)

    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """E_q[z|x] (the posterior mode for Gaussians; z itself for deterministic codes and, in
        eval mode, the most likely code for discrete ones)."""
        out = self.encode(x)
        if self.stochastic:
            return out.posterior.mode()
        if out.posterior is not None:  # categorical (Gumbel): the most likely code per position
            return self.bottleneck.indices_to_z(out.posterior.logits.argmax(-1))
        return out.z

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(mode of q(z|x)): the reconstruction people look at."""
        return self.decode(self.latent_mean(x))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n draws z ~ p(z), decoded to the mean of p(x|z)."""
        return self.decode(self.prior.sample(n))

    @torch.no_grad()
    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decode the straight line between the latent means of x0 and x1: (B, steps, *data)."""
        z0, z1 = self.latent_mean(x0), self.latent_mean(x1)
        t = torch.linspace(0, 1, steps, device=z0.device).view(1, steps, 1)
        z = (1 - t) * z0.unsqueeze(1) + t * z1.unsqueeze(1)
        return self.decode(z.flatten(0, 1)).view(x0.shape[0], steps, *self.data_shape)

    @property
    def stochastic(self) -> bool:
        """Whether q(z|x) is a Gaussian posterior (for likelihood bounds and holes)."""
        return bool(getattr(self.bottleneck, "stochastic", False))

    @property
    def discrete(self) -> bool:
        """Whether the code is a grid of indices (VQ, residual VQ, FSQ, LFQ, Gumbel)."""
        return bool(getattr(self.bottleneck, "discrete", False))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
