"""Editing along an attribute direction, and measuring whether the edit works.

An edit encodes an image to its posterior mean z, moves it to z + a·d for each amount a (in
units of the direction d's length) and decodes the mean of p(x|z + a·d).

The measurement (:func:`edit_report`): the attribute measured on the decoded images
(thickness or slant from the pixels; for ``class=K`` the shipped LeNet's log-probability of
class K) should rise with the amount: Spearman's ρ between amount and measure over all
images × amounts. For the class-preserving attributes (thickness, slant) the share of edited
images the LeNet puts in the same class as the unedited reconstruction (decode(z)) is
reported too; the LeNet takes 1×28×28 images only, so both class figures are skipped (with
the reason) for other shapes.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from xae.edits.directions import Attribute, latents
from xae.edits.measures import MEASURES
from xae.errors import XaeError
from xae.evaluate.common import batches
from xae.evaluate.fid_nets import INPUT_SHAPE, load_classifier
from xae.model import inference

#: Attributes an edit should leave the digit's class alone for.
CLASS_PRESERVING = tuple(MEASURES)


def parse_amounts(text: str) -> list[float]:
    """``-2,-1,0,1,2`` -> the amounts, or an XaeError."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise XaeError(f"--amounts {text!r}: give numbers separated by commas, e.g. "
                       f"-2,-1,0,1,2") from None
    if not values or not all(np.isfinite(values)):
        raise XaeError(f"--amounts {text!r}: give finite numbers, e.g. -2,-1,0,1,2")
    return values


def evenly(amount: float, steps: int = 5) -> list[float]:
    """``steps`` amounts evenly spaced from −amount to +amount (−2, −1, 0, 1, 2 for 2)."""
    return np.linspace(-amount, amount, steps).tolist()


def edit(model: torch.nn.Module, x: torch.Tensor, direction: torch.Tensor,
         amounts: list[float], batch_size: int = 500) -> torch.Tensor:
    """decode(z + a·direction) for each image and amount: (B, A, *data_shape)."""
    z = latents(model, x, batch_size)
    d = direction.to(z)
    a = torch.tensor(amounts, dtype=z.dtype, device=z.device)
    moved = (z.unsqueeze(1) + a.view(1, -1, *[1] * d.dim()) * d).flatten(0, 1)
    with inference(model) as device:
        out = torch.cat([model.decode(zb.to(device)).cpu() for zb in batches(moved, batch_size)])
    return out.view(len(x), len(amounts), *model.data_shape)


def spearman(amounts: list[float], values: np.ndarray) -> float:
    """Spearman's ρ between the amount and ``values`` (B, A), over all B·A pairs."""
    from scipy.stats import spearmanr

    a = np.broadcast_to(np.asarray(amounts, dtype=np.float64), values.shape)
    ok = np.isfinite(values)
    if not ok.any() or np.ptp(values[ok]) == 0:
        return float("nan")  # a constant measure has no rank order
    return float(spearmanr(a[ok], values[ok]).statistic)


@functools.lru_cache(maxsize=1)
def _lenet() -> torch.nn.Module:
    return load_classifier()


def log_probs(images: torch.Tensor) -> torch.Tensor:
    """The shipped MNIST LeNet's class log-probabilities (N, 10) of 1×28×28 images, clamped
    to [0, 1] as they would be displayed."""
    with torch.no_grad():
        return torch.cat([_lenet()(b.cpu().clamp(0, 1)).log_softmax(-1)
                          for b in batches(images, 1000)])


def edit_report(model: torch.nn.Module, x: torch.Tensor, attribute: Attribute,
                amounts: list[float], edits: torch.Tensor | None = None) -> dict[str, Any]:
    """How the edit along ``attribute`` works on images ``x``: Spearman's ρ of the measure
    against the amount, the mean measure at each amount and, for thickness and slant on
    1×28×28 images, the share of edits whose LeNet class is the reconstruction's.
    ``edits``: :func:`edit`'s output for these images and amounts, when already made."""
    edits = edit(model, x, attribute.direction, amounts) if edits is None else edits
    flat = edits.flatten(0, 1)
    lenet = tuple(model.data_shape) == INPUT_SHAPE
    name = attribute.name
    out: dict[str, Any] = {"attribute": name, "method": attribute.method, "amounts": amounts,
                           "images": len(x), "groups": attribute.groups,
                           "group_sizes": list(attribute.sizes),
                           "probe_accuracy": attribute.probe_accuracy,
                           "direction_length": attribute.length}
    log_p = log_probs(flat) if lenet else None
    if name in MEASURES:
        values = MEASURES[name](flat).reshape(len(x), len(amounts))
        out["measure"] = f"{name} of the decoded images"
    elif name.startswith("class=") and lenet:
        values = log_p[:, int(name[6:])].numpy().reshape(len(x), len(amounts))
        out["measure"] = f"the LeNet classifier's log-probability of class {name[6:]}"
    else:
        why = ("the LeNet classifier takes 1×28×28 images" if name.startswith("class=")
               else "only the built-in attributes (thickness, slant, class=K) are measured")
        raise XaeError(f"cannot measure the edit along '{name}': {why}; drop --measure")
    out["spearman_rho"] = spearman(amounts, values)
    out["mean_by_amount"] = values.mean(0).tolist()
    if name in CLASS_PRESERVING:
        if lenet:
            recon = (edits[:, amounts.index(0.0)] if 0.0 in amounts else
                     edit(model, x, attribute.direction, [0.0])[:, 0])
            before = log_probs(recon).argmax(-1)
            after = log_p.argmax(-1).view(len(x), len(amounts))
            out["class_preserved"] = float((after == before[:, None]).double().mean())
            out["class_preserved_by_amount"] = (after == before[:, None]).double().mean(0).tolist()
        else:
            out["class_preserved"] = None
            out["class_preserved_skipped"] = (f"the LeNet classifier takes 1×28×28 images; "
                                              f"these are {tuple(model.data_shape)}")
    return out
