"""Lookup of pieces by name, and :func:`build` (config → Autoencoder).

The tables live in :mod:`xae.pieces`; adding a piece is one line in its package's table, and
each piece gets exactly the settings of its own config section (``model.<name>``).
"""
from __future__ import annotations

import copy
import math
import dataclasses
import difflib
from typing import Any

from xae.bottlenecks.positionwise import Positionwise
from xae.config import Config, validate
from xae.errors import XaeError
from xae.tokens import TEXT_SOURCES
from xae.library import LatentLibrary
from xae.model import Autoencoder
from xae.nets import MapEncoder
from xae.pieces import SECTIONS, TABLES
from xae.regularizers.kl import free_bits_on

__all__ = ["KNOWN_SHAPES", "TABLES", "build", "data_shape", "lookup", "section_values"]

KNOWN_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28)}


def lookup(kind: str, name: str) -> type:
    """The class registered as ``name`` for piece ``kind``, or an error naming the choices."""
    table = TABLES[kind]
    if name not in table:
        near = difflib.get_close_matches(name, table, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise XaeError(f"model.{kind} '{name}' is unknown{hint} (choices: {', '.join(table)})")
    return table[name]


def section_values(model: Any, kind: str, name: str) -> dict[str, Any]:
    """The keyword arguments of the ``kind`` registered as ``name``: the values of its section
    ``model.<name>`` (copies, so that the piece shares no list with the config), or none for a
    piece without settings (the section of that name may be another kind's)."""
    if name not in SECTIONS or kind not in SECTIONS[name].readers:
        return {}
    section = getattr(model, name)
    return {f.name: copy.deepcopy(getattr(section, f.name))
            for f in dataclasses.fields(section)}


def _piece(model: Any, kind: str, *structural: Any) -> Any:
    """``cls(*structural, **settings)`` for the ``kind`` that ``model`` names."""
    name = getattr(model, kind)
    return lookup(kind, name)(*structural, **section_values(model, kind, name))


def _vocab(cfg: Config, kind: str) -> tuple[int, ...]:
    """The structural vocabulary size for a piece that reads token ids (``needs_vocab``), on
    text data; an error for a token piece on other data or another piece on text."""
    name = getattr(cfg.model, kind)
    cls = lookup(kind, name)
    if getattr(cls, "any_data", False):
        return ()
    reads = getattr(cls, "needs_vocab", False)
    text = cfg.data.name in TEXT_SOURCES
    if reads and not text:
        raise XaeError(f"model.{kind} '{name}' reads sentences (token ids); train it on "
                       f"--data ptb or --data text")
    if text and not reads:
        raise XaeError(f"--data {cfg.data.name} is sentences (token ids), but model.{kind} "
                       f"'{name}' reads images or vectors; use model.encoder=rnn, "
                       f"model.decoder=rnn and model.likelihood=categorical (or the "
                       f"sentence-vae preset)")
    return (cfg.data.vocab_size,) if reads else ()


def data_shape(cfg: Config) -> tuple[int, ...]:
    """The per-sample data shape: from the config when recorded there, else from the data."""
    if cfg.model.data_shape:
        return tuple(int(s) for s in cfg.model.data_shape)
    if cfg.data.name in KNOWN_SHAPES:
        return KNOWN_SHAPES[cfg.data.name]
    if cfg.data.name in ("linear-gaussian", "synthetic-counts"):
        return (cfg.data.dim,)
    if cfg.data.name == "dsprites":
        return (1, cfg.data.image_size, cfg.data.image_size)
    if cfg.data.name in TEXT_SOURCES:  # words and <eos>, padded
        return (cfg.data.max_len + 1,)
    from xae.data import load  # only user arrays need a look at the data itself

    return tuple(load(cfg.data).shape)


def build(cfg: Config, shape: tuple[int, ...] | None = None) -> Autoencoder:
    """Build the :class:`Autoencoder` described by ``cfg`` (fresh weights); ``cfg`` is checked
    and left as it is: the model's ``config`` is a copy with ``model.data_shape`` filled in.

    Each piece is ``cls(*structural, **settings)``: the arguments only the build knows (the
    data's shape, ``latent_dim``, the encoder's feature size), then its section's settings."""
    m = validate(cfg).model
    shape = tuple(shape) if shape is not None else data_shape(cfg)
    bottleneck_cls = lookup("bottleneck", m.bottleneck)
    regularizer = _piece(m, "regularizer")
    # a prior shaped like the data (the VampPrior's pseudo-inputs) also gets the data's shape;
    # built here, before the nets, so that seeded runs keep their initial weights
    with_shape = (shape,) if lookup("prior", m.prior).needs_data_shape else ()
    size = bottleneck_cls.prior_dim(m.latent_dim, section_values(m, "bottleneck", m.bottleneck),
                                    shape)
    prior = _piece(m, "prior", size, *with_shape)
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
    if bottleneck_cls.hierarchical and m.regularizer != "kl":
        raise XaeError(f"model.bottleneck '{m.bottleneck}' gives latent groups with a KL each; "
                       f"model.regularizer '{m.regularizer}' reads one posterior: use "
                       f"model.regularizer=kl")
    if (m.bottleneck == "none") != (m.encoder == "none"):
        raise XaeError("model.bottleneck=none (no code) never reads the encoder, and "
                       "model.encoder=none gives no code to read: set both to none (a model "
                       "of p(x) alone, such as the lstm-lm preset) or neither")
    objective = _piece(m, "objective")
    if objective.importance_weighted and not (bottleneck_cls.stochastic and m.regularizer == "kl"):
        raise XaeError(f"model.objective '{m.objective}' weighs K posterior samples by "
                       "p(x|z)p(z)/q(z|x), so it needs model.bottleneck=gaussian (or topdown) "
                       f"and model.regularizer=kl (got '{m.bottleneck}' and '{m.regularizer}')")
    if objective.importance_weighted and free_bits_on(m.kl.free_bits):
        raise XaeError("free bits clip the per-dimension KL of the ELBO and do not apply to "
                       "the IWAE bound; set model.kl.free_bits=0 or model.objective=elbo")
    if m.critic != "none" and objective.importance_weighted:
        raise XaeError(f"model.critic '{m.critic}' judges one reconstruction per datum; "
                       f"model.objective '{m.objective}' draws K: use model.objective=elbo")
    levels = _covariate_levels(m, shape, bottleneck_cls)
    counts = (levels, m.library == "latent") if getattr(
        lookup("likelihood", m.likelihood), "reads_covariate", False) else ()
    likelihood = _piece(m, "likelihood", shape, *_vocab(cfg, "likelihood"), *counts)
    critic = _piece(m, "critic", shape)
    seen = (math.prod(shape) + levels,) if levels and m.covariate_encoder else shape
    library = _library(m, likelihood, seen, levels)
    encoder = _piece(m, "encoder", seen, *_vocab(cfg, "encoder"))
    decoder = _piece(m, "decoder", shape, m.latent_dim + levels,
                     likelihood.params_per_channel, *_vocab(cfg, "decoder"))
    bottleneck, latent_shape = _bottleneck(m, bottleneck_cls, encoder)
    if prior.needs_posterior and (not bottleneck_cls.stochastic
                                                     or bottleneck_cls.hierarchical):
        raise XaeError(f"model.prior '{m.prior}' is a mixture of the encoder's posteriors, so "
                       f"it needs model.bottleneck=gaussian (got '{m.bottleneck}')")
    if levels and m.covariate_encoder and prior.needs_posterior:
        raise XaeError(f"model.prior '{m.prior}' is built from the encoder's posteriors of "
                       "pseudo-inputs, which have no covariate level; set model.covariate_"
                       "encoder=false or use model.prior=normal")
    if regularizer.needs_factorized_prior and not prior.factorized:
        raise XaeError(f"model.regularizer '{m.regularizer}' splits the KL over latent "
                       f"dimensions, so it needs a factorized prior; model.prior '{m.prior}' "
                       "is not one: use model.prior=normal")
    config = copy.deepcopy(cfg)
    config.model.data_shape = list(shape)
    return Autoencoder(
        encoder=encoder, bottleneck=bottleneck, decoder=decoder, likelihood=likelihood,
        prior=prior, regularizer=regularizer, objective=objective, critic=critic,
        data_shape=shape, input_transform=m.input_transform,
        latent_dim=m.latent_dim, latent_shape=latent_shape, config=config,
        covariates=levels, covariate_encoder=m.covariate_encoder, library=library)


def _library(m: Any, likelihood: Any, seen: tuple[int, ...], levels: int) -> Any:
    """The latent library size of ``model.library=latent`` (None when observed): a count
    likelihood's, reading what the encoder reads, with a prior per covariate level."""
    if m.library == "observed":
        return None
    if not getattr(likelihood, "reads_covariate", False):
        raise XaeError(f"model.library=latent is the library size of a count likelihood "
                       f"(poisson, nb, zinb); model.likelihood '{m.likelihood}' has none: set "
                       "model.library=observed")
    return LatentLibrary(seen[0], max(levels, 1))


def _covariate_levels(m: Any, shape: tuple[int, ...], bottleneck_cls: type) -> int:
    """How many levels the model's covariate has (0: none), checked against the pieces that
    read it: one-hot columns beside a vector's features and beside a flat code."""
    if m.covariate == "none":
        if m.covariate_levels:
            raise XaeError("model.covariate_levels is set but model.covariate=none; set "
                           "model.covariate (batch or label) or leave the levels empty")
        return 0
    if not m.covariate_levels:
        raise XaeError(f"model.covariate={m.covariate} needs its levels (model.covariate_"
                       "levels), which training fills in from the data; build the model "
                       "with them set")
    if m.decoder != "mlp" or (m.covariate_encoder and m.encoder != "mlp") \
            or bottleneck_cls.hierarchical:
        raise XaeError(f"model.covariate={m.covariate} puts a one-hot column per level beside "
                       "the flattened input and a flat code: it needs model.encoder=mlp, "
                       "model.decoder=mlp and a flat bottleneck (got "
                       f"{m.encoder}, {m.decoder}, {m.bottleneck})")
    return len(m.covariate_levels)


def _bottleneck(m: Any, cls: type, encoder: Any) -> tuple[Any, tuple[int, ...]]:
    """The bottleneck and the code's shape: (D,) after a vector encoder; (C, h, w) after a
    map encoder, with the bottleneck at each of its h·w positions (C = D / (h·w))."""
    own = section_values(m, "bottleneck", m.bottleneck)
    # a bottleneck built from another piece (residual VQ's stages) gets that piece's settings
    stage = cls.STAGE_KEY
    structural = (section_values(m, "bottleneck", own[stage]),) if stage else ()
    if not isinstance(encoder, MapEncoder):
        return cls(encoder.out_features, m.latent_dim, *structural, **own), (m.latent_dim,)
    h, w = encoder.grid
    if m.latent_dim % (h * w):
        raise XaeError(f"the encoder's map has {h}×{w} positions, so model.latent_dim (the "
                       f"code's size, channels × positions) must be a multiple of {h * w}, "
                       f"got {m.latent_dim}; e.g. {4 * h * w} for 4 channels")
    c = m.latent_dim // (h * w)
    inner = cls(encoder.out_features, c, *structural, **own)
    return Positionwise(inner, (h, w)), (c, h, w)
