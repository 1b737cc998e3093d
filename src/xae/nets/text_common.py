"""What the decoders of sentences share: the token check, the decoder's input words
(``<bos>`` then the sentence shifted right, with word dropout) and the loop that writes a
sentence from z one word at a time."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from xae.errors import XaeError
from xae.tokens import BOS, EOS, PAD, UNK

#: ``next_logits(prefix (B, t + 1), state) -> (logits (B, V), state)``
NextLogits = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def check_tokens(x: torch.Tensor, vocab_size: int, what: str) -> None:
    if x.dtype != torch.int64 or x.ndim != 2:
        raise XaeError(f"the {what} reads token ids (batch, length) of type int64, got "
                       f"{x.dtype} {tuple(x.shape)}: train it on --data ptb or text")
    if x.numel() and int(x.max()) >= vocab_size:
        raise XaeError(f"token id {int(x.max())} is outside the model's vocabulary of "
                       f"{vocab_size}")


def shifted_inputs(x: torch.Tensor, word_dropout: float, training: bool) -> torch.Tensor:
    """``<bos>`` then x shifted right; in training each word (not ``<bos>``, not padding)
    becomes ``<unk>`` with probability ``word_dropout`` (Bowman et al. 2016)."""
    prev = torch.cat([torch.full_like(x[:, :1], BOS), x[:, :-1]], dim=1)
    if training and word_dropout > 0:
        drop = torch.rand(prev.shape, device=prev.device) < word_dropout
        drop[:, 0] = False
        prev = torch.where(drop & (prev != PAD), torch.full_like(prev, UNK), prev)
    return prev


@torch.no_grad()
def generate(next_logits: NextLogits, state: Any, batch: int, length: int,
             device: torch.device, greedy: bool = True,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Sentences (batch, length): from ``<bos>``, the most likely next word (``greedy``) or a
    draw, until ``<eos>`` (forced in the last column); ``<pad>`` after it. Padding and
    ``<bos>`` are never written."""
    out = torch.full((batch, length), PAD, dtype=torch.int64, device=device)
    prefix = torch.full((batch, 1), BOS, dtype=torch.int64, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    for t in range(length):
        logits, state = next_logits(prefix, state)
        logits = logits.clone()
        logits[:, PAD] = logits[:, BOS] = -torch.inf
        if t == length - 1:
            nxt = torch.full((batch,), EOS, dtype=torch.int64, device=device)
        elif greedy:
            nxt = logits.argmax(-1)
        else:
            nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        out[:, t] = torch.where(done, torch.full_like(nxt, PAD), nxt)
        done |= nxt == EOS
        if bool(done.all()):
            break
        prefix = torch.cat([prefix, nxt.unsqueeze(1)], dim=1)
    return out
