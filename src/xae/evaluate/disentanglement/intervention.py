"""The two scores that hold one factor fixed over a batch of fresh images and ask a
classifier which one it was: the BetaVAE score (Higgins et al. 2017) and the FactorVAE score
(Kim & Mnih 2018), as disentanglement_lib defines them (``beta_vae.py``, ``factor_vae.py``;
defaults of its ``unsupervised_study_v1`` configs).
"""
from __future__ import annotations

import numpy as np

from xae.data.factors import FactorSource
from xae.errors import XaeError
from xae.evaluate.disentanglement.sampling import Representation, codes_of, need

PRUNE_THRESHOLD = 0.05  # disentanglement_lib's prune_dims.threshold, on the global std


def _fixed_factor_batches(source: FactorSource, n: int, batch_size: int,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` batches of factors ``(n, batch_size, F)`` drawn uniformly, each with a random
    factor (returned, ``(n,)``) left free for the caller to fix."""
    fixed = rng.integers(len(source.sizes), size=n)
    factors = np.asarray(source.sample_factors(n * batch_size, rng), dtype=np.int64)
    return factors.reshape(n, batch_size, -1), fixed


def _batch_codes(source: FactorSource, represent: Representation,
                 factors: np.ndarray) -> np.ndarray:
    """The codes ``(n, batch, d)`` of factor batches ``(n, batch, F)``."""
    n, b, f = factors.shape
    return codes_of(source, represent, factors.reshape(n * b, f)).reshape(n, b, -1)


def _beta_vae_points(source: FactorSource, represent: Representation, n: int,
                     batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training points: the mean |z1 − z2| over a batch of pairs that share one factor
    (the label) and draw every other one independently."""
    first, fixed = _fixed_factor_batches(source, n, batch_size, rng)
    second, _ = _fixed_factor_batches(source, n, batch_size, rng)
    rows = np.arange(n)
    second[rows, :, fixed] = first[rows, :, fixed]
    diff = np.abs(_batch_codes(source, represent, first) - _batch_codes(source, represent, second))
    return diff.mean(axis=1), fixed


def beta_vae_score(source: FactorSource, represent: Representation, rng: np.random.Generator,
                   *, batch_size: int = 64, num_train: int = 10_000,
                   num_eval: int = 5_000) -> dict[str, float]:
    """Accuracy of a logistic regression (scikit-learn's defaults) that names the fixed factor
    from the mean absolute code difference of ``batch_size`` pairs: ``train_accuracy`` on its
    ``num_train`` points, ``eval_accuracy`` on ``num_eval`` fresh ones."""
    from sklearn.linear_model import LogisticRegression

    need(batch_size, 1, "the BetaVAE score's batch size")
    need(num_train, 2, "the BetaVAE score's training points")
    need(num_eval, 1, "the BetaVAE score's evaluation points")
    x, y = _beta_vae_points(source, represent, num_train, batch_size, rng)
    if len(np.unique(y)) < 2:
        raise XaeError(f"the {num_train} training points of the BetaVAE score all fix the same "
                       f"factor; a classifier needs 2 or more: raise the training points")
    model = LogisticRegression(random_state=int(rng.integers(2**31)))
    model.fit(x, y)
    x_eval, y_eval = _beta_vae_points(source, represent, num_eval, batch_size, rng)
    return {"train_accuracy": float(model.score(x, y)),
            "eval_accuracy": float(model.score(x_eval, y_eval))}


def _factor_vae_votes(source: FactorSource, represent: Representation, n: int,
                      batch_size: int, rng: np.random.Generator, scale: np.ndarray,
                      active: np.ndarray) -> np.ndarray:
    """Votes ``(F, d)``: for each of ``n`` batches with one factor fixed (at its value in the
    batch's first point), the active dimension of least variance relative to ``scale``."""
    factors, fixed = _fixed_factor_batches(source, n, batch_size, rng)
    rows = np.arange(n)
    factors[rows, :, fixed] = factors[rows, :1, fixed]
    local = _batch_codes(source, represent, factors).var(axis=1, ddof=1)
    dims = np.flatnonzero(active)[np.argmin(local[:, active] / scale[active], axis=1)]
    votes = np.zeros((len(source.sizes), len(scale)), dtype=np.int64)
    np.add.at(votes, (fixed, dims), 1)
    return votes


def factor_vae_score(source: FactorSource, represent: Representation, rng: np.random.Generator,
                     *, batch_size: int = 64, num_train: int = 10_000, num_eval: int = 5_000,
                     num_variance_estimate: int = 10_000,
                     prune_threshold: float = PRUNE_THRESHOLD) -> dict[str, float]:
    """Accuracy of the majority-vote classifier from the dimension of least normalised
    variance to the fixed factor. Dimensions whose global standard deviation (over
    ``num_variance_estimate`` points) is below ``prune_threshold`` count as collapsed and
    never vote; with none active both accuracies are 0, as in disentanglement_lib."""
    need(batch_size, 2, "the FactorVAE score's batch size")
    need(num_train, 1, "the FactorVAE score's training points")
    need(num_eval, 1, "the FactorVAE score's evaluation points")
    need(num_variance_estimate, 2, "the FactorVAE score's variance-estimate points")
    factors = np.asarray(source.sample_factors(num_variance_estimate, rng), dtype=np.int64)
    scale = codes_of(source, represent, factors).var(axis=0, ddof=1)
    active = np.sqrt(scale) >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_dims": 0}
    train = _factor_vae_votes(source, represent, num_train, batch_size, rng, scale, active)
    classifier = train.argmax(axis=0)  # dimension → factor
    columns = np.arange(train.shape[1])
    evals = _factor_vae_votes(source, represent, num_eval, batch_size, rng, scale, active)
    return {"train_accuracy": float(train[classifier, columns].sum() / train.sum()),
            "eval_accuracy": float(evals[classifier, columns].sum() / evals.sum()),
            "active_dims": int(active.sum())}
