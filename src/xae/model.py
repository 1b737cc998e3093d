"""The one model class: encoder → bottleneck → decoder → likelihood, plus prior and regularizer."""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from xae.critics import Critic
from xae.errors import XaeError
from xae.objectives import effective_sample_size
from xae.outputs import BottleneckOutput, LatentGroup, LossOutput, Term

#: What the encoder sees (``model.input_transform``): the data, or log1p of counts (scVI).
INPUT_TRANSFORMS = {"none": lambda x: x, "log1p": torch.log1p}


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


@dataclass
class Draws:
    """K posterior draws per datum, decoded (see :meth:`Autoencoder.draw`): the per-draw
    distortion −log p(x|z_k) and rate log q(z_k|x) − log p(z_k) (summed over latent groups),
    (K, B) each, the bottleneck's output for the draws (z (K, B, D)) and the decoder's
    parameters (K, B, *)."""

    distortion: torch.Tensor
    rate: torch.Tensor
    out: BottleneckOutput
    theta: torch.Tensor

    @property
    def log_w(self) -> torch.Tensor:
        """log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x), (K, B)."""
        return -(self.distortion + self.rate)


class Autoencoder(nn.Module):
    """Every model of the family, composed from its pieces (see docs/design.md).

    Build it with :func:`xae.build` from a :class:`~xae.config.Config`; the pieces are plain
    modules, so a user can also compose one by hand. ``latent_shape`` is the shape of one
    code: (D,) for a flat vector, (C, h, w) for a spatial map (which travels between the
    pieces as its map flattened position by position, (B, h·w·C)).
    """

    def __init__(self, *, encoder: nn.Module, bottleneck: nn.Module, decoder: nn.Module,
                 likelihood: nn.Module, prior: nn.Module, regularizer: nn.Module,
                 objective: nn.Module, data_shape: tuple[int, ...], latent_dim: int,
                 critic: nn.Module | None = None,
                 latent_shape: tuple[int, ...] | None = None,
                 config: object | None = None, input_transform: str = "none",
                 covariates: int = 0, covariate_encoder: bool = True,
                 library: nn.Module | None = None) -> None:
        super().__init__()
        if input_transform not in INPUT_TRANSFORMS:
            raise XaeError(f"input_transform '{input_transform}' is unknown; use "
                           f"{' or '.join(INPUT_TRANSFORMS)}")
        self.input_transform = input_transform
        # a categorical covariate c (e.g. a cell's batch) with this many levels, one-hot
        # beside the decoder's z and (covariate_encoder) beside the encoder's input
        self.covariates, self.covariate_encoder = int(covariates), bool(covariate_encoder)
        self.library = library  # a latent library size (xae.library) for count likelihoods
        self.encoder, self.bottleneck, self.decoder = encoder, bottleneck, decoder
        self.likelihood, self.prior, self.regularizer = likelihood, prior, regularizer
        self.objective = objective
        self.critic = critic if critic is not None else Critic()
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        self.latent_shape = tuple(latent_shape) if latent_shape else (latent_dim,)
        self.config = config
        bottleneck.bind(self)  # a bottleneck that walks the decoder's path (hvae)
        prior.bind(self)  # priors built from the model's own pieces (VampPrior, code prior)
        regularizer.bind(self)  # regularizers with nets sized by the code (FactorVAE)
        self.critic.bind(self)  # a discriminator keeps the decoder's last layer

    def posterior_of(self, x: torch.Tensor, c: torch.Tensor | None = None) -> object:
        """q(z|x) for a batch (None for a deterministic bottleneck); lent to priors that are
        built from the encoder."""
        return self.encode(x, c=c).posterior

    def check_covariate(self, c: torch.Tensor | None, n: int) -> None:
        """XaeError unless ``c`` holds one covariate level per datum of a batch of ``n``, given
        exactly when the model has covariates."""
        if not self.covariates:
            if c is not None:
                raise XaeError("this model was trained without covariates (model.covariate="
                               "none); call it without c")
            return
        if c is None:
            raise XaeError(f"this model is conditioned on a covariate with {self.covariates} "
                           "levels (model.covariate); pass each datum's level as c")
        if tuple(c.shape) != (n,) or c.is_floating_point() \
                or bool(((c < 0) | (c >= self.covariates)).any()):
            raise XaeError(f"c must hold one integer covariate level in [0, "
                           f"{self.covariates}) per datum ({n}), got {c.dtype} of shape "
                           f"{tuple(c.shape)}")

    def with_covariate(self, t: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """``t`` (B, F) with the one-hot covariate c (B,) beside it, (B, F + levels); ``t``
        itself for a model without covariates."""
        self.check_covariate(c, t.shape[0])
        if not self.covariates:
            return t
        return torch.cat([t, F.one_hot(c.to(t.device), self.covariates).to(t.dtype)], -1)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's features of a batch (checked against the data shape), with its
        covariate ``c`` beside the input when the encoder reads one."""
        return self.encoder(self.encoder_input(x, c))

    def encoder_input(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """What the encoder reads (x checked against the data shape): the transformed data,
        flattened with the one-hot covariate beside it when the encoder reads one (c is
        checked either way)."""
        if tuple(x.shape[1:]) != self.data_shape:
            raise XaeError(f"input has shape {tuple(x.shape)} but the model expects "
                           f"(batch, {', '.join(map(str, self.data_shape))}); reshape the data")
        seen = INPUT_TRANSFORMS[self.input_transform](x)
        if self.covariates and self.covariate_encoder:
            return self.with_covariate(seen.flatten(1), c)  # an MLP's input, flat
        self.check_covariate(c, x.shape[0])
        return seen

    def likelihood_extras(self, theta: torch.Tensor, x: torch.Tensor, c: torch.Tensor | None,
                          k: int | None = None, seen: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """θ (B, *), or K draws' θ (K, B, *) when ``k``, with the per-cell columns a count
        likelihood reads after the decoder's blocks: the one-hot level c when it reads one (a
        per-batch dispersion), then a drawn log library for a latent library (one draw per
        θ). Also the library latent's analytic KL (B,) and log q − log p at its draws ((K, B)
        with ``k``, else (B,)), None without one. ``seen``: the encoder's input for x, when
        already computed."""
        extra = []
        if getattr(self.likelihood, "covariate_columns", 0):
            one_hot = self.with_covariate(x.new_zeros(x.shape[0], 0), c)
            extra.append(one_hot if k is None else one_hot.expand(k, *one_hot.shape))
        kl = rate = None
        if self.library is not None:
            q = self.library.posterior(self.encoder_input(x, c) if seen is None else seen)
            p = self.library.prior(c, x.shape[0])
            log_l = q.sample(k)
            extra.append(log_l)
            kl, rate = q.kl(p).sum(-1), q.log_prob(log_l) - p.log_prob(log_l)
        return (torch.cat([theta, *extra], -1) if extra else theta), kl, rate

    def encode(self, x: torch.Tensor, step: int | None = None,
               c: torch.Tensor | None = None) -> BottleneckOutput:
        """q(z|x): the bottleneck's output for a batch of data (``step``: the training step,
        for bottlenecks with a schedule; ``c``: the data's covariate levels)."""
        return self.bottleneck(self.features(x, c), step=step)

    @property
    def conditional(self) -> bool:
        """Whether the decoder's θ also depends on x itself (an autoregressive decoder reads
        the true tokens before each one: teacher forcing)."""
        return getattr(self.decoder, "conditional", False)

    def decode_params(self, z: torch.Tensor, x: torch.Tensor | None = None,
                      c: torch.Tensor | None = None) -> torch.Tensor:
        """θ = decoder(z), the likelihood's parameters (e.g. Bernoulli logits); a conditional
        decoder needs the data ``x`` it scores, θ = decoder(z, x); a model with covariates
        decodes [z, one-hot c]."""
        if not self.conditional:
            return self.decoder(self.with_covariate(z, c))
        if x is None:
            raise XaeError("this model's decoder is autoregressive: its parameters depend on "
                           "the data scored; pass x, or decode z with decode()")
        return self.decoder(z, x)

    def decode(self, z: torch.Tensor, greedy: bool = True,
               generator: torch.Generator | None = None,
               c: torch.Tensor | None = None) -> torch.Tensor:
        """The mean of p(x|z) (at covariate levels ``c``), in data space; for an
        autoregressive decoder the sequence it writes from z alone, greedily (or sampled,
        ``greedy=False``)."""
        if self.conditional:
            return self.decoder.generate(z, greedy=greedy, generator=generator)
        return self.likelihood.mean(self.decode_params(z, c=c))

    def forward(self, x: torch.Tensor, beta: float = 1.0, step: int | None = None,
                c: torch.Tensor | None = None) -> LossOutput:
        """One pass of the objective: the loss (scalar) and its named per-sample terms in
        nats. The trainer passes the training ``step`` for pieces with schedules, and each
        datum's covariate level ``c`` to a model that has covariates."""
        if self.objective.importance_weighted:
            return self._forward_samples(x, beta, step, c)
        seen = self.encoder_input(x, c)  # read once: by the encoder and a latent library
        out = self.bottleneck(self.encoder(seen), step=step)
        theta = self.decode_params(out.z, x, c) if out.theta is None else out.theta
        theta, library_kl, _ = self.likelihood_extras(theta, x, c, seen=seen)
        terms = {"distortion": Term(-self.likelihood.log_prob(x, theta), "distortion")}
        rate = self.regularizer(out, self.prior, step)
        terms.update(rate.terms)
        if library_kl is not None:
            terms["rate/library"] = Term(library_kl, "rate")
        terms.update({name: Term(v, "aux") for name, v in out.aux.items()})
        x_mean = self.likelihood.mean(theta)
        judged = self.critic(x, x_mean, terms["distortion"].value, step)
        terms.update(judged.terms)
        loss = self.objective(terms, beta).mean()
        return LossOutput(loss=loss, terms=terms, z=out.z, posterior=out.posterior,
                          x_mean=x_mean, beta=beta, indices=out.indices,
                          losses={**rate.losses, **judged.losses},
                          metrics={**rate.metrics, **judged.metrics}, groups=out.groups)

    def draw(self, x: torch.Tensor, k: int, h: torch.Tensor | None = None,
             encoded: BottleneckOutput | None = None, step: int | None = None,
             c: torch.Tensor | None = None) -> Draws:
        """K draws z_k ~ q(z|x) per datum decoded in one batch, with the per-draw distortion
        and rate: the one place that turns K samples into importance log-weights (the IWAE
        objective, the likelihood estimate and the gradient check use it). ``h``: the
        encoder's features of ``x`` and ``encoded`` the bottleneck's output for them, when
        already computed (to draw in chunks from one encoding); ``c`` the data's covariate
        levels."""
        h = self.features(x, c) if h is None else h
        out = self.bottleneck.draw(h, k, step, out=encoded)
        theta = self.decode_draws(x, out.z, c) if out.theta is None else out.theta
        # log ℓ, for a latent library, drawn with each z: the weights cover both latents
        theta, _, library_rate = self.likelihood_extras(theta, x, c, k)
        log_px, theta = self.log_px(x, out.z, theta, c)
        distortion = -log_px
        groups = out.groups or [LatentGroup("z", out.z, out.posterior)]
        rate = sum(g.posterior.log_prob(g.z) - (g.prior or self.prior).log_prob(g.z)
                   for g in groups)
        return Draws(distortion, rate if library_rate is None else rate + library_rate, out,
                     theta)

    def decode_draws(self, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor | None = None
                     ) -> torch.Tensor:
        """The decoder's parameters (K, B, *) for K codes per datum, z (K, B, D), in one
        batch (x: the data, for a conditional decoder; c: the covariate levels)."""
        seen = x.expand(z.shape[0], *x.shape).flatten(0, 1) if self.conditional else None
        cs = c.expand(z.shape[0], *c.shape).flatten(0, 1) if c is not None else None
        theta = self.decode_params(z.flatten(0, 1), seen, cs)
        return theta.view(*z.shape[:2], *theta.shape[1:])

    def log_px(self, x: torch.Tensor, z: torch.Tensor, theta: torch.Tensor | None = None,
               c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x_b | z_kb) for K codes per datum, z (K, B, D), decoded in one batch (unless
        ``theta``, their decoder parameters (K, B, *), is given): the (K, B) log-likelihoods
        and the decoder's parameters."""
        if theta is None:
            theta = self.decode_draws(x, z, c)
        return self.likelihood.log_prob_samples(x, theta), theta

    def _forward_samples(self, x: torch.Tensor, beta: float, step: int | None,
                         c: torch.Tensor | None) -> LossOutput:
        """A K-sample objective (IWAE) over :meth:`draw`'s (K, B) terms."""
        d = self.draw(x, self.objective.samples, step=step, c=c)
        terms = {"distortion": Term(d.distortion, "distortion"), "rate": Term(d.rate, "rate")}
        terms.update({name: Term(v, "aux") for name, v in d.out.aux.items()})
        loss = self.objective(terms, beta).mean()
        ess = effective_sample_size(-(d.distortion + beta * d.rate).detach())
        mean_terms = {name: Term(t.value.mean(0) if t.value.dim() > 1 else t.value, t.kind)
                      for name, t in terms.items()}
        return LossOutput(loss=loss, terms=mean_terms, z=d.out.z[0], posterior=d.out.posterior,
                          x_mean=self.likelihood.mean(d.theta[0]), beta=beta,
                          indices=d.out.indices, metrics={"ess": ess})

    def latent_mean(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The code people look at: the posterior mode for Gaussians (group by group, each at
        the modes above it, for a hierarchy), z itself for deterministic codes and, in eval
        mode, the most likely code for discrete ones (``c``: the data's covariate levels)."""
        return self.bottleneck.mode(self.features(x, c))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """decode(mode of q(z|x)): the reconstruction people look at."""
        return self.decode(self.latent_mean(x, c), c=c)

    @torch.no_grad()
    def sample_z(self, n: int, temperature: float = 1.0, source: str = "own") -> torch.Tensor:
        """n codes z ~ p(z), (n, D). ``source`` ``own``: from the prior piece, through a
        hierarchy's top-down path where there is one; ``temperature`` < 1 shrinks every
        spread of the prior (as NVAE samples), for Gaussian priors. ``fitted``: from the
        diffusion prior that ``xae prior fit`` fitted to the latents (attached by
        :func:`xae.load`; it has no temperature)."""
        if not (isinstance(temperature, (int, float)) and 0 < temperature < math.inf):
            raise XaeError(f"the temperature must be a number > 0, got {temperature!r}")
        if source == "own":
            return self.bottleneck.sample_prior(self.prior, n, float(temperature))
        if source != "fitted":
            raise XaeError(f"the prior to sample is 'own' or 'fitted', got {source!r}")
        fitted = self.prior.fitted
        if fitted is None:
            raise XaeError("this model has no fitted diffusion prior; fit one with `xae prior "
                           "fit RUN` and load the run with xae.load, or sample its own prior")
        if temperature != 1:
            raise XaeError("the fitted diffusion prior has no temperature; sample it at "
                           "temperature 1")
        if tuple(fitted.config.latent_shape) != tuple(self.latent_shape):
            raise XaeError(f"the fitted prior is over codes of shape "
                           f"{list(fitted.config.latent_shape)}, the model's are "
                           f"{list(self.latent_shape)}; refit it with `xae prior fit`")
        return fitted.sample(n).to(next(self.parameters()).dtype)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, source: str = "own",
               c: torch.Tensor | None = None) -> torch.Tensor:
        """n draws z ~ p(z) (at ``temperature``; from the fitted prior when ``source`` is
        ``fitted``, see :meth:`sample_z`), decoded to the mean of p(x|z) (at covariate
        levels ``c``, (n,), for a model that has covariates)."""
        return self.decode(self.sample_z(n, temperature, source), c=c)

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
        return self.bottleneck.stochastic

    @property
    def discrete(self) -> bool:
        """Whether the code is a grid of indices (VQ, residual VQ, FSQ, LFQ, Gumbel)."""
        return self.bottleneck.discrete

    @property
    def hierarchical(self) -> bool:
        """Whether the code is an ordered list of latent groups (a top-down hierarchy)."""
        return self.bottleneck.hierarchical

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
