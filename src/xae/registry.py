"""Name → class tables, one per piece kind, and :func:`build` (config → Autoencoder).

Adding a piece is one line in its package's table; nothing here dispatches on names by hand.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect

from xae import schedules
from xae.bottlenecks import BOTTLENECKS
from xae.config import Config
from xae.errors import XaeError
from xae.likelihoods import LIKELIHOODS
from xae.model import Autoencoder
from xae.bottlenecks.positionwise import Positionwise
from xae.nets import DECODERS, ENCODERS, MapEncoder
from xae.objectives import OBJECTIVES
from xae.priors import PRIORS
from xae.regularizers import REGULARIZERS

TABLES: dict[str, dict[str, type]] = {
    "encoder": ENCODERS, "decoder": DECODERS, "bottleneck": BOTTLENECKS, "prior": PRIORS,
    "regularizer": REGULARIZERS, "likelihood": LIKELIHOODS, "objective": OBJECTIVES,
}
KNOWN_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28)}


def lookup(kind: str, name: str) -> type:
    """The class registered as ``name`` for piece ``kind``, or an error naming the choices."""
    table = TABLES[kind]
    if name not in table:
        near = difflib.get_close_matches(name, table, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise XaeError(f"model.{kind} '{name}' is unknown{hint} (choices: {', '.join(table)})")
    return table[name]


def construct(cls: type, *args: object, **settings: object) -> object:
    """``cls(*args, ...)`` with the settings its constructor names: a piece's signature is the
    list of config keys it reads (the others belong to other pieces), so a misspelled keyword
    in a piece is a TypeError, never swallowed. A constructor with ``**keys`` (residual VQ,
    which hands them to its stages) gets them all."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(*args, **settings)
    return cls(*args, **{k: v for k, v in settings.items() if k in params})


def data_shape(cfg: Config) -> tuple[int, ...]:
    """The per-sample data shape: from the config when recorded there, else from the data."""
    if cfg.model.data_shape:
        return tuple(int(s) for s in cfg.model.data_shape)
    if cfg.data.name in KNOWN_SHAPES:
        return KNOWN_SHAPES[cfg.data.name]
    if cfg.data.name == "linear-gaussian":
        return (cfg.data.dim,)
    from xae.data import load  # only user arrays need a look at the data itself

    return tuple(load(cfg.data).shape)


def build(cfg: Config, shape: tuple[int, ...] | None = None) -> Autoencoder:
    """Build the :class:`Autoencoder` described by ``cfg`` (fresh weights)."""
    m = cfg.model
    shape = tuple(shape) if shape is not None else data_shape(cfg)
    if m.latent_dim < 1:
        raise XaeError(f"model.latent_dim must be a positive integer, got {m.latent_dim}")
    schedules.check(cfg.beta)
    schedules.check(cfg.train.lr_schedule, "train.lr_schedule")
    if m.kl_estimator not in ("analytic", "mc"):
        raise XaeError(f"model.kl_estimator '{m.kl_estimator}' is unknown; use analytic or mc")
    bottleneck_cls = lookup("bottleneck", m.bottleneck)
    regularizer = construct(
        lookup("regularizer", m.regularizer), estimator=m.kl_estimator, kernel=m.mmd_kernel, info_alpha=m.info_alpha,
        info_lambda=m.info_lambda, tc_weight=m.tc_weight, dataset_size=m.dataset_size,
        free_bits=m.free_bits)
    if m.free_bits > 0 and not hasattr(regularizer, "free_bits"):
        raise XaeError(f"model.free_bits clips a KL per latent dimension or group, and "
                       f"model.regularizer '{m.regularizer}' has none; set model.free_bits=0 "
                       f"or model.regularizer=kl")
    if regularizer.needs_posterior and not bottleneck_cls.has_posterior:
        raise XaeError(f"model.regularizer '{m.regularizer}' needs a posterior q(z|x), but "
                       f"model.bottleneck '{m.bottleneck}' has none; set model.bottleneck="
                       f"gaussian (or gumbel for discrete codes) or model.regularizer=none")
    if bottleneck_cls.discrete != (m.prior == "codes"):
        raise XaeError(
            f"model.bottleneck '{m.bottleneck}' gives discrete codes, so it needs "
            f"model.prior=codes (the categorical prior over its indices), not '{m.prior}'"
            if bottleneck_cls.discrete else
            f"model.prior 'codes' is a prior over code indices and needs a discrete "
            f"bottleneck (vq, rvq, fsq, lfq, gumbel), not '{m.bottleneck}'")
    objective = construct(lookup("objective", m.objective), samples=m.iw_samples)
    if objective.importance_weighted and not (bottleneck_cls.stochastic and m.regularizer == "kl"):
        raise XaeError(f"model.objective '{m.objective}' weighs K posterior samples by "
                       "p(x|z)p(z)/q(z|x), so it needs model.bottleneck=gaussian and "
                       f"model.regularizer=kl (got '{m.bottleneck}' and '{m.regularizer}')")
    if objective.importance_weighted and m.free_bits > 0:
        raise XaeError("free bits clip the per-dimension KL of the ELBO and do not apply to "
                       "the IWAE bound; set model.free_bits=0 or model.objective=elbo")
    likelihood = construct(lookup("likelihood", m.likelihood), shape, scale=m.scale,
                           sigma=m.sigma)
    per_channel = getattr(likelihood, "params_per_channel", 1)
    encoder = construct(lookup("encoder", m.encoder), shape, hidden=m.hidden,
                        channels=m.channels, activation=m.activation)
    decoder = construct(lookup("decoder", m.decoder), shape, m.latent_dim, hidden=m.hidden,
                        channels=m.channels, activation=m.activation,
                        out_channels_per_channel=per_channel)
    # the quantizer settings go to the bottleneck, which takes those its constructor names
    quantizer_keys = {f.name: getattr(m.quantizer, f.name)
                      for f in dataclasses.fields(m.quantizer)}
    bottleneck, latent_shape = _bottleneck(bottleneck_cls, encoder, m.latent_dim,
                                           quantizer_keys)
    prior = construct(lookup("prior", m.prior), bottleneck.prior_dim,
                      components=m.prior_components, layers=m.prior_layers,
                      hidden=m.prior_hidden, data_shape=shape)
    if getattr(prior, "needs_posterior", False) and not bottleneck_cls.stochastic:
        raise XaeError(f"model.prior '{m.prior}' is a mixture of the encoder's posteriors, so "
                       f"it needs model.bottleneck=gaussian (got '{m.bottleneck}')")
    if getattr(regularizer, "needs_factorized_prior", False) and not prior.factorized:
        raise XaeError(f"model.regularizer '{m.regularizer}' splits the KL over latent "
                       f"dimensions, so it needs a factorized prior; model.prior '{m.prior}' "
                       "is not one: use model.prior=normal")
    m.data_shape = list(shape)
    return Autoencoder(
        encoder=encoder, bottleneck=bottleneck, decoder=decoder, likelihood=likelihood,
        prior=prior, regularizer=regularizer, objective=objective, data_shape=shape,
        latent_dim=m.latent_dim, latent_shape=latent_shape, config=cfg)


def _bottleneck(cls: type, encoder: object, latent_dim: int, settings: dict
                ) -> tuple[object, tuple[int, ...]]:
    """The bottleneck and the code's shape: (D,) after a vector encoder; (C, h, w) after a
    map encoder, with the bottleneck at each of its h·w positions (C = D / (h·w))."""
    if not isinstance(encoder, MapEncoder):
        return construct(cls, encoder.out_features, latent_dim, **settings), (latent_dim,)
    h, w = encoder.grid
    if latent_dim % (h * w):
        raise XaeError(f"the encoder's map has {h}×{w} positions, so model.latent_dim (the "
                       f"code's size, channels × positions) must be a multiple of {h * w}, "
                       f"got {latent_dim}; e.g. {4 * h * w} for 4 channels")
    inner = construct(cls, encoder.out_features, latent_dim // (h * w), **settings)
    return Positionwise(inner, (h, w)), (latent_dim // (h * w), h, w)

