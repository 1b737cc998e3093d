"""Anomaly detection with a trained run (``xae score``): per-sample scores (−log p(x), −ELBO,
reconstruction, the likelihood ratio against a background model, the input-complexity
correction), the metrics of how well they separate anomalies, and the background model's
training."""
from __future__ import annotations

from xae.anomaly.background import fit_background, perturb
from xae.anomaly.complexity import code_length_bits
from xae.anomaly.metrics import auroc, average_precision, fpr_at_tpr, separation
from xae.anomaly.scores import SCORES, score_samples

__all__ = ["SCORES", "auroc", "average_precision", "code_length_bits", "fit_background",
           "fpr_at_tpr", "perturb", "score_samples", "separation"]
