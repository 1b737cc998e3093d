"""The attribute directions the latent explorer's slider moves along, computed when it starts.

For a run with a continuous code: ``thickness`` and ``slant`` for one-channel images and
``class=K`` for each class of labelled data, each the difference of the groups' mean latents
(:mod:`xae.edits.directions`) over the test set the explorer maps. A discrete code gets
none (z + a·d is not a code), and the page says why.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xae.edits.directions import from_latents
from xae.edits.labels import available, built_in
from xae.errors import XaeError


def explorer_attributes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None,
                        z: np.ndarray) -> tuple[list[dict[str, Any]], str | None]:
    """The directions as JSON-ready dicts (name, direction, length, groups) for images ``x``
    with labels ``y`` and latent means ``z`` (N, D), and why there are none (or None)."""
    if model.discrete:
        return [], "attribute edits need a continuous latent; this run's code is discrete"
    out = []
    latents = torch.from_numpy(np.ascontiguousarray(z))
    for name in available(x, y):
        member = built_in(name, x, y)
        try:
            attr = from_latents(latents, member, name)[name]
        except XaeError:  # an empty group (a measure without spread): not offered
            continue
        out.append({"name": name, "direction": attr.direction.double().tolist(),
                    "length": attr.length, "groups": attr.groups})
    return out, None if out else "no attribute could be learned from the test set"
