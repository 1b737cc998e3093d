"""Everything `xae eval` measures for one run, in one place: objective terms, latent
diagnostics, holes, the importance-weighted likelihood, reconstruction and sample quality."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from xae.data import Dataset, covariates
from xae.evaluate import fid
from xae.evaluate.diagnostics import evaluate
from xae.evaluate.fid_nets import feature_net
from xae.evaluate.images import reconstruction_quality
from xae.evaluate.holes import mmd_note
from xae.evaluate.likelihood import (likelihood_report, require_likelihood,
                                      unavailable)
from xae.model import Autoencoder

log = logging.getLogger(__name__)
DEFAULT_K = 100  # importance samples when the caller does not choose (seconds on MNIST)

#: The test metrics of ``metrics.json``/``eval.json`` where more is better; every other one
#: (loss, distortion, rate, neg_elbo, bits_per_dim, nll_iw, gap, mse, fid_lenet, holes_*,
#: sample_entropy, …) is a loss, bound or distance, where less is better.
HIGHER_IS_BETTER = frozenset({
    "active_units", "ess",  # diagnostics: informative latents; effective sample size
    "code_usage", "code_perplexity",  # codes: how much of the codebook is used
    "psnr", "ssim",  # images: reconstruction quality
    "recon_accuracy", "real_accuracy", "sample_marginal_entropy",  # fid: classifier-based
    "sample_marginal_entropy_fitted_prior",  # the same, for the fitted diffusion prior
    *(f"disentanglement/{m}" for m in (  # xae.evaluate.disentanglement: scores and accuracies
        "beta_vae", "beta_vae_train", "factor_vae", "factor_vae_train", "mig", "sap",
        "dci_disentanglement", "dci_completeness", "dci_informativeness_train",
        "dci_informativeness_test")),
})
#: The sample-quality metrics that ``xae eval`` also reports for a fitted diffusion prior,
#: with the suffix ``_fitted_prior``.
FITTED_METRICS = ("fid_lenet", "sample_entropy", "sample_marginal_entropy")


def direction(metric: str) -> str:
    """``maximize`` for a metric of :data:`HIGHER_IS_BETTER`, else ``minimize``: how a sweep
    ranks runs by ``metric``."""
    return "maximize" if metric in HIGHER_IS_BETTER else "minimize"


@dataclass
class Report:
    """Test-set metrics (flat, numbers only), the per-dimension rate, warnings, ``skipped``:
    what was not measured and why, and :attr:`notes` on values that need explaining."""

    metrics: dict[str, float] = field(default_factory=dict)
    rate_per_dim: list[float] | None = None
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    term_notes: dict[str, str] = field(default_factory=dict)  # how each term was computed

    @property
    def notes(self) -> list[str]:
        """How the terms were computed (e.g. ``rate: KL, analytic``) and explanations of
        surprising values, e.g. a negative ``holes_mmd``."""
        out = [f"{name}: {how}" for name, how in self.term_notes.items()]
        note = mmd_note(self.metrics["holes_mmd"]) if "holes_mmd" in self.metrics else None
        return out + ([note] if note else [])

    def to_json(self) -> dict[str, Any]:
        return {"test": self.metrics, "test_rate_per_dim": self.rate_per_dim,
                "warnings": self.warnings, "skipped": self.skipped, "notes": self.notes}


def full_report(model: Autoencoder, data: Dataset, *, beta: float = 1.0, k: int | None = None,
                seed: int = 0, images: bool = True, fid_samples: int = 10_000,
                progress: bool = False) -> Report:
    """Evaluate ``model`` on ``data``'s test split (on the model's device).

    ``k`` importance samples for log p(x) (None: ``DEFAULT_K`` when the model has a posterior,
    else skipped with the reason; an explicit ``k`` > 0 on a model without one, such as the
    plain autoencoder, is an error, raised before anything is computed; 0 skips it).
    ``images`` adds MSE/PSNR/SSIM and, for 1×28×28 data with labels, FID-LeNet on
    ``fid_samples`` prior samples: of the model's own prior and, when ``xae prior fit``
    fitted a diffusion prior to the run, of that one too (``fid_lenet_fitted_prior``, …;
    the notes name the feature net, the data set's own (see :mod:`xae.evaluate.fid_nets`),
    say it is not Inception FID, and say which prior each used). Deterministic given ``seed``. ``progress`` shows a bar
    with rate and ETA on stderr for each part (off by default: the CLI turns it on).
    """
    why = unavailable(model)
    if k:
        require_likelihood(model, k)
    device = next(model.parameters()).device
    x = data.test_x.to(device)
    c = covariates.for_model(model, data, "test")
    base = evaluate(model, x, beta=beta, seed=seed, progress=progress, c=c)
    rep = Report(dict(base.metrics), base.rate_per_dim, list(base.warnings),
                 term_notes=dict(base.notes))
    if k is None:
        k = DEFAULT_K if why is None else 0
        if why is not None:
            rep.skipped["likelihood"] = why
    if k:
        ll = likelihood_report(model, x, k, seed=seed, progress=progress, c=c)
        rep.metrics.update(ll.summary())
    if images and "vocab" in data.info:
        rep.skipped["images"] = "sentences: MSE, PSNR, SSIM and FID are image metrics"
    elif images and not model.likelihood.mean_in_data_space:
        rep.skipped["images"] = ("counts: the decoder's mean is the normalized expression "
                                 "(ρ·10⁴), not the cell's counts; MSE, PSNR, SSIM and FID "
                                 "are image metrics")
    elif images:
        rep.metrics.update(reconstruction_quality(model, x, progress=progress))
        if not fid.applicable(model.data_shape):
            rep.skipped["fid_lenet"] = (f"FID-LeNet needs 1×28×28 images; the data shape is "
                                        f"{tuple(model.data_shape)}")
        elif data.test_y is None:
            rep.skipped["fid_lenet"] = "the test set has no labels"
        else:
            _sample_quality(rep, model, x, data.test_y, fid_samples, seed, progress)
            rep.metrics["rfid_lenet"] = fid.recon_fid(model, x)
            rep.term_notes["rfid_lenet"] = "reconstructions against the test images; " \
                + feature_net(model.config.data.name).note
    return rep


def _sample_quality(rep: Report, model: Autoencoder, x: Any, y: Any, n: int, seed: int,
                    progress: bool) -> None:
    """FID-LeNet of the own prior's samples and, if there is one, of the fitted prior's."""
    from xae.diffprior.choice import describe

    rep.metrics.update(fid.sample_quality(model, x, y, n=n, seed=seed, progress=progress))
    net = feature_net(model.config.data.name).note
    rep.term_notes["fid_lenet"] = f"{net}; samples of {describe(model, 'own')}"
    if model.prior.fitted is None:
        return
    q = fid.sample_quality(model, x, y, n=n, seed=seed, progress=progress, source="fitted")
    rep.metrics.update({f"{k}_fitted_prior": q[k] for k in FITTED_METRICS})
    rep.term_notes["fid_lenet_fitted_prior"] = f"{net}; samples of {describe(model, 'fitted')}"
