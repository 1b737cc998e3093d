"""FID-LeNet: the Fréchet distance between LeNet features of two image sets, for 28x28 data.

The Fréchet Inception Distance (Heusel et al. 2017, eq. 6) fits a Gaussian to a network's
features of real and of generated images and reports the Fréchet (2-Wasserstein) distance
between the two Gaussians (Dowson & Landau 1982):

    d² = ‖μ₁ − μ₂‖² + Tr(C₁) + Tr(C₂) − 2 Tr((C₁^{1/2} C₂ C₁^{1/2})^{1/2}).

Inception weights cannot be fetched here, so the features are those of a small LeNet-style
classifier (LeCun et al. 1998) trained by xae on the data set itself (MNIST or Fashion-MNIST;
see :mod:`xae.evaluate.fid_nets`) and shipped beside this module with its SHA-256. The metric
is called FID-LeNet: its values are NOT comparable to Inception FID numbers from papers, nor
between data sets.
"""
from __future__ import annotations

from typing import Sequence

import torch
from tqdm import tqdm

from xae.errors import XaeError
from xae.evaluate.common import batches, progress_bar, seeded
from xae.evaluate.fid_nets import (FEATURE_DIM, FEATURE_NETS, INPUT_SHAPE, LeNet, feature_net,
                                   load_classifier)
from xae.model import Autoencoder, inference

__all__ = ["FEATURE_DIM", "INPUT_SHAPE", "LeNet", "WEIGHTS_PATH", "WEIGHTS_SHA256", "accuracy",
           "applicable", "features", "fid_lenet", "frechet_distance", "load_classifier",
           "recon_fid", "sample_quality"]

#: The shipped MNIST classifier's weights and their SHA-256 (those of other data sets:
#: :data:`~xae.evaluate.fid_nets.FEATURE_NETS`).
WEIGHTS_PATH = FEATURE_NETS["mnist"].path
WEIGHTS_SHA256 = FEATURE_NETS["mnist"].sha256


def applicable(data_shape: Sequence[int]) -> bool:
    """Whether FID-LeNet and the classifier metrics apply to data of this shape (1, 28, 28)."""
    return tuple(data_shape) == INPUT_SHAPE


def _check_images(x: torch.Tensor, what: str) -> None:
    if not applicable(x.shape[1:]):
        raise XaeError(f"{what} has shape {tuple(x.shape)}, but the FID-LeNet classifier takes "
                       f"(N, 1, 28, 28) MNIST-like images; skip these metrics for other data")
    if not bool(torch.isfinite(x).all()):
        raise XaeError(f"{what} holds NaN or infinite values; check the model or the data")


def _apply(classifier: LeNet, x: torch.Tensor, fn: str, batch_size: int,
           bar: tqdm | None = None) -> torch.Tensor:
    """``classifier.<fn>`` over ``x`` in batches, on the classifier's device, as float64
    (each batch counted on ``bar``).

    Inputs are clamped to [0, 1], the range the classifier was trained on (as an image would
    be displayed), so decoder means slightly out of range are still scored.
    """
    out = []
    with inference(classifier) as device:
        for xb in batches(x, batch_size):
            xb = xb.to(device, torch.float32).clamp(0.0, 1.0)
            out.append(getattr(classifier, fn)(xb).double().cpu())
            if bar is not None:
                bar.update(xb.shape[0])
    return torch.cat(out)


def _hits(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y.cpu()).double().mean())


def accuracy(classifier: LeNet, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 1000) -> float:
    """Fraction of images ``x`` whose predicted class is the label ``y``."""
    return _hits(_apply(classifier, x, "forward", batch_size), y)


def features(x: torch.Tensor, classifier: LeNet | None = None,
             batch_size: int = 1000) -> torch.Tensor:
    """Penultimate-layer LeNet features of images ``x`` (N, 1, 28, 28): (N, 128), float64
    (MNIST's net unless ``classifier`` is given)."""
    _check_images(x, "the images")
    return _apply(classifier or load_classifier(), x, "features", batch_size)


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor,
                     cov2: torch.Tensor) -> float:
    """Squared Fréchet distance between N(μ₁, C₁) and N(μ₂, C₂) (Dowson & Landau 1982).

    Computed in float64. Tr((C₁^{1/2} C₂ C₁^{1/2})^{1/2}) equals Tr((C₁C₂)^{1/2}) and is
    taken from the eigenvalues of the symmetric PSD matrix C₁^{1/2} C₂ C₁^{1/2}, with C₁^{1/2}
    from a symmetric eigendecomposition; eigenvalues below zero (rounding) are set to zero.
    The result is clamped at zero for the same reason.
    """
    mu1, mu2, cov1, cov2 = (t.detach().double().cpu() for t in (mu1, mu2, cov1, cov2))
    d = mu1.shape[-1]
    if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise XaeError(f"frechet_distance needs means of shape (D,) and covariances (D, D); got "
                       f"{tuple(mu1.shape)}, {tuple(cov1.shape)}, {tuple(mu2.shape)}, "
                       f"{tuple(cov2.shape)}")
    evals, evecs = torch.linalg.eigh((cov1 + cov1.T) / 2)
    sqrt1 = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
    middle = sqrt1 @ cov2 @ sqrt1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    d2 = (mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt
    return max(float(d2), 0.0)


def _mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean and unbiased covariance of the rows of ``f`` (N ≥ 2)."""
    if f.shape[0] < 2:
        raise XaeError(f"FID-LeNet needs at least 2 images per set, got {f.shape[0]}")
    return f.mean(0), torch.cov(f.T)


def fid_lenet(x_a: torch.Tensor, x_b: torch.Tensor, classifier: LeNet | None = None,
              batch_size: int = 1000) -> float:
    """FID-LeNet between two sets of (N, 1, 28, 28) images in [0, 1], on the features of
    ``classifier`` (MNIST's net by default; ``load_classifier(data="fashion-mnist")`` for
    Fashion-MNIST).

    Like every FID it is biased upwards for small sets: compare values only at equal set
    sizes (10,000 against the test set is the reference setting).
    """
    classifier = classifier or load_classifier()
    mu_a, cov_a = _mean_cov(features(x_a, classifier, batch_size))
    mu_b, cov_b = _mean_cov(features(x_b, classifier, batch_size))
    return frechet_distance(mu_a, cov_a, mu_b, cov_b)


def recon_fid(model: Autoencoder, real_x: torch.Tensor, batch_size: int = 500,
              classifier: LeNet | None = None) -> float:
    """rFID: FID-LeNet between the reconstructions ``model.reconstruct(real_x)`` (the decoded
    mode of q(z|x), clamped to [0, 1] as displayed) and ``real_x`` itself, on the feature net
    of the model's data set (Fashion-MNIST's for ``fashion-mnist``, else MNIST's; see
    :func:`~xae.evaluate.fid_nets.feature_net`). The reconstruction FID that latent-diffusion
    papers report for their autoencoders, with a LeNet in the place of Inception: NOT
    comparable with Inception rFID numbers. Deterministic (no sampling); compare values only
    at equal set sizes."""
    if not applicable(model.data_shape):
        raise XaeError(f"recon_fid applies only to (1, 28, 28) MNIST-like data, this model has "
                       f"data shape {model.data_shape}; skip this metric for it")
    _check_images(real_x, "real_x")
    classifier = classifier or load_classifier(device=next(model.parameters()).device,
                                               data=feature_net(model.config.data.name).data)
    with inference(model) as device:
        recon = torch.cat([model.reconstruct(xb.to(device)).cpu()
                           for xb in batches(real_x, batch_size)])
    _check_images(recon, "the reconstructions")
    return fid_lenet(recon, real_x, classifier, batch_size)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats of the distributions along the last dimension."""
    return -(p * p.clamp_min(1e-300).log()).sum(-1)


def _generate(model: Autoencoder, real_x: torch.Tensor, n: int, seed: int | None,
              batch_size: int, bar: tqdm, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of ``model`` from its prior ``source`` (see ``Autoencoder.sample_z``)
    and its reconstructions of ``real_x``, in batches, on the CPU, drawn under ``seed``
    (encoding draws from q(z|x) too); each batch is counted on ``bar``."""
    def counted(t: torch.Tensor) -> torch.Tensor:
        bar.update(t.shape[0])
        return t.cpu()

    with inference(model) as device, seeded(seed, device):
        sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
        samples = torch.cat([counted(model.sample(m, source=source)) for m in sizes])
        recon = torch.cat([counted(model.reconstruct(xb.to(device)))
                           for xb in batches(real_x, batch_size)])
    return samples, recon


def sample_quality(model: Autoencoder, real_x: torch.Tensor, real_y: torch.Tensor,
                   n: int = 10000, seed: int | None = 0, batch_size: int = 500,
                   classifier: LeNet | None = None, progress: bool = False,
                   source: str = "own") -> dict[str, float]:
    """Classifier-based quality of a model on (1, 28, 28) data, measured with the feature net
    of the model's data set (``model.config.data.name``: MNIST's LeNet for ``mnist`` and any
    data set without a net of its own, Fashion-MNIST's for ``fashion-mnist``; see
    :func:`~xae.evaluate.fid_nets.feature_net` and its ``note``).

    Parameters
    ----------
    model : Autoencoder
        A model of data shape (1, 28, 28); kept in eval mode and no_grad.
    real_x, real_y : torch.Tensor
        Labelled real images (the test split), (N, 1, 28, 28) in [0, 1] and (N,) int labels.
    n : int
        How many samples to draw from the prior, in batches of ``batch_size``.
    seed : int or None
        Seed of the sampling; the caller's random state is left as it was. ``None`` draws
        from (and advances) the caller's state.
    progress : bool
        Show a bar with rate and ETA on stderr, counting every image generated or classified.
    source : str
        The prior the samples are drawn from: ``own`` (the model's prior piece) or
        ``fitted`` (the diffusion prior of ``xae prior fit``).

    Returns
    -------
    dict[str, float]
        ``fid_lenet`` (n samples against all of ``real_x``), ``recon_accuracy`` (classifier
        accuracy on reconstructions of ``real_x``), ``real_accuracy`` (on ``real_x`` itself,
        for reference), ``sample_entropy`` (mean entropy in nats of p(y|x) over samples: low
        means confident, digit-like samples) and ``sample_marginal_entropy`` (entropy of the
        mean p(y) over samples: log 10 ≈ 2.303 when all classes are equally frequent).
    """
    if not applicable(model.data_shape):
        raise XaeError(f"sample_quality applies only to (1, 28, 28) MNIST-like data, this model "
                       f"has data shape {model.data_shape}; skip these metrics for it")
    _check_images(real_x, "real_x")
    if real_y.shape != real_x.shape[:1]:
        raise XaeError(f"real_y has shape {tuple(real_y.shape)}, expected ({real_x.shape[0]},): "
                       f"one label per image")
    if n < 2:
        raise XaeError(f"sample_quality needs n >= 2 samples, got {n}")
    net = feature_net(model.config.data.name)
    classifier = classifier or load_classifier(device=next(model.parameters()).device,
                                               data=net.data)
    # generated: n samples + N reconstructions; classified: samples twice, real_x twice, recon
    with progress_bar(3 * n + 4 * real_x.shape[0], net.title, progress) as bar:
        samples, recon = _generate(model, real_x, n, seed, batch_size, bar, source)
        _check_images(samples, "the model's samples")

        def run(x: torch.Tensor, fn: str) -> torch.Tensor:
            return _apply(classifier, x, fn, batch_size, bar)

        p = run(samples, "forward").softmax(-1)
        fake, real = _mean_cov(run(samples, "features")), _mean_cov(run(real_x, "features"))
        return {
            "fid_lenet": frechet_distance(*fake, *real),
            "recon_accuracy": _hits(run(recon, "forward"), real_y),
            "real_accuracy": _hits(run(real_x, "forward"), real_y),
            "sample_entropy": float(_entropy(p).mean()),
            "sample_marginal_entropy": float(_entropy(p.mean(0))),
        }
