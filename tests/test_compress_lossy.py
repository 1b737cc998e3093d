"""Lossy compression: the quantized Gaussian latent under the prior, a discrete run's codes under
the uniform and an autoregressive code prior, and JPEG / WebP at a matched rate."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

import xae
from xae.cli import main
from xae.codeprior import CodePriorConfig, CodeTransformer
from xae.compress import compress, decompress, lossy, rd
from xae.data import load as load_data
from xae.model import inference

COMMON = {"model.mlp.hidden": [64], "progress": False, "figures": False, "log_every": 100,
          "train.seed": 0}


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    run = xae.train(xae.preset("vae", latent_dim=4, steps=200, **COMMON),
                    tmp_path_factory.mktemp("lossy") / "vae")
    model = xae.load(run)
    return run, model, load_data(model.config.data).test_x[:120]


@pytest.fixture(scope="module")
def fsq(tmp_path_factory):
    run = xae.train(xae.preset("ae", bottleneck="fsq", prior="codes", latent_dim=8, steps=50,
                               **{"model.fsq.levels": [5, 5]}, **COMMON),
                    tmp_path_factory.mktemp("lossy") / "fsq")
    model = xae.load(run)
    return run, model, load_data(model.config.data).test_x[:70]


def test_gaussian_latent_round_trip_decodes_the_quantized_latent(vae, tmp_path):
    _, model, x = vae
    step = 0.25
    w = compress(model, x, tmp_path / "l.xae", lossy_coding=True, step=step)
    rec, meta = decompress(model, tmp_path / "l.xae")
    assert (meta["mode"], meta["kind"], meta["prior"]) == ("lossy", "gaussian", "normal")
    with inference(model):  # the quantized latent decoded directly
        mean = model.latent_mean(x)
        direct = model.decode(torch.round(mean / step) * step)
    assert torch.allclose(rec, direct, atol=1e-6)
    # the rate is the prior's mass on each bin, Φ((i + ½)Δ) − Φ((i − ½)Δ), plus a word or two
    i = torch.round(mean / step).double().numpy()
    ideal = -np.log2(norm.cdf((i + 0.5) * step) - norm.cdf((i - 0.5) * step)).sum()
    assert ideal <= w.payload_bits <= ideal + 64


def test_a_finer_step_costs_more_and_distorts_less(vae):
    _, model, x = vae
    coarse, fine = rd.model_point(model, x, 1.0), rd.model_point(model, x, 0.05)
    assert fine["bpp"] > coarse["bpp"] and fine["psnr"] > coarse["psnr"]


def test_discrete_codes_under_the_uniform_and_a_fitted_prior(fsq, tmp_path):
    _, model, x = fsq
    tokens = lossy.quantize(model, x, 0.0)
    assert tokens.shape == (70, 4)
    with inference(model):
        direct = model.decode(model.bottleneck.indices_to_z(tokens))
    w = compress(model, x, tmp_path / "u.xae", lossy_coding=True)
    rec, meta = decompress(model, tmp_path / "u.xae")
    assert meta["prior"] == "uniform" and torch.equal(rec, direct)
    assert 70 * 4 * math.log2(25) <= w.payload_bits <= 70 * 4 * math.log2(25) + 64
    with pytest.raises(xae.XaeError, match="discrete.*drop --step"):
        compress(model, x, tmp_path / "s.xae", lossy_coding=True, step=0.5)
    assert not (tmp_path / "s.xae").exists()
    # an autoregressive prior over the 4 tokens (a real transformer, random weights): the
    # decoder runs it position by position, the encoder once, and both agree bit for bit
    torch.manual_seed(0)
    ar = CodeTransformer(CodePriorConfig(vocab=25, length=4, layers=1, dim=32, heads=2))
    model.prior.attach(ar)
    try:
        w = compress(model, x, tmp_path / "f.xae", lossy_coding=True)
        rec, meta = decompress(model, tmp_path / "f.xae")
        with inference(ar):
            ideal = -float(ar.log_prob(tokens).sum()) / math.log(2)
    finally:
        model.prior.ar = None
    assert meta["prior"] == "fitted" and torch.equal(rec, direct)
    assert ideal <= w.payload_bits <= ideal + 64


def test_mosaic_is_undone_exactly_and_jpeg_is_matched_from_below(vae):
    _, _, x = vae
    q = (x * 255).round() / 255  # 8-bit values survive the mosaic exactly
    assert torch.equal(rd.unmosaic(rd.mosaic(q), q), q)
    target = rd.codec_point(x, "JPEG", 50)["bpp"]
    for fmt in rd.FORMATS:
        m = rd.matched(x, fmt, target)
        assert m["matched"] and m["bpp"] <= target
        if m["quality"] < 100:  # the next quality up would go over
            assert rd.codec_point(x, fmt, m["quality"] + 1)["bpp"] > target
    low = rd.matched(x, "WEBP", 1e-6)
    assert not low["matched"] and low["quality"] == 1


def test_cli_lossy_writes_the_reconstructions(vae, tmp_path, capsys):
    run, model, x = vae
    np.save(tmp_path / "x.npy", x.numpy())
    assert main(["compress", str(run), str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.xae"),
                 "--lossy", "--step", "0.5"]) == 0
    assert "PSNR" in capsys.readouterr().out
    assert main(["decompress", str(run), str(tmp_path / "x.xae"), "-o",
                 str(tmp_path / "r.npy")]) == 0
    idx = lossy.quantize(model, x, 0.5)
    assert np.array_equal(np.load(tmp_path / "r.npy"),
                          lossy.reconstruct_codes(model, idx, 0.5).numpy())
    assert main(["compress", str(run), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.xae"),
                 "--lossy", "--step", "9"]) == 2
    assert "(0, 4]" in capsys.readouterr().err and not (tmp_path / "y.xae").exists()
