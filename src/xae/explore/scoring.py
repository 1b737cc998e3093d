"""How the explorer scores an input the user drew or dropped: its −ELBO and its anomaly score
(``xae score``'s ``nll``, or ``recon`` for a run without a likelihood bound), the latter as a
percentile of the same score over the map's test points.

The page encodes and reconstructs the input itself (``encoder.onnx``); these figures need the
torch model, so the live server computes them (``POST /api/score``) with
:func:`xae.anomaly.scores.score_samples` at ``K`` importance samples and a fixed seed. The test
points' scores are computed at the first request and kept.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xae.anomaly.scores import column, score_samples
from xae.evaluate.likelihood import unavailable

K = 20  # importance samples per score, for the input and the test points alike
SEED = 0


class Scorer:
    """Scores for one run: ``model`` and the test points ``test_x`` of its map."""

    def __init__(self, model: Any, test_x: torch.Tensor) -> None:
        self.model, self.test_x = model, test_x
        self.no_bound = unavailable(model)  # why there is no −ELBO, or None
        self.score = "recon" if self.no_bound else "nll"
        self._reference: np.ndarray | None = None

    def _scores(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        names = ["recon"] if self.no_bound else ["elbo", "nll"]
        return score_samples(self.model, x, names, k=K, seed=SEED)

    def reference(self) -> np.ndarray:
        """The anomaly score of every test point, sorted (computed once)."""
        if self._reference is None:
            self._reference = np.sort(self._scores(self.test_x)[column(self.score)])
        return self._reference

    def __call__(self, x: np.ndarray) -> dict[str, Any]:
        """The figures for one input ``x`` (the run's data shape), as the page shows them; not
        thread-safe (the server runs one torch job at a time)."""
        ref = self.reference()
        got = self._scores(torch.from_numpy(x[None]))
        value = float(got[column(self.score)][0])
        return {
            "neg_elbo": None if self.no_bound else float(got[column("elbo")][0]),
            "no_elbo": self.no_bound,
            "score": self.score, "value": value, "k": K,
            # the share of test points that score lower (less anomalous) than this input
            "percentile": float(100 * np.searchsorted(ref, value, side="right") / len(ref)),
            "test_points": int(len(ref)),
        }
