"""Models of sentences: the categorical likelihood against torch.distributions, the
autoregressive decoder (causal teacher forcing, word dropout, generation), a short training
run whose loss falls, the text run figures, and pieces that do not fit the data."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

import xae
from xae.cli import main
from xae.config import apply
from xae.errors import XaeError
from xae.likelihoods.categorical import Categorical
from xae.nets.rnn import RNNDecoder
from xae.nets.transformer import TransformerDecoder
from xae.presets import preset
from xae.registry import build
from xae.tokens import BOS, EOS, PAD, UNK

V, L = 9, 6


def _sentences(n: int, seed: int = 0) -> torch.Tensor:
    """(n, L) ids: 1 to 5 words from 4 … V−1, then <eos>, then padding."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, L), PAD)
    for i in range(n):
        k = int(torch.randint(1, L, (1,), generator=g))
        x[i, :k] = torch.randint(4, V, (k,), generator=g)
        x[i, k] = EOS
    return x


def test_categorical_log_prob_is_torchs_over_the_real_tokens() -> None:
    x = _sentences(7)
    theta = torch.randn(3, 7, L, V, dtype=torch.float64)
    lik = Categorical((L,), V)
    want = torch.distributions.Categorical(logits=theta).log_prob(x)  # (3, 7, L)
    want = (want * (x != PAD)).sum(-1)
    torch.testing.assert_close(lik.log_prob_samples(x, theta), want)
    torch.testing.assert_close(lik.log_prob(x, theta[0]), want[0])
    # padding adds nothing: the logits there can be anything
    other = theta.clone()
    other[..., :][(x == PAD).expand(3, -1, -1)] = 100.0
    torch.testing.assert_close(lik.log_prob_samples(x, other), want)


def _decoder(word_dropout: float = 0.0, kind: str = "rnn") -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "transformer":
        return TransformerDecoder((L,), 3, V, V, width=16, layers=2, heads=2,
                                  word_dropout=word_dropout).double()
    return RNNDecoder((L,), 3, V, V, cell="gru", embed=8, hidden=16,
                      word_dropout=word_dropout).double()


@pytest.mark.parametrize("kind", ["rnn", "transformer"])
def test_teacher_forcing_is_causal(kind: str) -> None:
    dec, x, z = _decoder(kind=kind).eval(), _sentences(4), torch.randn(4, 3, dtype=torch.float64)
    theta = dec(z, x)
    changed = x.clone()
    changed[:, 2] = 4 + (changed[:, 2] - 3) % (V - 4)  # another word at position 2
    after = dec(z, changed)
    torch.testing.assert_close(after[:, :3], theta[:, :3])  # θ_t reads x_<t only
    assert not torch.allclose(after[:, 3], theta[:, 3])


def test_word_dropout_replaces_words_in_training_only() -> None:
    x = _sentences(50)
    dec = _decoder(word_dropout=1.0)
    inputs = dec.train().inputs(x)
    assert (inputs[:, 0] == BOS).all()
    shifted = x[:, :-1]
    assert (inputs[:, 1:][shifted != PAD] == UNK).all()
    assert (inputs[:, 1:][shifted == PAD] == PAD).all()
    assert torch.equal(dec.eval().inputs(x)[:, 1:], shifted)
    half = _decoder(word_dropout=0.5).train().inputs(x)[:, 1:][shifted != PAD]
    assert 0.3 < float((half == UNK).double().mean()) < 0.7


@pytest.mark.parametrize("kind", ["rnn", "transformer"])
def test_greedy_generation_is_the_argmax_of_its_own_teacher_forcing(kind: str) -> None:
    dec, z = _decoder(kind=kind).eval(), torch.randn(6, 3, dtype=torch.float64)
    out = dec.generate(z)
    assert out.shape == (6, L) and torch.equal(out, dec.generate(z))
    for row in out:  # one <eos>, then padding only
        end = int((row == EOS).nonzero()[0])
        words = row[:end]
        assert (row[end + 1:] == PAD).all()
        assert not ((words == PAD) | (words == BOS) | (words == EOS)).any()
    theta = dec(z, out)
    theta[..., PAD] = theta[..., BOS] = -torch.inf  # generation never writes these
    real = out != PAD
    real[:, -1] = False  # the last column is <eos> by force
    assert torch.equal(theta.argmax(-1)[real], out[real])
    g = torch.Generator().manual_seed(1)
    drawn = dec.generate(z, greedy=False, generator=g)
    assert torch.equal(drawn, dec.generate(z, greedy=False, generator=torch.Generator()
                                           .manual_seed(1)))


def _corpus(path: Path, n: int = 400) -> Path:
    """Sentences whose words all come from one of four topics: z can say which."""
    rng = random.Random(0)
    topics = [[f"{t}{i}" for i in range(5)] for t in "abcd"]
    lines = [" ".join(rng.choice(topic) for _ in range(rng.randint(3, 8)))
             for topic in (rng.choice(topics) for _ in range(n))]
    path.write_text("\n".join(lines) + "\n")
    return path


TINY_TEXT = ["data.vocab_size=24", "data.max_len=8", "model.rnn.hidden=32", "model.rnn.embed=16",
             "model.latent_dim=4", "beta.warmup=100", "train.log_every=25", "train.lr=3e-3"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("text")
    corpus = _corpus(tmp / "s.txt")
    out = tmp / "run"
    assert main(["train", "--preset", "sentence-vae", "--data", "text", "--steps", "200",
                 "--no-progress", "--set", f"data.path={corpus}", *TINY_TEXT,
                 "--out", str(out)]) == 0
    return out


def test_a_sentence_vae_trains_and_writes_text_figures(text_run: Path) -> None:
    out = text_run
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]
    test = json.loads((out / "metrics.json").read_text())["test"]
    # the topic of a sentence is 2 bits: a perplexity near the 5 words of a topic (+ eos)
    assert test["perplexity"] < 12 and "bits_per_dim" not in test
    lines = (out / "figures" / "reconstructions.txt").read_text().splitlines()
    assert lines[0].startswith("x: ") and lines[1].startswith("x̂: ")
    samples = (out / "figures" / "samples.txt").read_text()
    assert "greedy:" in samples and "sampled:" in samples
    model = xae.load(out)
    x = torch.tensor([[4, 5, EOS, PAD, PAD, PAD, PAD, PAD, PAD]])
    z = model.latent_mean(x)
    log_px, theta = model.log_px(x, z[None])  # teacher forcing through the K-draw path
    model.eval()
    with torch.no_grad():
        direct = model.likelihood.log_prob(x, model.decode_params(z, x))
    torch.testing.assert_close(log_px[0], direct)
    with pytest.raises(XaeError, match="autoregressive"):
        model.decode_params(z)
    # xae eval: the IW bound per sentence and its perplexity per real token, no image metrics
    assert main(["eval", str(out), "--k", "5", "--no-progress"]) == 0
    report = json.loads((out / "eval.json").read_text())
    from xae.data import load

    test_x = load(model.config.data).test_x
    tokens = float((test_x != PAD).sum()) / len(test_x)
    got = report["test"]
    assert got["perplexity_iw"] == pytest.approx(math.exp(got["nll_iw"] / tokens), rel=1e-9)
    assert got["perplexity"] == pytest.approx(math.exp(got["neg_elbo"] / tokens), rel=1e-9)
    assert "mse" not in got and "bits_per_dim_iw" not in got and "images" in report["skipped"]


@pytest.mark.parametrize("keys,needle", [
    ({"model.encoder": "mlp"}, "model.encoder 'mlp' reads images or vectors"),
    ({"model.likelihood": "bernoulli"}, "model.likelihood 'bernoulli' reads images"),
])
def test_image_pieces_on_text_are_refused(tmp_path: Path, keys, needle) -> None:
    cfg = preset("sentence-vae", **{"data.name": "text", "data.path": "x.txt", **keys})
    with pytest.raises(XaeError, match=needle):
        build(cfg)


def test_text_pieces_on_images_are_refused(capsys, tmp_path: Path) -> None:
    with pytest.raises(XaeError, match="reads sentences"):
        build(apply(preset("vae"), {"model.encoder": "rnn"}))
    code = main(["train", "--preset", "sentence-vae", "--data", "digits", "--steps", "1",
                 "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "reads sentences" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_sample_reconstruct_and_interpolate_print_sentences(text_run: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["sample", str(text_run), "-n", "3", "--decode", "sample"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(w.startswith(tuple("abcd")) for ln in lines
                                   for w in ln.split())
    assert main(["reconstruct", str(text_run), "-n", "2"]) == 0
    pairs = [ln for ln in capsys.readouterr().out.splitlines() if ln]
    assert [ln[:3] for ln in pairs] == ["x: ", "x̂:", "x: ", "x̂:"]
    a, b = "a0 a1 a2 a3", "d4 d3 d2"
    assert main(["interpolate", str(text_run), a, b, "--steps", "5"]) == 0
    homotopy = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in homotopy] == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    # the ends are the greedy reconstructions of A and B
    model = xae.load(text_run)
    from xae.data import load
    from xae.text_cli import encode_sentence

    vocab = load(model.config.data).info["vocab"]
    for line, sentence in ((homotopy[0], a), (homotopy[-1], b)):
        row, unknown = encode_sentence(sentence, vocab, model.data_shape[0])
        assert not unknown
        with torch.no_grad():
            want = vocab.decode(model.decode(model.latent_mean(row))[0])
        assert line.split(None, 1)[1:] == ([want] if want else [])


def test_text_options_on_the_wrong_run_exit_2(text_run: Path, trained: Path, capsys,
                                              tmp_path: Path) -> None:
    for argv, needle in ((["sample", str(trained), "--decode", "sample"], "not text"),
                         (["sample", str(text_run), "-o", str(tmp_path / "s.png")], ".txt"),
                         (["interpolate", str(text_run), "a0", "a1", "--steps", "1"],
                          "at least 2"),
                         (["interpolate", str(trained), "0", "x"], "indices of the test set"),
                         (["interpolate", str(text_run), " ", "a1"], "empty"),
                         (["export", str(text_run)], "decoder is autoregressive")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)
    assert main(["interpolate", str(trained), "0", "3", "-o", str(tmp_path / "l.png"),
                 "--steps", "4"]) == 0
    assert (tmp_path / "l.png").stat().st_size > 500


def test_word_dropout_of_a_decoder_the_model_lacks_is_refused() -> None:
    with pytest.raises(XaeError, match="set model.transformer.word_dropout instead"):
        build(preset("sentence-vae", **{"data.name": "text", "data.path": "x.txt",
                                        "model.decoder": "transformer"}))


def test_the_language_model_is_the_empty_code_limit(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "s.txt")
    out = tmp_path / "lm"
    tiny = [k for k in TINY_TEXT if not k.startswith("beta.")]
    assert main(["train", "--preset", "lstm-lm", "--data", "text", "--steps", "150",
                 "--no-progress", "--set", f"data.path={corpus}", *tiny,
                 "--out", str(out)]) == 0
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert test["rate"] == 0 and test["neg_elbo"] == test["distortion"]
    assert "holes_mmd" not in test and test["active_units"] == 0
    model = xae.load(out)
    from xae.data import load

    x = load(model.config.data).test_x[:4]
    z = model.latent_mean(x)
    assert torch.equal(z, torch.zeros_like(z))  # the decoder never sees the sentence
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]
