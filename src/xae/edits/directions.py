"""Attribute directions in a model's latent space: the difference of the two groups' mean
latents, or a linear probe's normal.

Latents are the posterior means (``model.latent_mean``: the mode of q(z|x), z itself for a
deterministic code), flattened to vectors; a direction has the shape of one latent. Labels
say which group each image is in, and their dtype says how:

- **bool** (N,): one attribute, ``True`` (the positive group) against ``False``;
- **integer** (N,): class labels, one attribute per class present, ``class=K`` against the
  rest;
- **float** (N,): a measured quantity (e.g. :func:`~xae.edits.measures.thickness`): one
  attribute, its top third against its bottom third (the middle third is left out, so the
  direction points from clearly low to clearly high values); NaN marks an unmeasured image.

Methods:

- ``mean``: d = mean(z | positive) − mean(z | negative);
- ``probe``: the normal w of a logistic regression (scikit-learn, L2 with C = 1) fitted to
  tell the groups apart from the latents, scaled to the length of the mean difference,
  d = w/‖w‖·‖mean(z | positive) − mean(z | negative)‖, so that an amount moves as far with
  either method and only the heading differs.

Both report the probe's accuracy on a held-out quarter of the images (stratified, seeded);
the probe's direction is the one fitted on the other three quarters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xae.errors import XaeError

METHODS = ("mean", "probe")
HELD_OUT = 0.25  # share of each group the probe is scored on


@dataclass
class Attribute:
    """One attribute direction.

    Attributes
    ----------
    name : str
        E.g. ``thickness``, ``class=3`` or a CSV column's name.
    direction : torch.Tensor
        float32, the shape of one latent (``model.latent_mean(x)[0]``).
    method : str
        ``mean`` or ``probe``.
    sizes : tuple[int, int]
        Images in the positive and the negative group.
    probe_accuracy : float
        The probe's accuracy on the held-out images (0.5 is chance for balanced groups).
    groups : str
        What the two groups are, e.g. ``top third vs bottom third of thickness``.
    """

    name: str
    direction: torch.Tensor
    method: str
    sizes: tuple[int, int]
    probe_accuracy: float
    groups: str

    @property
    def length(self) -> float:
        """‖direction‖, the latent distance of an amount of 1."""
        return float(self.direction.norm())


def check_continuous(model: torch.nn.Module) -> None:
    """An XaeError unless the model's code is continuous (edits move z by real amounts)."""
    if model.discrete:
        raise XaeError(f"attribute edits need a continuous latent; this model's bottleneck "
                       f"'{model.config.model.bottleneck}' is discrete (a grid of code "
                       f"indices), so z + a·d is not a code: use a run with a gaussian or "
                       f"deterministic bottleneck")


def latents(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The posterior means of ``x``, (N, *latent), after checking the code is continuous."""
    from xae.diffprior.fit import encode_latents

    check_continuous(model)
    if tuple(x.shape[1:]) != tuple(model.data_shape):
        raise XaeError(f"the images have shape {tuple(x.shape[1:])} but the model expects "
                       f"{tuple(model.data_shape)}; give images of the run's data shape")
    return encode_latents(model, x, batch_size)


def groups(labels: np.ndarray | torch.Tensor, name: str) -> dict[str, tuple[np.ndarray, str]]:
    """Attribute name -> (membership (N,): 1 positive, 0 negative, −1 left out; what the
    groups are), from labels as the module's notes describe."""
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim != 1:
        raise XaeError(f"attribute '{name}': labels must be one value per image, shape (N,); "
                       f"got shape {y.shape}")
    if y.dtype == bool:
        about = (f"class {name[6:]} vs the other classes" if name.startswith("class=")
                 else f"{name} true vs false")
        return {name: (y.astype(np.int8), about)}
    if y.dtype.kind in "iu":
        return {f"class={k}": ((y == k).astype(np.int8), f"class {k} vs the other classes")
                for k in np.unique(y).tolist()}
    if y.dtype.kind == "f":
        seen = np.isfinite(y)
        member = np.full(y.shape, -1, dtype=np.int8)
        if seen.sum() >= 3:
            lo, hi = np.quantile(y[seen], [1 / 3, 2 / 3])
            member[seen & (y <= lo)] = 0
            member[seen & (y >= hi)] = 1
            if lo == hi:  # a measure that barely varies: the thirds are not two groups
                member[seen] = -1
        return {name: (member, f"top third vs bottom third of {name}")}
    raise XaeError(f"attribute '{name}': labels must be bool (two groups), integer (classes) "
                   f"or float (a measured quantity); got type {y.dtype}")


def _split(member: np.ndarray, seed: int) -> np.ndarray:
    """Which images the probe is scored on: a seeded quarter of each group."""
    rng = np.random.default_rng(seed)
    held = np.zeros(member.shape, dtype=bool)
    for g in (0, 1):
        idx = np.flatnonzero(member == g)
        held[rng.permutation(idx)[: int(round(HELD_OUT * len(idx)))]] = True
    return held


def _probe(z: np.ndarray, member: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """The logistic regression's unit normal (fitted on three quarters) and its accuracy on
    the held-out quarter."""
    from sklearn.linear_model import LogisticRegression

    used = member >= 0
    held = _split(member, seed) & used
    fit = used & ~held
    if len(np.unique(member[fit])) < 2:  # too few images to hold any out: fit on all
        fit, held = used, used
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(z[fit], member[fit])
    w = clf.coef_[0]
    norm = float(np.linalg.norm(w))
    accuracy = float(clf.score(z[held], member[held]))
    return (w / norm if norm > 0 else w), accuracy


def from_latents(z: torch.Tensor, labels: np.ndarray | torch.Tensor, name: str = "attribute",
                 method: str = "mean", seed: int = 0) -> dict[str, Attribute]:
    """Directions from latents ``z`` (N, *latent) and their ``labels`` (see the module's
    notes); one :class:`Attribute` per attribute name, or an XaeError for an empty group."""
    if method not in METHODS:
        raise XaeError(f"unknown method '{method}'; use one of {', '.join(METHODS)}")
    if len(labels) != len(z):
        raise XaeError(f"attribute '{name}': {len(labels)} labels for {len(z)} images; give "
                       f"one label per image")
    flat = z.detach().cpu().double().flatten(1).numpy()
    out = {}
    for attr, (member, about) in groups(labels, name).items():
        sizes = (int((member == 1).sum()), int((member == 0).sum()))
        if min(sizes) == 0:
            raise XaeError(f"attribute '{attr}' has an empty group ({about}: {sizes[0]} and "
                           f"{sizes[1]} images); give labels with images in both groups")
        gap = flat[member == 1].mean(0) - flat[member == 0].mean(0)
        unit, accuracy = _probe(flat, member, seed)
        d = gap if method == "mean" else unit * np.linalg.norm(gap)
        direction = torch.from_numpy(d).float().view(z.shape[1:])
        out[attr] = Attribute(attr, direction, method, sizes, accuracy, about)
    return out


def attributes(model: torch.nn.Module, x: torch.Tensor, labels: np.ndarray | torch.Tensor | dict,
               name: str = "attribute", method: str = "mean", seed: int = 0,
               batch_size: int = 500) -> dict[str, Attribute]:
    """Attribute directions of ``model`` learned from images ``x`` and their ``labels``.

    Parameters
    ----------
    model : Autoencoder
        A model with a continuous code (an XaeError for VQ, FSQ, LFQ, Gumbel codes).
    x : torch.Tensor
        Images of the model's data shape.
    labels : array or tensor (N,), or dict of name -> array
        bool (two groups), integer (one attribute per class) or float (a measured quantity:
        top third vs bottom third); a dict gives several named attributes.
    name : str
        The attribute's name for bool or float labels.
    method : str
        ``mean`` (difference of group means) or ``probe`` (logistic regression's normal, at
        the mean difference's length).
    seed : int
        Of the probe's held-out split.

    Returns
    -------
    dict[str, Attribute]
        Name -> attribute, e.g. ``{"class=0": …, …, "class=9": …}`` for class labels.
    """
    z = latents(model, x, batch_size)
    named = labels if isinstance(labels, dict) else {name: labels}
    out: dict[str, Attribute] = {}
    for key, value in named.items():
        out.update(from_latents(z, value, key, method, seed))
    return out
