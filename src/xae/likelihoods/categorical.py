"""Categorical likelihood over tokens: sentences as padded token ids (:mod:`xae.data.text`).

θ holds logits (B, L, V) over the V tokens at each of the L positions; log p(x|θ) is the sum
over the real tokens of each sentence (its words and ``<eos>``; the mask is x ≠ ``<pad>``) of
log softmax(θ_t)[x_t], so padding adds nothing and a sentence's NLL divided by its real tokens
is the per-word cross-entropy of perplexity.
"""
from __future__ import annotations

import torch

from xae.tokens import PAD
from xae.likelihoods.base import Likelihood


class Categorical(Likelihood):
    """log p(x|θ) = Σ_t [x_t ≠ pad] · log softmax(θ_t)[x_t]."""

    needs_vocab = True

    def __init__(self, data_shape: tuple[int, ...], vocab_size: int) -> None:
        super().__init__(data_shape)
        self.vocab_size = vocab_size
        self.params_per_channel = vocab_size  # logits per position

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """(…, B, L) log-probabilities of the tokens x (B, L) under logits θ (…, B, L, V),
        0 at padding."""
        index = x.expand(theta.shape[:-1]).unsqueeze(-1)
        picked = theta.log_softmax(-1).gather(-1, index).squeeze(-1)
        return picked * (x != PAD)

    def mean(self, theta: torch.Tensor) -> torch.Tensor:
        """The most likely token at each position (given the true ones before it)."""
        return theta.argmax(-1)

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Categorical(logits=theta).sample()
