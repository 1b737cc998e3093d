"""The entropy coder: constriction's ANS stack (Duda 2009; Bamler 2022), imported on first use.

``constriction`` is an optional dependency (``pip install 'xae[compress]'``): importing xae
never needs it, and every compression entry point asks for it through :func:`stack`.
A stack is last in, first out: ``push`` (constriction's ``encode_reverse``) adds symbols and
``pop`` (``decode``) takes them back off in the reverse order, with any model; popping from
data that were never pushed is what bits-back coding does (it reads bits as a sample).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from xae.errors import XaeError

INSTALL = "pip install 'xae[compress]'"
SEED_WORDS_RNG = 0x5EED  # the start-up words are this generator's first draws


def _constriction() -> Any:
    try:
        import constriction
    except ImportError:
        raise XaeError(f"compression needs the constriction package (ANS entropy coders); "
                       f"install it with {INSTALL}") from None
    return constriction


class Stack:
    """An ANS stack of 32-bit words with the three models the coders use."""

    def __init__(self, words: np.ndarray | None = None, seal: bool = False) -> None:
        c = _constriction()
        self._ans = (c.stream.stack.AnsCoder() if words is None
                     else c.stream.stack.AnsCoder(np.ascontiguousarray(words, np.uint32),
                                                  seal=seal))
        self._categorical = c.stream.model.Categorical(perfect=False)
        self._bernoulli = c.stream.model.Bernoulli(perfect=False)
        self._c = c

    def push_categorical(self, symbols: np.ndarray, probs: np.ndarray) -> None:
        """Push int symbols (N,) under per-symbol probability rows (N, K)."""
        self._ans.encode_reverse(np.ascontiguousarray(symbols, np.int32), self._categorical,
                                 np.ascontiguousarray(probs, np.float64))

    def pop_categorical(self, probs: np.ndarray) -> np.ndarray:
        return self._ans.decode(self._categorical, np.ascontiguousarray(probs, np.float64))

    def push_uniform(self, symbols: np.ndarray, size: int) -> None:
        """Push int symbols from 0 to ``size`` − 1, each with probability 1 / size."""
        self._ans.encode_reverse(np.ascontiguousarray(symbols, np.int32),
                                 self._c.stream.model.Uniform(size))

    def pop_uniform(self, n: int, size: int) -> np.ndarray:
        return self._ans.decode(self._c.stream.model.Uniform(size), n)

    def push_gaussian(self, symbols: np.ndarray, r: int, scale: float) -> None:
        """Push integers from −r to r under N(0, scale²) integrated over unit bins."""
        n = len(symbols)
        self._ans.encode_reverse(np.ascontiguousarray(symbols, np.int32),
                                 self._c.stream.model.QuantizedGaussian(-r, r),
                                 np.zeros(n), np.full(n, float(scale)))

    def pop_gaussian(self, n: int, r: int, scale: float) -> np.ndarray:
        return self._ans.decode(self._c.stream.model.QuantizedGaussian(-r, r), np.zeros(n),
                                np.full(n, float(scale)))

    def push_bits(self, bits: np.ndarray, p_one: np.ndarray) -> None:
        """Push 0/1 symbols (N,) under Bernoulli models with P(1) = ``p_one`` (N,)."""
        self._ans.encode_reverse(np.ascontiguousarray(bits, np.int32), self._bernoulli,
                                 np.ascontiguousarray(p_one, np.float64))

    def pop_bits(self, p_one: np.ndarray) -> np.ndarray:
        return self._ans.decode(self._bernoulli, np.ascontiguousarray(p_one, np.float64))

    def bits(self) -> int:
        """The data on the stack, in bits (not rounded up to whole words)."""
        return int(self._ans.num_valid_bits())

    def words(self, unseal: bool = False) -> np.ndarray:
        return self._ans.get_compressed(unseal=unseal)


def seed_words(n: int) -> np.ndarray:
    """The ``n`` start-up words: a fixed pseudo-random draw, so the decoder can check that the
    chain gives back exactly these at its end."""
    return np.random.default_rng(SEED_WORDS_RNG).integers(0, 2**32, n, dtype=np.uint32)
