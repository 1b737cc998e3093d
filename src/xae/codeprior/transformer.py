"""An autoregressive prior over a discrete bottleneck's index grid: a small causal transformer.

van den Oord et al. (2017, "Neural Discrete Representation Learning", sec. 3.2) fit an
autoregressive model (a PixelCNN) to the codes of a trained VQ-VAE and sample from it; here the
grid of P positions × S stages is flattened to T = P·S tokens and modelled by a decoder-only
transformer (Vaswani et al. 2017; the pre-norm GPT-2 block of Radford et al. 2019):

    log p(t_1..t_T) = Σ_t log p(t_t | <start>, t_1..t_{t-1})      (in nats)

Input position t holds the previous token (a start token K at position 0), so the logits at
position t predict token t from tokens < t only (causal self-attention, ``is_causal=True``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xae.errors import XaeError, positive_int
from xae.model import inference

FORMAT = "xae-code-prior"


@dataclass
class CodePriorConfig:
    """Hyper-parameters of a :class:`CodeTransformer` and of its training (``xae prior fit``).

    vocab : K, codes per token (the quantizer's ``codebook_size``).
    length : T, tokens per sample (positions × stages of the index grid).
    layers, dim, heads : transformer blocks, model width, attention heads (dim % heads == 0).
    dropout : dropout in attention and MLP outputs, in [0, 1).
    epochs, batch_size, lr, seed : Adam with cosine decay of the learning rate, for
        ``epochs`` passes over the training set's index grids in batches of ``batch_size``.
    """

    vocab: int
    length: int
    layers: int = 2
    dim: int = 128
    heads: int = 4
    dropout: float = 0.0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`XaeError` naming the first bad option."""
        for key in ("vocab", "length", "layers", "dim", "heads", "epochs", "batch_size"):
            positive_int(getattr(self, key), key)
        if self.vocab < 2:
            raise XaeError(f"vocab must be at least 2 codes, got {self.vocab}")
        if self.dim % self.heads:
            raise XaeError(f"dim {self.dim} must be divisible by heads {self.heads} (each head "
                           f"gets dim / heads channels); change --dim or --heads")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) \
                or not math.isfinite(self.lr) or self.lr <= 0:
            raise XaeError(f"lr must be a positive number, got {self.lr!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0 <= self.dropout < 1:
            raise XaeError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise XaeError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodePriorConfig:
        """The config saved by :meth:`to_dict`; XaeError for unknown or missing keys."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise XaeError(f"not an xae code-prior config (no \"format\": \"{FORMAT}\")")
        fields = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - fields - {"format"})
        if extra:
            raise XaeError(f"unknown code-prior config keys {extra}")
        missing = sorted(k for k in ("vocab", "length") if k not in d)
        if missing:
            raise XaeError(f"code-prior config lacks {missing}")
        return cls(**{k: v for k, v in d.items() if k != "format"})


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim),
                                 nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.out(y.transpose(1, 2).reshape(b, t, d)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attend(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CodeTransformer(nn.Module):
    """A causal transformer over sequences of ``length`` tokens in [0, ``vocab``).

    Parameters
    ----------
    config : CodePriorConfig
        Sizes (vocab K, length T, layers, dim, heads, dropout); the training fields are kept
        with the model so that a saved prior records how it was fitted.
    """

    def __init__(self, config: CodePriorConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.vocab, self.length = config.vocab, config.length
        self.token_emb = nn.Embedding(config.vocab + 1, config.dim)  # + the start token
        self.pos_emb = nn.Embedding(config.length, config.dim)
        self.blocks = nn.ModuleList(Block(config.dim, config.heads, config.dropout)
                                    for _ in range(config.layers))
        self.ln = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.vocab)
        self.apply(_init)
        for block in self.blocks:  # GPT-2's scaled init of the residual projections
            for lin in (block.out, block.mlp[2]):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * config.layers))

    @property
    def start(self) -> int:
        """The start token's id (K): the input at position 0."""
        return self.vocab

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """XaeError unless ``tokens`` is an integer (B, T) tensor with values in [0, K)."""
        if tokens.dim() != 2 or tokens.shape[1] != self.length:
            raise XaeError(f"the code prior takes tokens of shape (batch, {self.length}), got "
                           f"{tuple(tokens.shape)}; flatten the index grid with "
                           f"indices.reshape(len(indices), -1)")
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise XaeError(f"the code prior takes integer tokens, got {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab):
            raise XaeError(f"tokens must lie in [0, {self.vocab}), got values in "
                           f"[{int(tokens.min())}, {int(tokens.max())}]; the prior was fitted "
                           f"to another codebook")

    def logits_of_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, K) for input sequences (B, L ≤ T) that start with the start token;
        no checks (the training loop and the sampler call it)."""
        pos = torch.arange(inputs.shape[1], device=inputs.device)
        h = self.token_emb(inputs) + self.pos_emb(pos)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h))

    def shift(self, tokens: torch.Tensor) -> torch.Tensor:
        """The inputs for ``tokens`` (B, T): the start token, then tokens 0..T−2."""
        start = tokens.new_full((tokens.shape[0], 1), self.start)
        return torch.cat([start, tokens[:, :-1]], 1).long()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, K): position t predicts token t from tokens < t."""
        self.check_tokens(tokens)
        return self.logits_of_inputs(self.shift(tokens))

    def log_prob(self, tokens: torch.Tensor) -> torch.Tensor:
        """log p(tokens) per sequence (B,), in nats: Σ_t log p(token_t | tokens < t)."""
        logp = F.log_softmax(self(tokens).float(), -1)
        return logp.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1).sum(-1)

    def sample(self, n: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n sequences (n, T) long, token by token (the prefix recomputed at each step; T is
        small). ``temperature`` divides the logits; ``generator`` (on the model's device)
        makes the draw reproducible."""
        positive_int(n, "n", " (the number of samples)")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not temperature > 0:
            raise XaeError(f"temperature must be a positive number, got {temperature!r}")
        with inference(self) as device:
            seq = torch.full((n, 1), self.start, dtype=torch.long, device=device)
            for _ in range(self.length):
                logits = self.logits_of_inputs(seq)[:, -1].float() / temperature
                nxt = torch.multinomial(F.softmax(logits, -1), 1, generator=generator)
                seq = torch.cat([seq, nxt], 1)
        return seq[:, 1:]

    def extra_repr(self) -> str:
        c = self.config
        return (f"vocab={c.vocab}, length={c.length}, layers={c.layers}, dim={c.dim}, "
                f"heads={c.heads}")


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)
