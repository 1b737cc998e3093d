"""FID-LeNet: the Fréchet distance in closed form, the shipped classifiers on real MNIST and
Fashion-MNIST, and the sample-quality report of a freshly built model."""
from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import xae
from xae.config import DataConfig
from xae.data import load
from xae.evaluate.fid import (FEATURE_DIM, WEIGHTS_PATH, WEIGHTS_SHA256, accuracy, applicable,
                              features, fid_lenet, frechet_distance, load_classifier,
                              recon_fid, sample_quality)
from xae.evaluate.fid_nets import FEATURE_NETS, feature_net
from xae.evaluate.fid_train import Recipe, save_classifier, train_classifier
from xae.evaluate.report import full_report

MNIST_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                                 reason="the shared MNIST files are not present")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (`make test` installs it when it can)")


@pytest.fixture(scope="module")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The first 2,000 real MNIST test images and labels."""
    ds = load(DataConfig(name="mnist", data_dir=str(MNIST_DIR)))
    return ds.test_x[:2000], ds.test_y[:2000]


@pytest.fixture(scope="module")
def fashion_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The first 2,000 real Fashion-MNIST test images and labels."""
    ds = load(DataConfig(name="fashion-mnist"))
    return ds.test_x[:2000], ds.test_y[:2000]


def _random_spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


# ---------------------------------------------------------------- the Fréchet distance

def test_frechet_distance_of_diagonal_gaussians_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    mu1, mu2 = torch.randn(6, generator=g), torch.randn(6, generator=g)
    s1, s2 = torch.rand(6, generator=g) + 0.1, torch.rand(6, generator=g) + 0.1
    got = frechet_distance(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2))
    expected = ((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()
    assert got == pytest.approx(expected.item(), rel=1e-5)


def test_frechet_distance_of_scaled_full_covariances_matches_the_closed_form():
    # C2 = a² C1: Tr(C1) + a² Tr(C1) − 2a Tr(C1) = (1 − a)² Tr(C1)
    cov, a = _random_spd(8, seed=1), 2.5
    mu = torch.zeros(8, dtype=torch.float64)
    got = frechet_distance(mu, cov, mu + 1.0, a**2 * cov)
    assert got == pytest.approx(8.0 + (1 - a) ** 2 * cov.trace().item(), rel=1e-10)
    assert frechet_distance(mu + 1.0, a**2 * cov, mu, cov) == pytest.approx(got, rel=1e-10)


def test_frechet_distance_of_identical_gaussians_is_zero_even_when_singular():
    f = torch.randn(50, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    f = torch.cat([f, torch.zeros(50, 3, dtype=torch.float64)], dim=1)  # dead features
    mu, cov = f.mean(0), torch.cov(f.T)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-10)
    full = _random_spd(5, seed=3)
    assert frechet_distance(mu[:5], full, mu[:5], full) == pytest.approx(0.0, abs=1e-10)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(xae.XaeError, match="covariances"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))


# ---------------------------------------------------------------- the shipped classifier

def test_shipped_weights_match_their_hash_and_are_small():
    assert hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest() == WEIGHTS_SHA256
    assert WEIGHTS_PATH.stat().st_size < 1_000_000
    for net in FEATURE_NETS.values():
        assert hashlib.sha256(net.path.read_bytes()).hexdigest() == net.sha256, net.data
        assert net.path.stat().st_size < 1_000_000


@pytest.mark.parametrize("data", sorted(FEATURE_NETS))
def test_each_net_records_the_recipe_and_accuracy_it_claims(data: str):
    net = FEATURE_NETS[data]
    with safe_open(str(net.path), "pt") as f:
        meta = json.loads(f.metadata()["recipe"])
    assert float(meta["test_accuracy"]) == pytest.approx(net.test_accuracy, abs=1e-4)
    assert int(meta["epochs"]) == net.recipe.epochs and int(meta["seed"]) == net.recipe.seed
    assert float(meta["lr_decay"]) == net.recipe.lr_decay and meta["threads"] == "1"
    assert meta.get("data", "mnist") == data  # the MNIST file predates the key


def test_the_feature_net_is_chosen_by_data_set():
    assert feature_net("mnist").path == WEIGHTS_PATH
    assert feature_net("fashion-mnist").path.name == "fid_lenet_fashion.safetensors"
    assert feature_net("arrays") is FEATURE_NETS["mnist"]  # no net of its own
    fashion = load_classifier(data="fashion-mnist")
    assert (fashion.pixel_mean, fashion.pixel_std) == (0.2860, 0.3530)  # its data's statistics
    mnist = load_classifier()
    assert not torch.equal(fashion.head.weight, mnist.head.weight)
    for net in FEATURE_NETS.values():
        assert "NOT Inception FID" in net.note and net.path.name in net.note


def test_a_corrupted_copy_of_the_weights_is_refused(tmp_path: Path):
    bad = tmp_path / "fid_lenet.safetensors"
    shutil.copy(WEIGHTS_PATH, bad)
    raw = bytearray(bad.read_bytes())
    raw[-100] ^= 0xFF  # one flipped byte inside the tensor data
    bad.write_bytes(bytes(raw))
    with pytest.raises(xae.XaeError, match="corrupt.*reinstall"):
        load_classifier(bad)
    with pytest.raises(xae.XaeError, match="cannot read"):
        load_classifier(tmp_path / "missing.safetensors")
    with pytest.raises(xae.XaeError, match="FID-LeNet-Fashion weights.*corrupt.*--data "
                                           "fashion-mnist"):
        load_classifier(WEIGHTS_PATH, data="fashion-mnist")  # MNIST's file, Fashion's hash


def test_applicable_only_to_mnist_shaped_data():
    assert applicable((1, 28, 28))
    assert not applicable((1, 8, 8)) and not applicable((784,)) and not applicable((3, 28, 28))


@needs_mnist
def test_classifier_is_accurate_on_real_mnist_test_images(mnist_test):
    x, y = mnist_test
    net = load_classifier()
    assert accuracy(net, x, y, batch_size=300) >= 0.98
    f = features(x[:10], net)
    assert f.shape == (10, FEATURE_DIM) and f.dtype == torch.float64 and (f >= 0).all()


@needs_mnist
def test_training_is_reproducible_and_writes_weights_the_loader_accepts(mnist_test, tmp_path):
    x, y = mnist_test[0][:256], mnist_test[1][:256]
    recipe = Recipe(seed=1, epochs=1, batch_size=64)
    paths = [tmp_path / "a.safetensors", tmp_path / "b.safetensors"]
    digests = [save_classifier(train_classifier(x, y, recipe), p, {"seed": "1"}) for p in paths]
    assert digests[0] == digests[1] == hashlib.sha256(paths[0].read_bytes()).hexdigest()
    net = load_classifier(paths[0], sha256=digests[0])
    assert not net.training and accuracy(net, x, y) > 0.25  # four steps: well above chance
    with pytest.raises(xae.XaeError, match="corrupt"):
        load_classifier(paths[0])  # not the shipped hash


@needs_mnist
def test_fid_lenet_of_a_set_against_itself_is_zero_and_grows_with_damage(mnist_test):
    x, other = mnist_test[0][:500], mnist_test[0][500:1000]
    net = load_classifier()
    scale = torch.cov(features(x, net).T).trace().item()  # the size of a typical distance
    assert fid_lenet(x, x, net) <= 1e-6 * scale
    perm = torch.randperm(500, generator=torch.Generator().manual_seed(0))
    assert fid_lenet(x, x[perm], net) <= 1e-6 * scale  # the order of a set does not matter
    real = fid_lenet(x, other, net)  # two real sets: small, not zero
    noise = 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noisy = fid_lenet(x, (x + noise).clamp(0, 1), net)
    shifted = fid_lenet(x, torch.roll(x, shifts=(3, 3), dims=(2, 3)), net)
    assert 0 < real and noisy > 5 * real and shifted > 5 * real


# ---------------------------------------------------------------- sample_quality

@needs_mnist
def test_sample_quality_of_a_fresh_model_is_finite_and_seeded(mnist_test):
    x, y = mnist_test[0][:300], mnist_test[1][:300]
    cfg = xae.preset("vae", data="mnist", **{"model.mlp.hidden": [32], "model.latent_dim": 4})
    torch.manual_seed(0)
    model = xae.build(cfg)
    state = torch.get_rng_state()
    got = sample_quality(model, x, y, n=200, seed=3, batch_size=128)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    assert set(got) == {"fid_lenet", "recon_accuracy", "real_accuracy", "sample_entropy",
                        "sample_marginal_entropy"}
    assert all(math.isfinite(v) for v in got.values())
    assert got["fid_lenet"] > 0
    assert 0 <= got["sample_entropy"] <= math.log(10) + 1e-9
    assert 0 <= got["sample_marginal_entropy"] <= math.log(10) + 1e-9
    assert got["sample_entropy"] <= got["sample_marginal_entropy"] + 1e-9  # concavity
    assert 0 <= got["recon_accuracy"] <= 1 and got["real_accuracy"] >= 0.98
    assert sample_quality(model, x, y, n=200, seed=3, batch_size=128) == got


@needs_mnist
def test_recon_fid_is_the_fid_of_the_reconstructions_and_zero_for_an_exact_copy(mnist_test):
    x = mnist_test[0][:300]
    cfg = xae.preset("vae", data="mnist", **{"model.mlp.hidden": [32], "model.latent_dim": 4})
    torch.manual_seed(0)
    model = xae.build(cfg)
    net = load_classifier()
    got = recon_fid(model, x, batch_size=128)
    with torch.no_grad():
        assert got == pytest.approx(fid_lenet(model.eval().reconstruct(x), x, net), rel=1e-9)
    assert got > 0 and recon_fid(model, x) == got  # deterministic, whatever the batch
    model.decode = lambda z, **_: x[:z.shape[0]]  # a perfect "reconstruction" of one batch
    assert recon_fid(model, x, batch_size=300) <= 1e-6 * torch.cov(features(x, net).T).trace()


def test_recon_fid_refuses_other_data_shapes():
    model = xae.build(xae.preset("vae", data="digits", **{"model.mlp.hidden": [16]}))
    with pytest.raises(xae.XaeError, match=r"only to \(1, 28, 28\)"):
        recon_fid(model, torch.zeros(4, 1, 8, 8))


def test_sample_quality_refuses_other_data_shapes():
    model = xae.build(xae.preset("vae", data="digits", **{"model.mlp.hidden": [16]}))
    x = torch.zeros(4, 1, 8, 8)
    with pytest.raises(xae.XaeError, match=r"only to \(1, 28, 28\)"):
        sample_quality(model, x, torch.zeros(4, dtype=torch.int64), n=4)


# ---------------------------------------------------------------- Fashion-MNIST

@needs_fashion
def test_the_fashion_classifier_is_accurate_on_real_fashion_test_images(fashion_test):
    x, y = fashion_test
    net = load_classifier(data="fashion-mnist")
    acc = accuracy(net, x, y, batch_size=500)
    assert acc >= 0.88  # on all 10,000: FEATURE_NETS["fashion-mnist"].test_accuracy
    assert accuracy(load_classifier(), x, y) < 0.5  # MNIST's digits net cannot tell clothes


@needs_fashion
def test_a_fashion_model_is_measured_with_the_fashion_net_and_says_so(fashion_test):
    x, y = fashion_test[0][:300], fashion_test[1][:300]
    cfg = xae.preset("vae", data="fashion-mnist", **{"model.mlp.hidden": [32],
                                                     "model.latent_dim": 4})
    torch.manual_seed(0)
    model = xae.build(cfg)
    got = sample_quality(model, x, y, n=200, seed=3, batch_size=128)
    assert got["real_accuracy"] >= 0.85  # the Fashion net's labels, not a digits net's
    data = xae.data.Dataset("fashion-mnist", x, y, x, y)
    rep = full_report(model, data, k=0, fid_samples=200)
    assert rep.metrics["real_accuracy"] == got["real_accuracy"]
    notes = [n for n in rep.notes if n.startswith("fid_lenet:")]
    assert len(notes) == 1 and "fid_lenet_fashion.safetensors" in notes[0]
    assert "NOT Inception FID" in notes[0]
    assert rep.metrics["rfid_lenet"] == pytest.approx(recon_fid(model, x), rel=1e-9)
    assert any(n.startswith("rfid_lenet: reconstructions") for n in rep.notes)


def test_training_for_fashion_uses_its_pixel_statistics():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    net = train_classifier(x, y, Recipe(epochs=1, batch_size=64), data="fashion-mnist")
    assert (net.pixel_mean, net.pixel_std) == (0.2860, 0.3530)
