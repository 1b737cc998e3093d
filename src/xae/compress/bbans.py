"""Lossless bits-back coding with ANS (BB-ANS; Townsend, Bird & Barber 2019) of binary data.

For each block of images, in order, the encoder

1. pops the latent's buckets off the stack under the posterior q(z|x) (it reads bits that
   are already there as a sample: these are the bits it gets back),
2. pushes the pixels under p(x|z), Bernoulli at the decoder's output for the bucket centres,
3. pushes the buckets under the prior (uniform: the buckets have equal prior mass).

Each image then costs −log p(x|z) − log p(z) + log q(z|x) bits on average: the negative
ELBO of the discretized latent. The decoder runs the blocks backwards, each step's inverse in
reverse order (pop z under the prior, pop x under p(x|z), push z back under q(z|x)), so the
images come out last first and the stack ends as it began.

Start-up: the first pop needs bits to read. The chain starts from ``seed`` fixed pseudo-random
words (enough for one image's posterior pop, about D·b bits) and starts with blocks of one
image, growing them (in powers of two up to ``block``) only once the stack holds what a
block pops; the seed words are still on the stack at the end (the decoder checks that it
gets exactly them back), which is the start-up cost, reported apart from the images' bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from xae.compress.ans import Stack, seed_words
from xae.compress.buckets import DEFAULT_BITS, centres, check_bits, posterior_masses
from xae.compress.exact import float64_copy, reproducible, require_lossless
from xae.errors import XaeError, positive_int

DEFAULT_BLOCK = 64  # images per model pass once the chain has bits to spare


@dataclass
class Chain:
    """A coded chain: the stack's words, the block sizes as (size, count) runs, the latent
    precision, how many seed words it started from, and its size in bits."""

    words: np.ndarray
    runs: list[tuple[int, int]]
    bits: int
    seed: int

    @property
    def startup_bits(self) -> int:
        return 32 * self.seed

    @property
    def total_bits(self) -> int:
        return 32 * len(self.words)


def blocks_of(runs: list[tuple[int, int]]) -> list[int]:
    """The block sizes, in coding order, from their (size, count) runs."""
    return [size for size, count in runs for _ in range(count)]


def _to_runs(sizes: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for s in sizes:
        if runs and runs[-1][0] == s:
            runs[-1] = (s, runs[-1][1] + 1)
        else:
            runs.append((s, 1))
    return runs


def check_binary(x: torch.Tensor, what: str) -> None:
    """XaeError unless every value of ``x`` is exactly 0 or 1."""
    bad = (x != 0) & (x != 1)
    if bool(bad.any()):
        raise XaeError(f"{what} is not binary ({int(bad.sum())} of {x.numel()} values are "
                       f"neither 0 nor 1, e.g. {float(x[bad][0]):.4g}); the lossless coder "
                       f"codes binarized data: binarize first, e.g. numpy.save(path, "
                       f"(x > 0.5).astype(bool)) or a Bernoulli draw rng.random(x.shape) < x, "
                       f"or use a run's fixed test binarization (--split test of a run "
                       f"trained with data.binarize=dynamic or static); or use --lossy")


class _Coder:
    """The model's three distributions over one block, in float64."""

    def __init__(self, model: torch.nn.Module, bits: int) -> None:
        require_lossless(model)
        self.model, self.bits = float64_copy(model), check_bits(bits)
        self.k, self.centres = 2 ** bits, torch.from_numpy(centres(bits))
        self.dim = int(model.latent_dim)

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """Bucket masses under q(z|x), (m·D, K)."""
        post = self.model.posterior_of(torch.from_numpy(x).double())
        return posterior_masses(post.mean.numpy(), post.std.numpy(), self.bits).reshape(-1, self.k)

    def pixels(self, idx: np.ndarray, m: int) -> np.ndarray:
        """P(pixel = 1 | z at the bucket centres), flattened (m·prod(data_shape),)."""
        z = self.centres[torch.from_numpy(idx.astype(np.int64))].view(m, self.dim)
        return self.model.likelihood.mean(self.model.decode_params(z)).reshape(-1).numpy()


def encode(model: torch.nn.Module, x: torch.Tensor, bits: int = DEFAULT_BITS,
           block: int = DEFAULT_BLOCK) -> Chain:
    """Code binary images ``x`` (N, *data_shape) losslessly with BB-ANS through ``model``."""
    check_binary(x, "the data")
    positive_int(block, "the block size")
    coder = _Coder(model, bits)
    xs = x.detach().cpu().to(torch.uint8).numpy()
    seed = math.ceil(coder.dim * coder.bits / 32) + 1
    stack, sizes, i = Stack(seed_words(seed), seal=True), [], 0
    pop_bits = coder.dim * coder.bits  # what one image's posterior pop reads, about
    with reproducible():
        while i < len(xs):
            fits = max(1, stack.bits() // pop_bits)
            m = min(block, len(xs) - i, 2 ** int(math.log2(fits)) if fits < block else block)
            xb = xs[i:i + m]
            idx = stack.pop_categorical(coder.posterior(xb))
            stack.push_bits(xb.reshape(-1), coder.pixels(idx, m))
            stack.push_uniform(idx, coder.k)
            sizes.append(m)
            i += m
    return Chain(stack.words(), _to_runs(sizes), bits, seed)


def decode(model: torch.nn.Module, chain: Chain, shape: tuple[int, ...]) -> torch.Tensor:
    """The images (N, *shape) float32 0/1 that :func:`encode` coded into ``chain``."""
    coder = _Coder(model, chain.bits)
    stack, out = Stack(chain.words), []
    derailed = XaeError("the coded data did not decode back to their start-up words: the file "
                        "is damaged or was written by another version of xae's coder")
    try:
        with reproducible():
            for m in reversed(blocks_of(chain.runs)):
                idx = stack.pop_uniform(m * coder.dim, coder.k)
                xb = stack.pop_bits(coder.pixels(idx, m)).astype(np.uint8).reshape(m, *shape)
                stack.push_categorical(idx, coder.posterior(xb))
                out.append(xb)
        rest = stack.words(unseal=True)
    except (AssertionError, ValueError, RuntimeError):  # constriction's checks of the stack
        raise derailed from None
    if not np.array_equal(rest, seed_words(chain.seed)):
        raise derailed
    return torch.from_numpy(np.concatenate(out[::-1])).float()
