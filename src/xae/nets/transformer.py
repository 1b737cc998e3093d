"""A small causal transformer decoder over sentences, conditioned on z at every position.

Its input at position t is the embedding of the previous word (``<bos>`` first, word dropout
in training) plus a learned position embedding plus W·z, the same projection of the code at
every position; pre-norm self-attention layers with a causal mask (position t sees inputs
≤ t only), then logits over the vocabulary. Like the rnn decoder it is *conditional*
(``decoder(z, x)``, teacher forcing) and writes sentences from z with :meth:`generate`,
which re-reads the prefix at each step (sentences are short).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.nets.text_common import check_tokens, generate, shifted_inputs


class TransformerDecoder(nn.Module):
    KEYS = {"width": ("model width (embeddings, attention, z's projection)", C.POSITIVE),
            "layers": ("self-attention layers", C.POSITIVE),
            "heads": ("attention heads (they divide the width)", C.POSITIVE),
            "word_dropout": ("the share of input words replaced by <unk> in training",
                             C.between(0.0, 1.0))}
    needs_vocab = True
    conditional = True

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int, params_per_channel: int,
                 vocab_size: int, *, width: int = 256, layers: int = 2, heads: int = 4,
                 word_dropout: float = 0.0) -> None:
        super().__init__()
        if params_per_channel != vocab_size:
            raise XaeError(f"the transformer decoder emits logits over the {vocab_size} "
                           f"tokens; use model.likelihood=categorical")
        if width % heads:
            raise XaeError(f"model.transformer.heads ({heads}) must divide its width "
                           f"({width})")
        self.vocab_size, self.length, self.word_dropout = vocab_size, data_shape[0], word_dropout
        self.embedding = nn.Embedding(vocab_size, width)
        self.position = nn.Parameter(torch.zeros(self.length, width))
        nn.init.normal_(self.position, std=0.02)
        self.code = nn.Linear(latent_dim, width)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, vocab_size)

    @property
    def last_layer(self) -> torch.Tensor:
        return self.out.weight

    def _logits(self, z: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        t = inputs.shape[1]
        h = self.embedding(inputs) + self.position[:t] + self.code(z).unsqueeze(1)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=h.device,
                                                              dtype=h.dtype)
        return self.out(self.norm(self.blocks(h, mask=mask, is_causal=True)))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """θ: logits (B, L, V) of each token given z and the true tokens before it."""
        check_tokens(x, self.vocab_size, "transformer decoder")
        if x.shape[0] != z.shape[0]:
            raise XaeError(f"{z.shape[0]} codes for {x.shape[0]} sentences")
        return self._logits(z, shifted_inputs(x, self.word_dropout, self.training))

    @torch.no_grad()
    def generate(self, z: torch.Tensor, greedy: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sentences (B, L) written from z alone, re-reading the prefix at each step."""
        def next_logits(prefix: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
            return self._logits(z, prefix)[:, -1], state

        return generate(next_logits, None, z.shape[0], self.length, z.device, greedy,
                        generator)
