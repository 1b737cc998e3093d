"""Controlled generation: attribute directions in the latent space, and edits along them.

- :func:`attributes` (``xae.attributes``): directions from labelled images, as differences
  of the groups' mean latents or a logistic-regression probe (:mod:`.directions`);
- :func:`edit`: decode(z + a·d) for amounts a (:mod:`.editing`), and :func:`edit_report`, the
  measurement that an edit works (Spearman's ρ, class preservation);
- :func:`thickness`, :func:`slant`: attributes of handwriting measured from the pixels
  (:mod:`.measures`); labels by name from the measures, classes or a CSV (:mod:`.labels`);
- ``xae edit`` (:mod:`.cli`) and the figure of edits (:mod:`.figure`).

``xae.attributes(model, x, labels)`` is :func:`~xae.edits.directions.attributes`.
"""
from __future__ import annotations

from xae.edits.directions import Attribute, attributes, from_latents
from xae.edits.editing import edit, edit_report, spearman
from xae.edits.measures import slant, thickness

__all__ = ["Attribute", "attributes", "edit", "edit_report", "from_latents", "slant",
           "spearman", "thickness"]

