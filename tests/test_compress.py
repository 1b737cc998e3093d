"""Lossless compression: BB-ANS through a tiny Bernoulli VAE on binarized digits, the buckets,
the .xae file and the command line."""
from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pytest
import torch
from scipy.stats import norm

import xae
from xae.cli import main
from xae.compress import bbans, compress, decompress
from xae.compress.buckets import centres, edges, posterior_masses
from xae.data import load as load_data
from xae.evaluate.likelihood import likelihood_report


@pytest.fixture(scope="session")
def bern_run(tmp_path_factory):
    """A Bernoulli VAE (4 latents, one hidden layer of 64) on dynamically binarized digits,
    400 steps (about two seconds), and its fixed binarized test images."""
    cfg = xae.preset("vae", **{"model.mlp.hidden": [64], "latent_dim": 4, "steps": 400,
                               "train.seed": 0, "progress": False, "figures": False,
                               "log_every": 200, "data.binarize": "dynamic"})
    run = xae.train(cfg, tmp_path_factory.mktemp("compress") / "run")
    model = xae.load(run)
    return run, model, load_data(model.config.data).test_x


def test_bucket_masses_sum_to_one_never_vanish_and_match_the_cdf():
    mean = np.array([0.0, 1.3, -2.0, 9.0, -40.0, 0.2])
    std = np.array([1.0, 0.1, 0.02, 1e-4, 1e-6, 3.0])
    for bits in (1, 4, 8):
        q = posterior_masses(mean, std, bits)
        assert q.shape == (6, 2 ** bits)
        assert np.allclose(q.sum(-1), 1.0, atol=1e-12)
        assert (q > 0).all()
        e = edges(bits)  # the closed form for the well-conditioned rows
        direct = norm.cdf((e[1:] - mean[:2, None]) / std[:2, None]) \
            - norm.cdf((e[:-1] - mean[:2, None]) / std[:2, None])
        assert np.allclose(q[:2], direct, atol=1e-12)
    # the prior itself gives every bucket 1/K; the centres are the buckets' prior medians
    assert np.allclose(posterior_masses(np.zeros(1), np.ones(1), 8), 1 / 256, atol=1e-12)
    assert np.allclose(norm.cdf(centres(3)), (np.arange(8) + 0.5) / 8)
    # far in a tail, the mass sits in the last bucket, none is lost to rounding
    far = posterior_masses(np.array([9.0]), np.array([1e-4]), 8)[0]
    assert far.argmax() == 255 and far[255] == pytest.approx(1.0)


def test_a_narrow_posterior_in_the_tail_keeps_its_precision():
    """Between 5.5 and 6.5 deviations the mass is ~1.9e-8: the upper-tail form keeps it."""
    q = posterior_masses(np.array([0.0]), np.array([1.0]), 1)  # two buckets: (-inf, 0), (0, inf)
    assert q[0].tolist() == pytest.approx([0.5, 0.5])
    mean, std = np.array([-5.0]), np.array([1.0])
    q = posterior_masses(mean, std, 1)[0]
    assert q[1] == pytest.approx(norm.sf(5.0), rel=1e-9)


def test_lossless_round_trip_is_exact_and_the_rate_meets_the_elbo(bern_run, tmp_path):
    run, model, test_x = bern_run
    x = test_x[:300]
    written = compress(model, x, tmp_path / "t.xae")
    back, meta = decompress(model, tmp_path / "t.xae")
    assert torch.equal(back, x)
    assert meta["mode"] == "lossless" and sum(bbans.blocks_of(meta["runs"])) == 300
    # bits-back's promise: the images cost their −ELBO (of the continuous latent, measured
    # here by K = 200 posterior samples, independently of the coder); 8-bit buckets and
    # 24-bit ANS probabilities cost a little more
    neg_elbo = likelihood_report(model, x, k=200).summary()["neg_elbo_k"]
    target = neg_elbo / (math.prod(x.shape[1:]) * math.log(2))
    assert written.data_bits_per_dim == pytest.approx(target, rel=0.03)
    assert written.startup_bits == 32 * meta["seed"] > 0


def test_the_chain_is_order_exact_for_odd_blocks_and_coarse_buckets(bern_run):
    _, model, test_x = bern_run
    x = test_x[:37]
    for bits, block in [(2, 5), (12, 1)]:
        chain = bbans.encode(model, x, bits=bits, block=block)
        assert max(s for s, _ in chain.runs) <= block
        assert torch.equal(bbans.decode(model, chain, (1, 8, 8)), x)


def test_runs_that_cannot_code_losslessly_are_refused(trained, bern_run):
    _, model, _ = bern_run
    with pytest.raises(xae.XaeError, match="not binary.*binarize first"):
        compress(model, torch.full((3, 1, 8, 8), 0.5), "/nonexistent/never.xae")
    with pytest.raises(xae.XaeError, match=r"shape \(3, 1, 28, 28\).*\(1, 8, 8\)"):
        compress(model, torch.zeros(3, 1, 28, 28), "/nonexistent/never.xae")
    ae = xae.train(xae.preset("ae", **{"model.mlp.hidden": [16], "latent_dim": 2, "steps": 2,
                                       "progress": False, "figures": False}),
                   trained.parent / "ae")
    with pytest.raises(xae.XaeError, match="one diagonal Gaussian latent"):
        compress(xae.load(ae), torch.zeros(3, 1, 8, 8), "/nonexistent/never.xae")


# ---- the file and the command line ---------------------------------------------------------

@pytest.fixture
def coded(bern_run, tmp_path, capsys):
    run, model, test_x = bern_run
    np.save(tmp_path / "x.npy", test_x[:50].numpy().astype(bool)[:, 0])  # (N, 8, 8) bool
    assert main(["compress", str(run), str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "x.xae"), "--elbo-k", "0"]) == 0
    return run, tmp_path, capsys.readouterr().out


def test_the_cli_gives_back_the_array_it_read(coded, capsys):
    run, tmp, out = coded
    assert "bits/dim" in out and "start-up bits" in out
    assert main(["decompress", str(run), str(tmp / "x.xae"), "-o", str(tmp / "y.npy")]) == 0
    x, y = np.load(tmp / "x.npy"), np.load(tmp / "y.npy")
    assert y.dtype == np.bool_ and y.shape == (50, 8, 8) and np.array_equal(x, y)


def _refused(capsys, run, file, out, match):
    assert main(["decompress", str(run), str(file), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err, err
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.suffix == ".tmp"]


def test_damaged_files_are_refused_and_nothing_is_written(coded, capsys, tmp_path):
    run, tmp, _ = coded
    data = (tmp / "x.xae").read_bytes()
    capsys.readouterr()
    (tmp / "cut.xae").write_bytes(data[:-9])
    _refused(capsys, run, tmp / "cut.xae", tmp / "o1.npy", "truncated")
    (tmp / "head.xae").write_bytes(data[:20])
    _refused(capsys, run, tmp / "head.xae", tmp / "o2.npy", "truncated")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    (tmp / "bad.xae").write_bytes(bytes(flipped))
    _refused(capsys, run, tmp / "bad.xae", tmp / "o3.npy", "corrupted")
    v2 = bytearray(data)
    v2[6] = 2
    (tmp / "v2.xae").write_bytes(bytes(v2))
    _refused(capsys, run, tmp / "v2.xae", tmp / "o4.npy", "format version 2")
    (tmp / "not.xae").write_bytes(b"PK\x03\x04 a zip file")
    _refused(capsys, run, tmp / "not.xae", tmp / "o5.npy", "not a compressed file")


def test_a_file_from_another_run_is_refused(coded, capsys, tmp_path):
    run, tmp, _ = coded
    other = tmp_path / "other"
    shutil.copytree(run, other)
    model = xae.load(other)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    from xae.fileio import save_safetensors
    from xae.runfiles import WEIGHTS

    save_safetensors(model, other / WEIGHTS)
    capsys.readouterr()
    _refused(capsys, other, tmp / "x.xae", tmp / "o.npy", "another run")


def test_bad_inputs_to_compress_exit_2_with_one_line(bern_run, tmp_path, capsys):
    run, _, test_x = bern_run
    np.save(tmp_path / "grey.npy", test_x[:5].numpy() * 0.5)
    np.save(tmp_path / "big.npy", np.zeros((4, 28, 28), bool))
    cases = [([str(tmp_path / "grey.npy")], "binarize first"),
             ([str(tmp_path / "big.npy")], "(1, 8, 8)"),
             (["digits"], "--split test"),
             (["digits", "--split", "train"], "binarize first"),
             ([str(tmp_path / "grey.npy"), "--step", "0.5"], "add --lossy"),
             ([str(tmp_path / "big.npy"), "--bits", "20"], "from 1 to 12")]
    for extra, match in cases:
        out = tmp_path / "o.xae"
        assert main(["compress", str(run), *extra, "-o", str(out)]) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err, (extra, err)
        assert not out.exists()


def test_xae_imports_without_constriction_and_the_cli_says_how_to_install_it(bern_run, tmp_path):
    """constriction is an optional extra: a Python where it cannot be imported (its module
    entry set to None, which makes `import constriction` raise ImportError) still imports
    xae and builds the CLI; compressing says what to install, exit 2, nothing written."""
    import subprocess
    import sys

    from conftest import SUBPROCESS_ENV

    run, _, _ = bern_run
    code = ("import sys; sys.modules['constriction'] = None\n"
            "import xae, xae.compress, xae.cli\n"
            f"sys.exit(xae.cli.main(['compress', {str(run)!r}, 'digits', '--split', 'test', "
            f"'-o', {str(tmp_path / 'o.xae')!r}]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**__import__("os").environ, **SUBPROCESS_ENV}, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "pip install 'xae[compress]'" in p.stderr and p.stderr.count("\n") == 1
    assert not (tmp_path / "o.xae").exists()


def test_a_spatial_gaussian_code_of_a_conv_vae_round_trips(tmp_path):
    """The conv-vae preset's code is a Gaussian at each position of a map (4×2×2 on the 8×8
    digits): the posterior is read per position, the convolutions run in float64."""
    cfg = xae.preset("conv-vae", **{"model.latent_dim": 16, "steps": 30, "progress": False,
                                    "figures": False, "log_every": 30,
                                    "data.binarize": "static"})
    model = xae.load(xae.train(cfg, tmp_path / "conv"))
    x = load_data(model.config.data).test_x[:40]
    chain = bbans.encode(model, x, block=8)
    assert torch.equal(bbans.decode(model, chain, (1, 8, 8)), x)


def test_a_chain_that_derails_under_another_torch_says_which_torch_wrote_it(bern_run, tmp_path):
    """A different torch build may round float64 differently and derail the decoder; the
    error then names both versions (here the file claims torch 1.0.0 and one word is off)."""
    from xae.compress.exact import weights_hash
    from xae.compress.fileformat import read, write

    _, model, test_x = bern_run
    compress(model, test_x[:40], tmp_path / "t.xae")
    meta, words = read(tmp_path / "t.xae", weights_hash(model))
    words = words.copy()
    words[len(words) // 2] ^= 0x00F0F0F0
    write(tmp_path / "old.xae", weights_hash(model), {**meta, "torch": "1.0.0"}, words)
    with pytest.raises(xae.XaeError, match=re.escape(f"torch 1.0.0 and this is torch {torch.__version__}")):
        decompress(model, tmp_path / "old.xae")
