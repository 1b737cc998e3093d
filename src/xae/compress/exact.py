"""What the lossless coder asks of a run, and a copy of its model that computes reproducibly.

Bits-back decoding rebuilds every probability table the encoder used from the data it has
decoded so far; one differing bit in a table can derail the rest of the chain. So both sides
run a float64 copy of the model on the CPU, on one thread, with torch's deterministic
algorithms, on blocks of the same shapes (the block sizes travel in the file's header).
"""
from __future__ import annotations

import copy
import hashlib
from contextlib import contextmanager
from typing import Iterator

import torch

from xae.errors import XaeError


def lossless_problem(model: torch.nn.Module) -> str | None:
    """Why ``model`` cannot code losslessly with BB-ANS, or None when it can: it needs a
    Bernoulli likelihood, a diagonal Gaussian bottleneck (flat or per position of a map,
    one group) and the standard-normal prior."""
    from xae.bottlenecks import Gaussian, Positionwise
    from xae.likelihoods.bernoulli import Bernoulli
    from xae.priors.normal import StandardNormal

    bott = model.bottleneck
    inner = bott.inner if isinstance(bott, Positionwise) else bott
    needs = []
    if not isinstance(model.likelihood, Bernoulli):
        needs.append(f"a Bernoulli likelihood (model.likelihood=bernoulli; this run has "
                     f"{type(model.likelihood).__name__})")
    if type(inner) is not Gaussian:
        needs.append(f"one diagonal Gaussian latent (model.bottleneck=gaussian; this run has "
                     f"{type(inner).__name__})")
    if type(model.prior) is not StandardNormal:
        needs.append(f"the standard-normal prior (model.prior=normal; this run has "
                     f"{type(model.prior).__name__})")
    if not needs:
        return None
    return ("lossless bits-back coding needs " + ", ".join(needs) + "; train one, e.g. "
            "`xae train --preset vae --set model.likelihood=bernoulli data.binarize=dynamic`, "
            "or use --lossy")


def require_lossless(model: torch.nn.Module) -> None:
    why = lossless_problem(model)
    if why is not None:
        raise XaeError(why)


def weights_hash(model: torch.nn.Module) -> bytes:
    """SHA-256 of the model's state (names, dtypes, shapes and bytes, sorted by name): a
    compressed file records it, and decoding with other weights is refused."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()


def float64_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of ``model`` on the CPU in eval mode (the original is untouched)."""
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()


@contextmanager
def reproducible() -> Iterator[None]:
    """One thread, deterministic algorithms, no gradients and the caller's random state kept,
    inside; every setting restored on exit."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.use_deterministic_algorithms(det)
        torch.set_num_threads(threads)
