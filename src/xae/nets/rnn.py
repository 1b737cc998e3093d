"""Recurrent nets over sentences (token ids, :mod:`xae.data.text`): an encoder that reads a
sentence into its last state, and an autoregressive decoder that sees z at every step
(Bowman et al. 2016, "Generating Sentences from a Continuous Space").

The decoder is *conditional*: its parameters θ depend on the sentence itself (teacher
forcing: at step t it reads the true words before t), so the model calls ``decoder(z, x)``
where other decoders get ``decoder(z)``; :meth:`RNNDecoder.generate` writes a sentence from
z alone, greedily or by sampling. **Word dropout** (Bowman et al., section 3.2) replaces each
input word of the decoder by ``<unk>`` with probability ``word_dropout`` while training,
which makes the decoder lean on z.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.nets.text_common import check_tokens, generate, shifted_inputs
from xae.tokens import PAD

KEYS = {"cell": ("the recurrent cell: gru or lstm", C.one_of(("gru", "lstm"))),
        "embed": ("width of the word embeddings", C.POSITIVE),
        "hidden": ("width of the recurrent state", C.POSITIVE),
        "word_dropout": ("the decoder's inputs: the share of words replaced by <unk> in "
                         "training (Bowman et al. 2016; 0 = off)", C.between(0.0, 1.0))}
"""The settings of the rnn encoder and decoder, which share the section ``model.rnn``."""

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def lengths(x: torch.Tensor) -> torch.Tensor:
    """The real tokens of each padded sentence (its words and ``<eos>``), on the CPU."""
    return (x != PAD).sum(1).clamp(min=1).cpu()


class RNNEncoder(nn.Module):
    """Embeddings → a one-layer GRU/LSTM over the real tokens → its last state (B, hidden)."""

    KEYS = KEYS
    needs_vocab = True

    def __init__(self, data_shape: tuple[int, ...], vocab_size: int, *, cell: str = "gru",
                 embed: int = 256, hidden: int = 256, word_dropout: float = 0.0) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=PAD)
        self.rnn = CELLS[cell](embed, hidden, batch_first=True)
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tokens(x, self.vocab_size, "rnn encoder")
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(x), lengths(x),
                                                   batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        return h[-1]


class RNNDecoder(nn.Module):
    """An autoregressive GRU/LSTM: its first state is tanh(W·z), and at each step its input is
    the previous word's embedding beside z; logits over the vocabulary at every position."""

    KEYS = KEYS
    needs_vocab = True
    conditional = True

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int, params_per_channel: int,
                 vocab_size: int, *, cell: str = "gru", embed: int = 256, hidden: int = 256,
                 word_dropout: float = 0.0) -> None:
        super().__init__()
        if params_per_channel != vocab_size:
            raise XaeError(f"the rnn decoder emits logits over the {vocab_size} tokens; "
                           f"use model.likelihood=categorical")
        self.vocab_size, self.length, self.word_dropout = vocab_size, data_shape[0], word_dropout
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=PAD)
        self.init = nn.Linear(latent_dim, hidden * (2 if cell == "lstm" else 1))
        self.rnn = CELLS[cell](embed + latent_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    @property
    def last_layer(self) -> torch.Tensor:
        return self.out.weight

    def _state(self, z: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s = torch.tanh(self.init(z)).unsqueeze(0)
        return tuple(s.chunk(2, dim=-1)) if self.cell == "lstm" else s

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's input words: ``<bos>`` then x shifted right, with word dropout in
        training (padding and ``<bos>`` are never dropped)."""
        return shifted_inputs(x, self.word_dropout, self.training)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """θ: logits (B, L, V) of each token given z and the true tokens before it."""
        check_tokens(x, self.vocab_size, "rnn decoder")
        if x.shape[0] != z.shape[0]:
            raise XaeError(f"{z.shape[0]} codes for {x.shape[0]} sentences")
        emb = self.embedding(self.inputs(x))
        steps = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.shape[1], -1)], dim=-1)
        h, _ = self.rnn(steps, self._state(z))
        return self.out(h)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, greedy: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sentences (B, L) written from z alone (:func:`~xae.nets.text_common.generate`):
        each step feeds the last word beside z and carries the recurrent state."""
        def next_logits(prefix: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
            step = torch.cat([self.embedding(prefix[:, -1:]), z.unsqueeze(1)], dim=-1)
            h, state = self.rnn(step, state)
            return self.out(h[:, -1]), state

        return generate(next_logits, self._state(z), z.shape[0], self.length, z.device,
                        greedy, generator)
