"""How well a score separates anomalies (label 1) from normal data (label 0), higher scores
meaning "more anomalous": the area under the ROC curve, average precision (the area under the
precision–recall curve as a step function) and the false-positive rate at 95% true positives.

Tied scores form one threshold (one point of each curve), so AUROC equals the Mann–Whitney
probability P(s₁ > s₀) + ½ P(s₁ = s₀) for an anomalous s₁ and a normal s₀. The curves are
scikit-learn's (``sklearn.metrics``); this module checks the inputs and reads FPR95 off them.
"""
from __future__ import annotations

import numpy as np

from xae.errors import XaeError

TPR_LEVEL = 0.95


def check_labels(labels: np.ndarray, n: int, what: str = "the labels") -> np.ndarray:
    """``labels`` as a bool array of length ``n``, or an XaeError saying what is wrong."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise XaeError(f"{what} have shape {y.shape} but there are {n} samples; give one "
                       f"label per sample, 1 for anomalous and 0 for normal")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise XaeError(f"{what} must be 0 (normal) or 1 (anomalous); got values "
                       f"{np.unique(y)[:5].tolist()}")
    return y.astype(bool)


def _checked(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scores as float64 and the labels as bool, with both classes present."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or not np.isfinite(s).all():
        raise XaeError("the scores must be one finite number per sample")
    y = check_labels(labels, s.shape[0])
    if y.all() or not y.any():
        raise XaeError("the labels must hold both normal (0) and anomalous (1) samples for "
                       "AUROC, AUPRC and FPR95")
    return s, y


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The area under the ROC curve (trapezoids: ties count a half), scikit-learn's."""
    from sklearn.metrics import roc_auc_score

    s, y = _checked(scores, labels)
    return float(roc_auc_score(y, s))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Σₙ (Rₙ − Rₙ₋₁) Pₙ over the thresholds: AUPRC as a step function (no interpolation),
    scikit-learn's."""
    from sklearn.metrics import average_precision_score

    s, y = _checked(scores, labels)
    return float(average_precision_score(y, s))


def fpr_at_tpr(scores: np.ndarray, labels: np.ndarray, level: float = TPR_LEVEL) -> float:
    """The lowest false-positive rate of a threshold that catches at least ``level`` of the
    anomalies (on scikit-learn's ROC curve, every threshold kept)."""
    from sklearn.metrics import roc_curve

    s, y = _checked(scores, labels)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return float(fpr[tpr >= level - 1e-12].min())


def separation(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUROC, AUPRC and FPR at 95% TPR of one score."""
    return {"auroc": auroc(scores, labels), "auprc": average_precision(scores, labels),
            "fpr95": fpr_at_tpr(scores, labels)}
