"""``xae score`` and its scores on a tiny run over the bundled digits: each score's direction
on data whose answer is known, the complexity score's arithmetic, the likelihood ratio against
its background, and the command's outputs and refusals."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import xae
from xae.anomaly import fit_background, score_samples, separation
from xae.anomaly.background import MARKER, perturb
from xae.anomaly.complexity import code_length_bits
from xae.cli import main
from xae.data import load
from xae.errors import XaeError
from xae.evaluate.likelihood import log_likelihood

N, K = 120, 8
ALL = ["nll", "elbo", "recon", "sqerr", "llr", "complexity"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A VAE with the discretized likelihood, 300 steps on the digits quantized to 8 bits
    (its grid, k/255) and stored as an arrays file (about 2 s)."""
    folder = tmp_path_factory.mktemp("anomaly")
    digits = load_digits()
    x = np.round(digits.data / 16 * 255).astype(np.float32).reshape(-1, 1, 8, 8) / 255
    np.savez(folder / "digits8.npz", x=x, y=digits.target)
    cfg = xae.preset("vae", **{"model.mlp.hidden": [64], "latent_dim": 4, "steps": 300,
                               "train.seed": 0, "progress": False, "figures": False,
                               "log_every": 100, "model.likelihood": "discretized",
                               "data.name": "arrays", "data.path": str(folder / "digits8.npz")})
    return xae.train(cfg, folder / "run")


def test_the_discretized_likelihood_refuses_data_off_the_8_bit_grid(run, tmp_path):
    """The raw digits have 17 levels (k/16): training and scoring refuse them, naming the fix."""
    cfg = xae.preset("vae", **{"steps": 2, "progress": False, "figures": False,
                               "model.likelihood": "discretized"})
    with pytest.raises(XaeError, match=r"8-bit data.*round\(255·x\)/255"):
        xae.train(cfg, tmp_path / "never")
    assert not (tmp_path / "never" / "model.safetensors").exists()
    with pytest.raises(XaeError, match="off that grid"):
        score_samples(xae.load(run), torch.full((2, 1, 8, 8), 0.5), ["nll"], k=2)


@pytest.fixture(scope="module")
def background(run):
    return fit_background(run, rate=0.2)


@pytest.fixture(scope="module")
def digits(run):
    return load(xae.load(run).config.data).test_x[:N]


def _outliers(digits: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "inverted":
        return 1 - digits
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, digits.shape, generator=g).float() / 255  # on the 8-bit grid


@pytest.mark.parametrize("kind", ["noise", "inverted"])
def test_every_score_ranks_noise_and_inverted_digits_above_digits(run, background, digits, kind):
    model, bg = xae.load(run), xae.load(background)
    x = torch.cat([digits, _outliers(digits, kind)])
    y = np.r_[np.zeros(N), np.ones(N)]
    cols = score_samples(model, x, ALL, k=K, background=bg)
    assert list(cols) == ["nll_nats", "neg_elbo_nats", "recon_nats", "sqerr_sum", "llr_nats",
                          "complexity_png_bits"]
    for name, values in cols.items():
        assert values.shape == (2 * N,)
        assert separation(values, y)["auroc"] > 0.9, name


def test_complexity_is_minus_log2_p_minus_the_png_bits(run, digits):
    import io

    from PIL import Image

    model, x = xae.load(run), digits[:1]
    cols = score_samples(model, x, ["nll", "complexity"], k=K, seed=3)
    img = (x[0, 0].numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img, "L").save(buf, format="PNG", compress_level=9)
    want = cols["nll_nats"][0] / math.log(2) - 8 * len(buf.getvalue())
    assert cols["complexity_png_bits"][0] == pytest.approx(want, rel=1e-12)
    assert code_length_bits(x)[0] == 8 * len(buf.getvalue())


def test_the_likelihood_ratio_is_the_difference_of_the_two_nlls(run, background, digits):
    model, bg = xae.load(run), xae.load(background)
    x = digits[:20]
    llr = score_samples(model, x, ["llr"], k=K, background=bg, seed=5)["llr_nats"]
    want = -log_likelihood(model, x, K, seed=5) + log_likelihood(bg, x, K, seed=5)
    np.testing.assert_allclose(llr, want.double().numpy(), rtol=1e-6)
    same = score_samples(model, x, ["llr"], k=K, background=model)["llr_nats"]
    assert np.abs(same).max() == 0.0  # a model against itself: the same draws, ratio 1


def test_the_background_is_the_same_config_on_perturbed_images(run, background):
    import json

    fg, bg = xae.load(run), xae.load(background)
    assert bg.config.model == fg.config.model and bg.config.train == fg.config.train
    meta = json.loads((background / MARKER).read_text())
    assert meta["perturb"] == 0.2 and meta["foreground"] == str(run.resolve())
    x = torch.full((200, 1, 8, 8), 128 / 255)
    p = perturb(x, 0.2, torch.Generator().manual_seed(0))
    changed = float((p != x).double().mean())
    assert changed == pytest.approx(0.2 * 255 / 256, abs=0.01)  # μ, less draws of 128 itself
    assert torch.equal(p, (p * 255).round() / 255)  # every value on the 8-bit grid
    with pytest.raises(XaeError, match="already holds files"):
        fit_background(run, background)


def test_the_wrong_shape_is_refused_naming_both(run):
    with pytest.raises(XaeError, match=r"\(1, 28, 28\).*\(1, 8, 8\)"):
        score_samples(xae.load(run), torch.rand(3, 1, 28, 28), ["nll"], k=2)
    with pytest.raises(XaeError, match="background model"):
        score_samples(xae.load(run), torch.rand(3, 1, 8, 8), ["llr"], k=2)


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_score_writes_the_csv_the_metrics_and_the_histograms(run, digits, tmp_path, capsys):
    anomalies = tmp_path / "inverted.npy"
    np.save(anomalies, (1 - digits[:30]).numpy())
    out = tmp_path / "s.csv"
    assert main(["score", str(run), "--anomalies", str(anomalies), "--limit", "40", "--score",
                 "nll", "recon", "--k", "4", "-o", str(out), "--no-progress"]) == 0
    rows = _read(out)
    assert len(rows) == 70 and [r["label"] for r in rows] == ["0"] * 40 + ["1"] * 30
    assert list(rows[0]) == ["index", "label", "nll_nats", "recon_nats"]
    printed = capsys.readouterr().out
    nll = np.array([float(r["nll_nats"]) for r in rows])
    auc = separation(nll, np.array([int(r["label"]) for r in rows]))["auroc"]
    assert f"{auc:.4f}" in printed and auc > 0.9
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_anomalous_classes_and_a_fitted_background(run, tmp_path, capsys):
    out, bg = tmp_path / "c.csv", tmp_path / "bg"
    assert main(["score", str(run), "--limit", "50", "--score", "llr", "--k", "2",
                 "--fit-background", "--background", str(bg), "--perturb", "0.1",
                 "--anomalous-classes", "0,1", "-o", str(out), "--no-progress"]) == 0
    y = load(xae.load(run).config.data).test_y[:50].numpy()
    assert [int(r["label"]) for r in _read(out)] == np.isin(y, [0, 1]).astype(int).tolist()
    assert (bg / MARKER).is_file() and "AUROC" in capsys.readouterr().out


@pytest.mark.parametrize("extra, words", [
    (["--data", "{big}"], "(1, 28, 28)"),
    (["--labels", "{short}"], "there are 20 samples"),
    (["--score", "llr"], "needs a background model"),
    (["--score", "nll", "--anomalous-classes", "3", "--labels", "{short}"], "give one"),
    (["--data", "{flat}", "--anomalous-classes", "3"], "has no class labels"),
])
def test_bad_input_exits_2_and_writes_nothing(run, tmp_path, capsys, extra, words):
    np.save(tmp_path / "big.npy", np.zeros((4, 28, 28), np.float32))
    np.save(tmp_path / "short.npy", np.zeros(7, np.int64))
    np.save(tmp_path / "flat.npy", np.zeros((4, 1, 8, 8), np.float32))
    files = {k: str(tmp_path / f"{k}.npy") for k in ("big", "short", "flat")}
    out = tmp_path / "s.csv"
    args = [a.format(**files) for a in extra]
    assert main(["score", str(run), "--limit", "20", "--k", "2", "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xae: error: ") and words in err and len(err.splitlines()) == 1
    assert not out.exists() and not (tmp_path / "s.png").exists()


def test_an_unknown_score_exits_2_and_writes_nothing(run, tmp_path, capsys):
    out = tmp_path / "s.csv"
    with pytest.raises(SystemExit) as e:
        main(["score", str(run), "--score", "density", "-o", str(out)])
    assert e.value.code == 2 and "invalid choice: 'density'" in capsys.readouterr().err
    assert not out.exists()


def test_the_reconstruction_scores_are_at_the_posterior_mode(run, digits):
    model, x = xae.load(run), digits[:10]
    cols = score_samples(model, x, ["recon", "sqerr"])
    with torch.no_grad():
        theta = model.decode_params(model.latent_mean(x))
        want_nll = -model.likelihood.log_prob(x, theta)
        want_sq = ((x - model.reconstruct(x)) ** 2).flatten(1).sum(1)
    np.testing.assert_allclose(cols["recon_nats"], want_nll.double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(cols["sqerr_sum"], want_sq.double().numpy(), rtol=1e-6)


def test_the_runs_own_source_is_read_with_its_settings(run, tmp_path):
    out = tmp_path / "t.csv"
    assert main(["score", str(run), "--split", "train", "--limit", "60",
                 "--score", "sqerr", "--anomalous-classes", "3", "-o", str(out),
                 "--no-progress"]) == 0
    y = load(xae.load(run).config.data).train_y[:60].numpy()
    assert [int(r["label"]) for r in _read(out)] == (y == 3).astype(int).tolist()
