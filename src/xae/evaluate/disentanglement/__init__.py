"""The disentanglement metrics of disentanglement_lib on data with known factors: the BetaVAE
and FactorVAE scores, MIG, DCI and SAP, on a model's posterior means.

Each metric takes a :class:`~xae.data.factors.FactorSource` (the factor grid and a renderer
of its points), a representation (images → codes ``(n, d)``) and a numpy Generator;
:func:`disentanglement_scores` runs all five from one seed (each on its own child stream, so
a score does not depend on which others ran) and :func:`disentanglement_report` does so for a
trained model and its data set (``xae eval RUN --disentanglement``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from xae.data.factors import FactorSource, factor_source
from xae.evaluate.disentanglement.counts import resolve
from xae.evaluate.disentanglement.intervention import beta_vae_score, factor_vae_score
from xae.evaluate.disentanglement.mig import NUM_BINS, mig_of, mig_score
from xae.evaluate.disentanglement.predictors import dci_of, dci_score, sap_score
from xae.evaluate.disentanglement.sampling import (Representation, check_grid,
                                                   model_representation)

__all__ = ["beta_vae_score", "factor_vae_score", "mig_score", "mig_of", "dci_score", "dci_of",
           "sap_score", "disentanglement_scores", "disentanglement_report",
           "model_representation", "PREFIX"]
PREFIX = "disentanglement/"


def disentanglement_scores(source: FactorSource, represent: Representation, *, seed: int = 0,
                           batch_size: int = 64, num_train: int = 10_000,
                           num_eval: int = 5_000, num_variance_estimate: int = 10_000,
                           num_bins: int = NUM_BINS,
                           counts: Mapping[str, Sequence[int]] | None = None) -> dict[str, Any]:
    """All five metrics with disentanglement_lib's defaults (``num_train`` training points
    and ``num_eval`` evaluation/test points for each, unless ``counts`` gives a metric its
    own, e.g. ``{"dci": (2000, 1000), "mig": (10000,)}``; ``batch_size`` images per point of
    the BetaVAE and FactorVAE scores). Returns ``metrics`` (flat, ``disentanglement/…``),
    ``normalized_mi`` (the MIG matrix, code dimension × factor), ``factor_names``,
    ``sklearn_version`` and ``settings`` (with each metric's counts)."""
    import sklearn

    check_grid(source)
    n = resolve(num_train, num_eval, counts)
    beta, factor, mig, dci, sap = (np.random.default_rng(s)
                                   for s in np.random.SeedSequence(seed).spawn(5))
    scores = {"beta_vae": beta_vae_score(source, represent, beta, batch_size=batch_size,
                                         num_train=n["beta_vae"][0],
                                         num_eval=n["beta_vae"][1]),
              "factor_vae": factor_vae_score(source, represent, factor, batch_size=batch_size,
                                             num_train=n["factor_vae"][0],
                                             num_eval=n["factor_vae"][1],
                                             num_variance_estimate=num_variance_estimate),
              "mig": mig_score(source, represent, mig, num_train=n["mig"][0], num_bins=num_bins),
              "dci": dci_score(source, represent, dci, num_train=n["dci"][0],
                               num_test=n["dci"][1]),
              "sap": sap_score(source, represent, sap, num_train=n["sap"][0],
                               num_test=n["sap"][1])}
    metrics = {
        "beta_vae": scores["beta_vae"]["eval_accuracy"],
        "beta_vae_train": scores["beta_vae"]["train_accuracy"],
        "factor_vae": scores["factor_vae"]["eval_accuracy"],
        "factor_vae_train": scores["factor_vae"]["train_accuracy"],
        "factor_vae_active_dims": scores["factor_vae"]["active_dims"],
        "mig": scores["mig"]["mig"],
        **{f"dci_{k}": v for k, v in scores["dci"].items()},
        "sap": scores["sap"]["sap"]}
    return {"metrics": {PREFIX + k: v for k, v in metrics.items()},
            "normalized_mi": scores["mig"]["normalized_mi"],
            "factor_names": list(source.names), "sklearn_version": sklearn.__version__,
            "settings": {"seed": seed, "batch_size": batch_size,
                         "counts": {k: list(v) for k, v in n.items()},
                         "num_variance_estimate": num_variance_estimate,
                         "num_bins": num_bins, "sap_factors": "discrete (linear SVM)"}}


def disentanglement_report(model: Any, ds: Any, *, seed: int = 0,
                           **settings: Any) -> dict[str, Any]:
    """:func:`disentanglement_scores` of ``model``'s posterior means on the factor grid of the
    data set ``ds`` (an XaeError when it has no factors); ``settings`` (counts) as there."""
    source = factor_source(ds.info, "the disentanglement metrics")
    return disentanglement_scores(source, model_representation(model), seed=seed, **settings)


def add_to_report(metrics: dict[str, float], model: Any, ds: Any, seed: int,
                  counts: Mapping[str, Sequence[int]] | None = None,
                  figure: Path | None = None) -> dict[str, Any]:
    """``xae eval --disentanglement``: the scores (disentanglement_lib's counts unless
    ``counts`` lowers some) added to ``metrics``; with ``figure``, the factor × latent MI heat
    map drawn there. Returns what ``eval.json`` keeps besides (``sklearn_version`` and the
    ``disentanglement`` details: the MI matrix, factor names, settings, the figure's path)."""
    details = disentanglement_report(model, ds, seed=seed, counts=counts)
    metrics.update(details.pop("metrics"))
    if figure is not None:
        from xae.viz_factors import mi_heatmap

        details["figure"] = str(mi_heatmap(details["normalized_mi"], details["factor_names"],
                                           figure)[0])
    return {"sklearn_version": details.pop("sklearn_version"), "disentanglement": details}
