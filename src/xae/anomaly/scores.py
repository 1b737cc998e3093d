"""Per-sample anomaly scores of a trained model, every one "higher = more anomalous":

- ``nll``: −log p(x), the importance-weighted estimate with K posterior draws (nats);
- ``elbo``: −ELBO, the mean of −log w_k over the same K draws (nats);
- ``recon``: −log p(x | z = the posterior's mode), the reconstruction term alone (nats; for a
  Gaussian likelihood of fixed σ, ‖x − x̂‖²/2σ² plus a constant);
- ``sqerr``: ‖x − x̂‖², the squared error of the reconstruction x̂ (the mean of p(x|z) at the
  posterior's mode), summed over the values, whatever the likelihood;
- ``llr``: −[log p(x) − log p_background(x)], the likelihood ratio of Ren et al. (2019)
  against a background model trained on perturbed inputs (:mod:`xae.anomaly.background`);
- ``complexity``: −log₂ p(x) − L(x), the input-complexity correction of Serrà et al. (2020),
  L(x) the bits a lossless compressor spends on x at 8 bits (:mod:`xae.anomaly.complexity`).

``nll``, ``elbo``, ``llr`` and ``complexity`` share one importance-weighted pass
(:func:`xae.evaluate.likelihood.likelihood_report`).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from xae.anomaly.complexity import check_compressor, code_length_bits
from xae.errors import XaeError, positive_int
from xae.evaluate.common import batches
from xae.evaluate.likelihood import likelihood_report, require_likelihood
from xae.likelihoods.discretized import check_on_grid
from xae.model import Autoencoder, inference

SCORES: tuple[str, ...] = ("nll", "elbo", "recon", "sqerr", "llr", "complexity")
LIKELIHOOD_SCORES = {"nll", "elbo", "llr", "complexity"}
UNITS = {"nll": "nats", "elbo": "nats", "recon": "nats", "sqerr": "sum", "llr": "nats",
         "complexity": "bits"}
DEFAULT_K = 100


def column(score: str, compressor: str = "png") -> str:
    """The CSV column of a score: its name and unit (``complexity_png_bits``)."""
    name = {"elbo": "neg_elbo", "complexity": f"complexity_{compressor}"}.get(score, score)
    return f"{name}_{UNITS[score]}"


def check_request(model: Autoencoder, scores: list[str], k: int, background: Autoencoder | None,
                  compressor: str) -> None:
    """Every check the scores need, before any work: known names, a likelihood with K ≥ 1
    where one is asked for, a background of the same data shape for ``llr`` (and none
    otherwise), a compressor that can code the data for ``complexity``."""
    unknown = [s for s in scores if s not in SCORES]
    if unknown or not scores:
        raise XaeError(f"unknown score {', '.join(unknown) or '(none given)'}; use one or more "
                       f"of {', '.join(SCORES)}")
    if LIKELIHOOD_SCORES & set(scores):
        require_likelihood(model, positive_int(k, "--k"))
    if "llr" in scores:
        if background is None:
            raise XaeError("the llr score needs a background model: --background BGRUN, or "
                           "--fit-background to train one")
        if tuple(background.data_shape) != tuple(model.data_shape):
            raise XaeError(f"the background model is for data of shape "
                           f"{tuple(background.data_shape)}, the run's is "
                           f"{tuple(model.data_shape)}; train the background from this run")
        require_likelihood(background, k)
    elif background is not None:
        raise XaeError("a background model is only used by the llr score; add --score llr or "
                       "drop the background")
    if "complexity" in scores:
        check_compressor(compressor, tuple(model.data_shape))


def reconstruction_errors(model: Autoencoder, x: torch.Tensor, batch_size: int = 100
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """−log p(x | z = mode of q(z|x)) and ‖x − x̂‖² per sample, (N,) each."""
    nll, sq = [], []
    with inference(model):
        for xb in batches(x, batch_size):
            theta = model.decode_params(model.latent_mean(xb))
            nll.append(-model.likelihood.log_prob(xb, theta))
            sq.append((xb - model.likelihood.mean(theta)).pow(2).flatten(1).sum(1))
    return torch.cat(nll), torch.cat(sq)


def score_samples(model: Autoencoder, x: torch.Tensor, scores: list[str] | tuple[str, ...], *,
                  k: int = DEFAULT_K, background: Autoencoder | None = None,
                  compressor: str = "png", seed: int = 0, batch_size: int = 100,
                  progress: bool = False) -> dict[str, np.ndarray]:
    """Each of ``scores`` for every row of ``x`` (N, *data_shape), keyed by :func:`column`,
    as float64 arrays. ``k``: importance samples for the likelihood scores; ``background``:
    the llr's background model; ``compressor``: png, zlib or lzma for ``complexity``."""
    scores = list(dict.fromkeys(scores))
    check_request(model, scores, k, background, compressor)
    if tuple(x.shape[1:]) != tuple(model.data_shape):
        raise XaeError(f"the data has samples of shape {tuple(x.shape[1:])} but the run was "
                       f"trained on {tuple(model.data_shape)}; score data of the run's shape")
    if model.config.model.likelihood == "discretized":
        check_on_grid(x, "the data to score")
    x = x.to(next(model.parameters()).device)
    out: dict[str, torch.Tensor | np.ndarray] = {}
    if LIKELIHOOD_SCORES & set(scores):
        rep = likelihood_report(model, x, k, batch_size=batch_size, seed=seed, progress=progress)
        nll = -rep.log_likelihood
        out[column("nll")], out[column("elbo")] = nll, -rep.elbo
        if "llr" in scores:
            bg = likelihood_report(background, x.to(next(background.parameters()).device), k,
                                   batch_size=batch_size, seed=seed, progress=progress)
            out[column("llr")] = nll - (-bg.log_likelihood).to(nll.device)
        if "complexity" in scores:
            out[column("complexity", compressor)] = (
                nll.double().cpu().numpy() / math.log(2) - code_length_bits(x, compressor))
    if {"recon", "sqerr"} & set(scores):
        out[column("recon")], out[column("sqerr")] = reconstruction_errors(model, x, batch_size)
    wanted = [column(s, compressor) for s in scores]
    return {c: np.asarray(torch.as_tensor(out[c]).double().cpu()) for c in wanted}
