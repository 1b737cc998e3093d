"""Sentences as padded token ids: the vocabulary, the encoding and its mask, a user's text
file, the Penn Treebank's split, and the bad input."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from xae.config import DataConfig
from xae.data import load
from xae.data.text import Vocabulary, encode
from xae.tokens import BOS, EOS, PAD, SPECIALS, UNK
from xae.errors import XaeError

CORPUS = ["the cat sat on the mat", "the dog sat", "a cat ran", "the end"]


def _split(lines: list[str]) -> list[list[str]]:
    return [line.split() for line in lines]


def test_the_vocabulary_keeps_the_most_frequent_words_after_the_specials() -> None:
    vocab = Vocabulary.build(_split(CORPUS), size=7)
    # the: 4, cat: 2, sat: 2 (ties alphabetical), then a, dog, end, mat, on, ran (1 each)
    assert vocab.tokens == (*SPECIALS, "the", "cat", "sat")
    assert len(Vocabulary.build(_split(CORPUS), size=13)) == len(SPECIALS) + 9  # all words
    with pytest.raises(XaeError, match="only 9 distinct words.*data.vocab_size=13 or less"):
        Vocabulary.build(_split(CORPUS), size=14)
    # the word <unk> in a corpus is the special token, not a word of its own
    assert Vocabulary.build([["<unk>", "x", "<unk>"]], 5).tokens == (*SPECIALS, "x")


def test_encoding_ends_with_eos_pads_and_counts_cuts(caplog) -> None:
    vocab = Vocabulary.build(_split(CORPUS), size=7)
    with caplog.at_level(logging.WARNING, logger="xae.data.text"):
        x, cut = encode(_split(["the cat sat on the mat", "sat the"]), vocab, 4, "test")
    ids = vocab.ids
    assert x.dtype == torch.int64 and x.shape == (2, 5)
    assert x[0].tolist() == [ids["the"], ids["cat"], ids["sat"], UNK, EOS]  # cut to 4 words
    assert x[1].tolist() == [ids["sat"], ids["the"], EOS, PAD, PAD]
    assert cut == 1 and "1 of 2 sentences of test" in caplog.text
    assert (x != PAD).sum(1).tolist() == [5, 3]  # the mask: words and <eos>
    assert vocab.decode(x[1]) == "sat the"
    assert vocab.decode([BOS, ids["cat"], UNK, EOS, ids["the"]]) == "cat <unk>"


def test_a_text_file_is_split_and_its_vocabulary_built_from_train(tmp_path: Path) -> None:
    lines = [f"w{i} w{i % 3} common" for i in range(40)]
    path = tmp_path / "s.txt"
    path.write_text("\n".join(lines[:20]) + "\n\n  \n" + "\n".join(lines[20:]) + "\n")
    cfg = DataConfig(name="text", path=str(path), test_fraction=0.25, max_len=3, vocab_size=20)
    ds = load(cfg)
    assert ds.train_x.shape == (30, 4) and ds.test_x.shape == (10, 4)
    assert ds.shape == (4,) and ds.info["truncated"] == {"train": 0, "test": 0}
    cut = load(DataConfig(name="text", path=str(path), test_fraction=0.25, max_len=2,
                          vocab_size=20))
    assert cut.shape == (3,) and cut.info["truncated"] == {"train": 30, "test": 10}
    vocab = ds.info["vocab"]
    train_words = {w for row in ds.train_x for w in vocab.decode(row).split()}
    test_words = {w for row in ds.test_x for w in vocab.decode(row).split()}
    assert set(vocab.tokens[len(SPECIALS):]) <= train_words - {"<unk>"}
    assert len(vocab) == 20
    assert "<unk>" in test_words  # the test split's own w-numbers are unknown words
    again = load(cfg)
    assert torch.equal(again.test_x, ds.test_x)  # seeded
    other = load(DataConfig(name="text", path=str(path), test_fraction=0.25, seed=1,
                            vocab_size=20))
    assert not torch.equal(other.test_x[:, :1], ds.test_x[:, :1])


@pytest.mark.parametrize("content,needle", [
    ("", "holds 0 non-blank line"),
    ("\n \n", "holds 0 non-blank line"),
    ("one line only\n", "at least 2 sentences"),
])
def test_empty_files_are_refused(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "s.txt"
    path.write_text(content)
    with pytest.raises(XaeError, match=needle):
        load(DataConfig(name="text", path=str(path)))


def test_bad_text_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(XaeError, match="set data.path"):
        load(DataConfig(name="text"))
    with pytest.raises(XaeError, match="does not exist"):
        load(DataConfig(name="text", path=str(tmp_path / "none.txt")))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 au lait\nthe end\n".encode("latin-1"))
    with pytest.raises(XaeError, match="not UTF-8"):
        load(DataConfig(name="text", path=str(latin)))
    good = tmp_path / "good.txt"
    good.write_text("a b\nc d\n")
    with pytest.raises(XaeError, match="special tokens"):
        load(DataConfig(name="text", path=str(good), vocab_size=4))


def test_the_cli_refuses_a_too_small_vocabulary_in_one_line(tmp_path: Path, capsys) -> None:
    from xae.cli import main

    good = tmp_path / "good.txt"
    good.write_text("a b\nc d\ne f\n")
    code = main(["train", "--data", "text", "--steps", "1", "--no-progress", "--set",
                 f"data.path={good}", "data.vocab_size=3", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "special tokens" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_ptb_is_mikolovs_split_with_its_whole_vocabulary() -> None:
    ds = load(DataConfig(name="ptb"))
    assert ds.train_x.shape == (42_068, 51) and ds.test_x.shape == (3_761, 51)
    assert ds.info["valid_x"].shape == (3_370, 51)
    vocab = ds.info["vocab"]
    assert len(vocab) == 10_002 and ds.info["train_coverage"] == 1.0
    assert vocab.decode(ds.test_x[0]) == "no it was n't black monday"
    # PTB's longest training sentence has 82 words: the default max_len cuts a few
    assert 0 < ds.info["truncated"]["train"] < 0.01 * 42_068
    # a smaller vocabulary: the rarest words become <unk>
    small = load(DataConfig(name="ptb", vocab_size=1004))
    assert len(small.info["vocab"]) == 1004 and small.info["train_coverage"] < 0.95
    assert int((small.train_x == UNK).sum()) > int((ds.train_x == UNK).sum())


def test_binarizing_text_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("a b\nc d\ne f\n")
    with pytest.raises(XaeError, match="is text"):
        load(DataConfig(name="text", path=str(good), binarize="static"))
