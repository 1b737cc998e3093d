"""The registry's tables (name → class, one per piece kind) and the config section of every
registered piece that has settings, named by its registry name (``model.mog``, ``model.vq``).

Adding a piece is its file and one line in its package's table: its section follows from its
constructor (see :mod:`xae.settings`). This module imports the pieces and no config, so that
:mod:`xae.config` and :mod:`xae.registry` can both import it.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from xae.bottlenecks import BOTTLENECKS
from xae.critics import CRITICS
from xae.likelihoods import LIKELIHOODS
from xae.nets import DECODERS, ENCODERS
from xae.objectives import OBJECTIVES
from xae.priors import PRIORS
from xae.regularizers import REGULARIZERS
from xae.settings import section

TABLES: dict[str, dict[str, type]] = {
    "encoder": ENCODERS, "decoder": DECODERS, "bottleneck": BOTTLENECKS, "prior": PRIORS,
    "regularizer": REGULARIZERS, "likelihood": LIKELIHOODS, "objective": OBJECTIVES,
    "critic": CRITICS,
}
SHARED = frozenset({"encoder", "decoder", "bottleneck"})
"""Kinds whose pieces of one name share that name's section (the ``mlp`` encoder and decoder
both read ``model.mlp``; the ``hvae`` encoder, bottleneck and decoder ``model.hvae``), so their
settings must agree."""


def _shape(sec: type) -> list[tuple[Any, ...]]:
    """What two sections must share to be one: each field's name, type, default and metadata."""
    return [(f.name, f.type, f.default_factory() if f.default_factory is not dataclasses.MISSING
             else f.default, dict(f.metadata)) for f in dataclasses.fields(sec)]


def sections(tables: dict[str, dict[str, type]]) -> dict[str, type]:
    """Registry name → section class, for every piece in ``tables`` with settings, in table
    order; each class's ``readers`` are the kinds of the pieces that read it. Two pieces of one
    name with settings are a TypeError, unless both are of the ``SHARED`` kinds and their
    settings agree."""
    out: dict[str, type] = {}
    for kind, table in tables.items():
        for name, cls in table.items():
            sec = section(cls, name, __name__)
            if sec is None:
                continue
            if name not in out:
                out[name], sec.readers = sec, (kind,)
                continue
            first = out[name].readers[0]
            if not {kind, first} <= SHARED:
                raise TypeError(f"the {first} '{name}' and the {kind} '{name}' both have "
                                f"settings, and a section is named by its piece "
                                f"(model.{name}); register one of them under another name")
            if _shape(sec) != _shape(out[name]):
                raise TypeError(f"the {first} and the {kind} '{name}' share the section "
                                f"model.{name}, so their settings must agree (names, types, "
                                f"defaults and KEYS); they differ")
            out[name].readers += (kind,)
    return out


SECTIONS: dict[str, type] = sections(TABLES)
globals().update({cls.__name__: cls for cls in SECTIONS.values()})  # pickle finds them here
