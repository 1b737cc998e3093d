"""Controlled generation: attribute directions in the latent space, and edits along them.

- :func:`attributes` (``xae.attributes``): directions from labelled images, as differences
  of the groups' mean latents or a logistic-regression probe (:mod:`.directions`);
- :func:`edit`: decode(z + a·d) for amounts a (:mod:`.editing`), and :func:`edit_report`, the
  measurement that an edit works (Spearman's ρ, class preservation);
- :func:`thickness`, :func:`slant`: attributes of handwriting measured from the pixels
  (:mod:`.measures`); labels by name from the measures, classes or a CSV (:mod:`.labels`);
- ``xae edit`` (:mod:`.cli`) and the figure of edits (:mod:`.figure`).

The package is itself callable: ``xae.attributes(model, x, labels)`` is
:func:`~xae.attributes.directions.attributes` (the issue's name for it), while
``xae.attributes.edit``, ``xae.attributes.thickness`` … stay reachable as usual. A function of
that name in ``xae/__init__`` would hide the package and break ``import xae.attributes.X``.
"""
from __future__ import annotations

import sys
import types

from xae.attributes.directions import Attribute, attributes, from_latents
from xae.attributes.editing import edit, edit_report, spearman
from xae.attributes.measures import slant, thickness

__all__ = ["Attribute", "attributes", "edit", "edit_report", "from_latents", "slant",
           "spearman", "thickness"]


class _CallableModule(types.ModuleType):
    """This package's module type: calling it calls :func:`attributes`."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return attributes(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
