"""The token-id conventions of sentences (:mod:`xae.data.text`), shared by the data, the
text nets and the categorical likelihood; this module imports nothing of xae."""
from __future__ import annotations

SPECIALS: tuple[str, ...] = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(len(SPECIALS))
TEXT_SOURCES: tuple[str, ...] = ("ptb", "text")  # the data sets of sentences
