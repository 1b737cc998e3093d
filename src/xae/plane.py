"""The plane a set of latents is drawn on: the latents themselves for D ≤ 2, else the plane
through their mean spanned by their first two principal components (the SVD of the centred
latents). The latent map of the figures (:func:`xae.viz.project_2d`) and the explorer's map
(:mod:`xae.explore.runs`) both use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Plane:
    """z = mean + u·basis[0] + v·basis[1]; ``pca`` says whether it is a principal plane,
    ``aligned`` whether its axes were turned to match another map (:meth:`turned`)."""

    mean: np.ndarray  # (D,)
    basis: np.ndarray  # (2, D)
    pca: bool
    explained: list[float] = field(default_factory=list)  # variance fraction of each axis
    aligned: bool = False

    def project(self, z: np.ndarray) -> np.ndarray:
        """The plane's coordinates (N, 2) of latents ``z`` (N, D)."""
        return (z - self.mean) @ self.basis.T

    def turned(self, rotation: np.ndarray, shift: np.ndarray) -> Plane:
        """The same plane with coordinates ``(u, v) @ rotation.T + shift``: the point it puts at
        ``c @ rotation.T + shift`` is the latent this one puts at ``c``.

        Parameters
        ----------
        rotation : np.ndarray
            An orthogonal (2, 2) matrix (a rotation or a reflection).
        shift : np.ndarray
            (2,); its second entry must be 0 when the plane's second axis is empty (D = 1).
        """
        basis = rotation @ self.basis
        return Plane(self.mean - basis.T @ shift, basis, self.pca, list(self.explained),
                     aligned=True)

    def to_json(self) -> dict[str, Any]:
        return {"pca": self.pca, "mean": self.mean.tolist(), "basis": self.basis.tolist(),
                "explained": self.explained, "aligned": self.aligned}


def plane_of(z: np.ndarray) -> Plane:
    """The identity plane for D ≤ 2, else the first two principal components of ``z`` (N, D).

    Parameters
    ----------
    z : np.ndarray
        Latents (N, D); the plane is computed in their dtype.

    Returns
    -------
    Plane
        For D ≥ 3 the plane through the mean of ``z`` along its two top right singular
        vectors, with the share of the variance along each (0 when ``z`` has none).
    """
    d = z.shape[1]
    if d <= 2:
        basis = np.zeros((2, d))
        basis[range(d), range(d)] = 1.0
        return Plane(np.zeros(d), basis, pca=False)
    mean = z.mean(0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    var = s**2
    explained = (var[:2] / var.sum()).tolist() if var.sum() > 0 else [0.0, 0.0]
    return Plane(mean, vt[:2].copy(), pca=True, explained=explained)
