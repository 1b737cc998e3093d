"""The importance-weighted estimate of log p(x), the ELBO beside it, and their gap.

With K samples z_k ~ q(z|x) and weights log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x),
the IW estimate log (1/K) Σ_k w_k (Burda et al. 2016, eq. 8) is a stochastic lower bound on
log p(x) that tightens as K grows; the mean of log w_k estimates the ELBO, and the difference
estimates KL(q(z|x) ‖ p(z|x)) from above (as K → ∞ it becomes exact). The posterior is
encoded once per datum and the K samples are decoded in large batches, chunked over K (and,
for a model whose one draw is large, over the data) so that one pass of the bottleneck and
the decoder makes about ``PASS_BYTES`` of tensors at most, whatever K and the model's size.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from xae.errors import XaeError, positive_int
from xae.evaluate.common import paired_batches, progress_bar, seeded
from xae.model import Autoencoder, inference
from xae.regularizers import NoRegularizer
from xae.tokens import PAD

PASS_BYTES = 512 * 2**20  # the tensors one decoding pass makes, about, at most
MAX_ROWS = 10_000         # decoded draws per pass: large products, little to gain beyond


@dataclass
class LikelihoodReport:
    """Per-datum IW estimate and ELBO (nats) with their test-set summary.

    ``log_likelihood`` and ``elbo`` are (N,) tensors; :meth:`summary` gives means, standard
    errors over the data (std / √N), the gap, and bits per dimension (for sentences the
    perplexity per real token, exp(NLL / mean tokens), instead).
    """

    log_likelihood: torch.Tensor
    elbo: torch.Tensor
    k: int
    dims: int
    tokens: float | None = None  # sentences: the mean real tokens per sentence

    def summary(self) -> dict[str, float]:
        n, to_bits = self.elbo.numel(), 1.0 / (self.dims * math.log(2))

        def se(v: torch.Tensor) -> float:
            return float(v.double().std() / math.sqrt(n)) if n > 1 else float("nan")

        nll = -float(self.log_likelihood.double().mean())
        if self.tokens is not None:  # sentences: perplexity per token, not bits per position
            return {**self._bounds(nll, se), "perplexity_iw": math.exp(nll / self.tokens)}
        return {**self._bounds(nll, se),
                "bits_per_dim_iw": nll * to_bits,
                "bits_per_dim_iw_se": se(self.log_likelihood) * to_bits}

    def _bounds(self, nll: float, se: Callable[[torch.Tensor], float]) -> dict[str, float]:
        n, gap = self.elbo.numel(), self.log_likelihood - self.elbo
        return {
            "k": self.k, "n": n,
            "nll_iw": nll, "nll_iw_se": se(self.log_likelihood),
            "neg_elbo_k": -float(self.elbo.double().mean()), "neg_elbo_k_se": se(self.elbo),
            "gap": float(gap.double().mean()), "gap_se": se(gap)}


def unavailable(model: Autoencoder) -> str | None:
    """Why ``model`` has no importance-weighted estimate of log p(x), or None when it has one.

    A deterministic code z = f(x) is a point mass: there is no q(z|x) to sample from, and its
    KL to a continuous prior is infinite, so there is no ELBO either. A discrete code has an
    exact KL to its code prior (its neg_elbo is a bound) but no Gaussian posterior to sample.
    """
    if not model.likelihood.density:
        return ("its distortion is a reconstruction loss (model.likelihood=reconstruction), "
                "not a normalized density p(x|z), so there is no log p(x), ELBO or "
                "bits_per_dim")
    if model.stochastic:
        return None
    if getattr(model.bottleneck, "empty", False):
        return ("the code is empty (model.bottleneck=none): log p(x) = log p(x | z = 0) "
                "exactly, so neg_elbo (= distortion) is the exact NLL")
    if model.discrete:
        return ("discrete codes: the importance-weighted estimate needs a Gaussian posterior; "
                "neg_elbo (distortion + KL to the code prior) bounds −log p(x)")
    if isinstance(model.regularizer, NoRegularizer):
        what = "a plain autoencoder (a deterministic code, no regularizer)"
    else:
        what = f"a deterministic autoencoder ({type(model.regularizer).__name__} regularizer)"
    return (f"{what} has no likelihood: log p(x) needs a stochastic bottleneck q(z|x), and its "
            "code z = f(x) is a point mass with an infinite KL to any continuous prior, so "
            "there is no ELBO either (no neg_elbo, bits_per_dim or nll_iw)")


def require_likelihood(model: Autoencoder, k: int) -> None:
    """XaeError, saying what to do, unless ``model`` has an IW likelihood and ``k`` ≥ 1."""
    why = unavailable(model)
    if why is not None:
        use = "its neg_elbo" if model.discrete else "distortion and the image metrics"
        raise XaeError(f"{why}. Train a VAE preset (e.g. --preset vae) for a likelihood, or "
                       f"compare by {use} (`xae eval` without --k)")
    positive_int(k, "k (the number of importance samples)")


def _log_weights(model: Autoencoder, xb: torch.Tensor, k: int, chunk: int,
                 bar: tqdm, cb: torch.Tensor | None = None) -> torch.Tensor:
    """log w_k for one batch (with its covariate levels ``cb``), (K, B): the batch encoded
    once, the K draws decoded in chunks by :meth:`Autoencoder.draw` (each chunk's decoded
    samples counted on ``bar``)."""
    h = model.features(xb, cb)
    encoded = model.bottleneck(h)
    out = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        out.append(model.draw(xb, n, h=h, encoded=encoded, c=cb).log_w)
        bar.update(n * xb.shape[0])
    return torch.cat(out)


def bytes_per_draw(model: Autoencoder, x: torch.Tensor, c: torch.Tensor | None = None) -> int:
    """The bytes of the tensors that one posterior draw of one datum (the first row of ``x``)
    makes on its way through the bottleneck, the decoder and the likelihood: the outputs of
    every one of their modules (containers too, so a residual sum counts), measured by forward
    hooks, plus four data-sized temporaries for the likelihood's arithmetic. An upper bound
    on what is alive at once (under no_grad a layer's input is freed once it has run)."""
    total = 4 * math.prod(model.data_shape) * torch.get_default_dtype().itemsize

    def count(module: torch.nn.Module, inputs: object, output: object) -> None:
        nonlocal total
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    parts = (model.bottleneck, model.decoder, model.likelihood)
    hooks = [m.register_forward_hook(count) for part in parts for m in part.modules()]
    try:
        model.draw(x[:1], 1, c=None if c is None else c[:1])
    finally:
        for h in hooks:
            h.remove()
    return total


def pass_sizes(model: Autoencoder, x: torch.Tensor, k: int, batch_size: int,
               chunk: int | None, pass_bytes: int,
               c: torch.Tensor | None = None) -> tuple[int, int]:
    """(data per encoder pass, draws per datum per decoder pass): ``chunk`` when given, else
    as many draws as keep a pass within ``pass_bytes`` (and ``MAX_ROWS`` rows); the data
    batch shrinks below ``batch_size`` only when one draw per datum would not fit."""
    if chunk is not None:
        return batch_size, positive_int(chunk, "chunk")
    positive_int(pass_bytes, "pass_bytes")
    with seeded(0, next(model.parameters()).device):  # the caller's random state untouched
        rows = max(1, min(MAX_ROWS, pass_bytes // bytes_per_draw(model, x, c)))
    batch = min(batch_size, rows, x.shape[0])
    return batch, max(1, min(k, rows // batch))


def likelihood_report(model: Autoencoder, x: torch.Tensor, k: int = 1000, *,
                      batch_size: int = 100, chunk: int | None = None,
                      seed: int | None = 0, progress: bool = False,
                      pass_bytes: int = PASS_BYTES,
                      c: torch.Tensor | None = None) -> LikelihoodReport:
    """IW estimate of log p(x) and the K-sample ELBO for every row of ``x``.

    Parameters
    ----------
    model : a model with a stochastic bottleneck and a proper likelihood.
    x : data (N, *data_shape) on the model's device.
    k : importance samples per datum.
    batch_size : data per encoder pass, at most (fewer only when one draw for each of them
        would make more than ``pass_bytes``).
    chunk : draws per datum per decoder pass; by default as many as keep the tensors of one
        pass within ``pass_bytes`` (measured on one draw by :func:`bytes_per_draw`) and the
        pass within ``MAX_ROWS`` decoded rows: large products, bounded memory for any model.
    seed : makes the estimate deterministic (the caller's random state is left untouched);
        None draws from the caller's state.
    progress : show a bar on stderr counting the N·K decoded samples, with rate and ETA.
    c : each row's covariate level, for a model that has a covariate.
    """
    require_likelihood(model, k)
    positive_int(batch_size, "batch_size")
    ll, elbo = [], []
    with inference(model) as device:
        batch_size, chunk = pass_sizes(model, x, k, batch_size, chunk, pass_bytes, c)
        with seeded(seed, device), \
                progress_bar(x.shape[0] * k, f"log p(x), K={k}", progress, "sample") as bar:
            for xb, cb in paired_batches(x, c, batch_size):
                logw = _log_weights(model, xb, k, chunk, bar, cb)
                ll.append(torch.logsumexp(logw, 0) - math.log(k))
                elbo.append(logw.mean(0))
    tokens = (float((x != PAD).sum()) / len(x)
              if getattr(model.likelihood, "needs_vocab", False) else None)
    return LikelihoodReport(torch.cat(ll), torch.cat(elbo), k, math.prod(model.data_shape),
                            tokens)


def log_likelihood(model: Autoencoder, x: torch.Tensor, k: int = 1000, batch_size: int = 100,
                   chunk: int | None = None, seed: int | None = 0) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) per sample, (N,), with K posterior samples.

    See :func:`likelihood_report` for the parameters and the ELBO and gap beside it.
    """
    return likelihood_report(model, x, k, batch_size=batch_size, chunk=chunk,
                             seed=seed).log_likelihood
