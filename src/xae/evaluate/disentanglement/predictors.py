"""The two scores built on classifiers from codes to factors, as disentanglement_lib defines
them: DCI (Eastwood & Williams 2018; ``dci.py``) from the feature importances of gradient-
boosted trees, and SAP (Kumar et al. 2018; ``sap_score.py``) from one linear SVM per code
dimension and factor."""
from __future__ import annotations

import numpy as np

from xae.data.factors import FactorSource
from xae.errors import XaeError
from xae.evaluate.disentanglement.sampling import (Representation, factor_codes, labelled_sample,
                                                   need, need_two_dims)

EPS = 1e-11  # added to the importances before their entropies, as disentanglement_lib does


def _normalized_entropy(weights: np.ndarray) -> np.ndarray:
    """The entropy of each row of ``weights`` (as a distribution), in base = row length."""
    p = weights + EPS
    p = p / p.sum(axis=1, keepdims=True)
    return -(p * np.log(p)).sum(axis=1) / np.log(weights.shape[1])


def _weighted(scores: np.ndarray, weights: np.ndarray) -> float:
    """Σ scores·weights/Σ weights; uniform weights when every weight is 0."""
    if weights.sum() == 0:
        weights = np.ones_like(weights)
    return float(np.sum(scores * weights / weights.sum()))


def dci_of(importance: np.ndarray) -> dict[str, float]:
    """Disentanglement and completeness of an importance matrix ``(d, F)``: 1 − the
    normalised entropy of each code's importances over factors (of each factor's over codes),
    weighted by the code's (factor's) share of the total importance."""
    return {"disentanglement": _weighted(1 - _normalized_entropy(importance),
                                        importance.sum(axis=1)),
            "completeness": _weighted(1 - _normalized_entropy(importance.T),
                                      importance.sum(axis=0))}


def train_test(source: FactorSource, represent: Representation, rng: np.random.Generator,
               num_train: int, num_test: int, metric: str) -> tuple[np.ndarray, ...]:
    """Codes and factors of ``num_train`` training points (at least one per value of the
    largest factor, and every factor taking two values or more) and ``num_test`` test ones."""
    need(num_train, max(source.sizes), f"{metric}'s training points (at least one per value "
         "of the largest factor)")
    need(num_test, 1, f"{metric}'s test points")
    z, y = labelled_sample(source, represent, num_train, rng, f"{metric}'s training points")
    need_two_dims(z, metric)
    return (z, y, *factor_codes(source, represent, num_test, rng))


def dci_score(source: FactorSource, represent: Representation, rng: np.random.Generator,
              *, num_train: int = 10_000, num_test: int = 5_000) -> dict[str, float]:
    """DCI: one scikit-learn GradientBoostingClassifier (its defaults) per factor on
    ``num_train`` codes; its |feature importances| make the importance matrix, its accuracy
    on them and on ``num_test`` fresh codes the informativeness (train and test)."""
    from sklearn.ensemble import GradientBoostingClassifier

    if len(source.sizes) < 2:
        raise XaeError("DCI's disentanglement is an entropy over factors and needs 2 factors "
                       f"or more; this grid has {len(source.sizes)}")
    z, y, z_test, y_test = train_test(source, represent, rng, num_train, num_test, "DCI")
    importance = np.zeros((z.shape[1], y.shape[1]))
    train, test = [], []
    for j in range(y.shape[1]):
        trees = GradientBoostingClassifier(random_state=int(rng.integers(2**31)))
        trees.fit(z, y[:, j])
        importance[:, j] = np.abs(trees.feature_importances_)
        train.append(np.mean(trees.predict(z) == y[:, j]))
        test.append(np.mean(trees.predict(z_test) == y_test[:, j]))
    return {**dci_of(importance), "informativeness_train": float(np.mean(train)),
            "informativeness_test": float(np.mean(test))}


def sap_matrix(z: np.ndarray, y: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
               continuous: bool = False) -> np.ndarray:
    """Scores ``(d, F)``: the test accuracy of a linear SVM (C = 0.01, balanced classes) from
    one code dimension to one factor or, for ``continuous`` factors, the squared correlation
    of the two on the training codes (0 for a constant dimension)."""
    from sklearn.svm import LinearSVC

    scores = np.zeros((z.shape[1], y.shape[1]))
    for i in range(z.shape[1]):
        for j in range(y.shape[1]):
            if continuous:
                cov = np.cov(z[:, i], y[:, j], ddof=1)
                scores[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]) if cov[0, 0] > 1e-12 \
                    else 0.0
            else:
                svm = LinearSVC(C=0.01, class_weight="balanced")
                svm.fit(z[:, i:i + 1], y[:, j])
                scores[i, j] = np.mean(svm.predict(z_test[:, i:i + 1]) == y_test[:, j])
    return scores


def sap_score(source: FactorSource, represent: Representation, rng: np.random.Generator,
              *, num_train: int = 10_000, num_test: int = 5_000,
              continuous: bool = False) -> dict[str, float]:
    """SAP: per factor, the score of the best code dimension minus the second best
    (:func:`sap_matrix`), averaged over factors. disentanglement_lib's dSprites setting
    treats the factors as discrete (``continuous_factors=False``): the SVM path."""
    z, y, z_test, y_test = train_test(source, represent, rng, num_train, num_test, "SAP")
    top = np.sort(sap_matrix(z, y, z_test, y_test, continuous), axis=0)
    return {"sap": float(np.mean(top[-1] - top[-2]))}
