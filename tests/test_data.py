"""Data loading on real data: digits, MNIST (IDX), user arrays, synthetic pPCA, binarization."""
from __future__ import annotations

import functools
import gzip
import http.server
import math
import pickle
import shutil
import threading
from pathlib import Path
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sk_load_digits

import xae.data.mnist as mnist
from xae.config import DataConfig
from xae.data import BINARIZE_MODES, Dataset, binarize, load
from xae.errors import XaeError

MNIST_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
UNREACHABLE = "http://127.0.0.1:9/"
needs_mnist = pytest.mark.skipif(not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
                                 reason="the shared MNIST files are not present")


# ---------------------------------------------------------------- digits

def test_digits_shape_range_split() -> None:
    ds = load(DataConfig(name="digits", test_fraction=0.2, seed=0))
    assert isinstance(ds, Dataset)
    assert ds.shape == (1, 8, 8)
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert ds.test_x.shape[0] == round(1797 * 0.2) == 359
    assert ds.train_x.shape[0] == 1797 - 359
    both = torch.cat([ds.train_x, ds.test_x])
    assert both.min() == 0.0 and both.max() == 1.0
    assert torch.cat([ds.train_y, ds.test_y]).bincount().tolist() == np.bincount(
        sk_load_digits().target).tolist()


def test_digits_are_scikit_learns_read_without_importing_it() -> None:
    """The file is read directly (no scikit-learn import): the images and labels are exactly
    what sklearn.datasets.load_digits returns, in its order, before the split."""
    from xae.data.digits import digits_file

    with gzip.open(digits_file(), "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    bunch = sk_load_digits()
    assert np.array_equal(rows[:, :-1].reshape(-1, 8, 8), bunch.images)
    assert np.array_equal(rows[:, -1].astype(np.int64), bunch.target)
    ds = load(DataConfig(name="digits", test_fraction=0.2, seed=0))  # split: the same rows
    ours = np.column_stack([16 * torch.cat([ds.train_x, ds.test_x]).flatten(1).double().numpy(),
                            torch.cat([ds.train_y, ds.test_y]).numpy()])
    theirs = np.column_stack([bunch.data, bunch.target])
    assert np.array_equal(ours[np.lexsort(ours.T)], theirs[np.lexsort(theirs.T)])


def test_digits_split_is_deterministic_and_seeded() -> None:
    a = load(DataConfig(name="digits", seed=3))
    b = load(DataConfig(name="digits", seed=3))
    c = load(DataConfig(name="digits", seed=4))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_test_fraction_outside_unit_interval_is_an_error(fraction: float) -> None:
    with pytest.raises(XaeError, match="test_fraction"):
        load(DataConfig(name="digits", test_fraction=fraction))


def test_dataset_to_moves_every_tensor() -> None:
    ds = load(DataConfig(name="linear-gaussian", n=50, dim=4, true_latent_dim=2))
    moved = ds.to("meta")
    assert moved is not ds and ds.train_x.device.type == "cpu"
    assert all(t.device.type == "meta" for t in (moved.train_x, moved.test_x, moved.info["W"],
                                                 moved.info["mu"], moved.info["cov"]))
    assert moved.info["sigma"] == ds.info["sigma"] and moved.shape == (4,)
    assert "linear-gaussian" in repr(ds)


# ---------------------------------------------------------------- MNIST

@pytest.fixture(scope="module")
def mnist_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real copy of the four gzipped MNIST files in a temporary folder."""
    folder = tmp_path_factory.mktemp("xae_data") / "mnist"
    shutil.copytree(MNIST_DIR, folder)
    return folder


def _linked_copy(src: Path, dst: Path) -> Path:
    """A folder of symlinks to the shared MNIST files (cheap; replace one to corrupt it)."""
    dst.mkdir(parents=True)
    for f in src.glob("*.gz"):
        (dst / f.name).symlink_to(f.resolve())
    return dst


@needs_mnist
def test_mnist_from_shared_folder() -> None:
    ds = load(DataConfig(name="mnist", data_dir=str(MNIST_DIR)))
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.shape == (1, 28, 28)
    assert ds.train_y.bincount().tolist() == TRAIN_COUNTS
    assert ds.test_y.bincount().tolist() == TEST_COUNTS
    assert abs(float(ds.train_x.mean()) - 0.1307) < 1e-3
    assert abs(float(ds.train_x.std()) - 0.3081) < 1e-3
    assert ds.train_x.min() == 0.0 and ds.train_x.max() == 1.0


@needs_mnist
def test_mnist_from_data_dir_copy(mnist_copy: Path) -> None:
    ds = load(DataConfig(name="mnist", data_dir=str(mnist_copy)))
    assert Path(ds.info["folder"]) == mnist_copy
    assert ds.train_y.bincount().tolist() == TRAIN_COUNTS


@needs_mnist
@pytest.mark.parametrize("sub", ["", "mnist"])
def test_mnist_found_through_xae_data(mnist_copy: Path, sub: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAE_DATA", str(mnist_copy if sub else mnist_copy.parent))
    ds = load(DataConfig(name="mnist"))
    assert Path(ds.info["folder"]).resolve() == mnist_copy.resolve()


@needs_mnist
def test_mnist_reads_uncompressed_files(tmp_path: Path) -> None:
    folder = _linked_copy(MNIST_DIR, tmp_path / "mnist")
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / f"{name}.gz").unlink()
        (folder / name).write_bytes(gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes()))
    ds = load(DataConfig(name="mnist", data_dir=str(folder)))
    assert ds.test_y.bincount().tolist() == TEST_COUNTS


def _corrupt_copy(tmp_path: Path, name: str, payload: bytes) -> Path:
    folder = _linked_copy(MNIST_DIR, tmp_path / "mnist")
    (folder / f"{name}.gz").unlink()
    (folder / f"{name}.gz").write_bytes(payload)
    return folder


@needs_mnist
def test_mnist_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    raw = (MNIST_DIR / "train-labels-idx1-ubyte.gz").read_bytes()
    folder = _corrupt_copy(tmp_path, "train-labels-idx1-ubyte", raw[: len(raw) // 2])
    with pytest.raises(XaeError, match=r"train-labels-idx1-ubyte\.gz' is corrupt or not MNIST"):
        load(DataConfig(name="mnist", data_dir=str(folder)))


@needs_mnist
def test_mnist_flipped_bytes_fail_the_checksum(tmp_path: Path) -> None:
    data = bytearray(gzip.decompress((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    data[100] ^= 0xFF  # still a valid gzip stream and IDX header: only SHA-256 can tell
    folder = _corrupt_copy(tmp_path, "t10k-labels-idx1-ubyte", gzip.compress(bytes(data)))
    with pytest.raises(XaeError, match=r"t10k-labels-idx1-ubyte\.gz.*SHA-256.*re-download"):
        load(DataConfig(name="mnist", data_dir=str(folder)))


@needs_mnist
def test_mnist_truncated_payload_fails_the_size_check(tmp_path: Path) -> None:
    data = gzip.decompress((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())
    folder = _corrupt_copy(tmp_path, "t10k-labels-idx1-ubyte", gzip.compress(data[:-10]))
    with pytest.raises(XaeError, match=r"t10k-labels-idx1-ubyte\.gz.*bytes"):
        load(DataConfig(name="mnist", data_dir=str(folder)))


def test_mnist_missing_and_offline_is_a_clear_error(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "MIRRORS", [UNREACHABLE])
    target = tmp_path / "nowhere"
    with pytest.raises(XaeError) as info:
        load(DataConfig(name="mnist", data_dir=str(target)))
    msg = str(info.value)
    assert "not found" in msg and str(target) in msg and "could not be downloaded" in msg
    assert "--data-dir" in msg and "XAE_DATA" in msg
    assert not target.exists()  # nothing half-written


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server, the way a mirror serves files; yields (url, folder served)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@needs_mnist
def test_mnist_downloads_verifies_and_saves(tmp_path: Path, mirror: tuple[str, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    url, served = mirror
    for f in MNIST_DIR.glob("*.gz"):
        shutil.copy(f, served / f.name)
    monkeypatch.setattr(mnist, "MIRRORS", [UNREACHABLE, url])  # the first one fails
    target = tmp_path / "downloaded"
    ds = load(DataConfig(name="mnist", data_dir=str(target)))
    assert ds.train_y.bincount().tolist() == TRAIN_COUNTS
    assert sorted(p.name for p in target.iterdir()) == sorted(
        p.name for p in MNIST_DIR.glob("*.gz"))  # no temporary files left


@needs_mnist
def test_mnist_download_with_bad_checksum_keeps_nothing(tmp_path: Path,
                                                        mirror: tuple[str, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url, served = mirror
    data = bytearray(gzip.decompress((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    data[-1] ^= 0x01
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(data)))
    target = _linked_copy(MNIST_DIR, tmp_path / "partial")
    (target / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(mnist, "MIRRORS", [url])
    with pytest.raises(XaeError, match="SHA-256"):
        load(DataConfig(name="mnist", data_dir=str(target)))
    assert len(list(target.iterdir())) == 3


# ---------------------------------------------------------------- arrays

def _arrays(path: Path, **kw: object) -> Dataset:
    return load(DataConfig(name="arrays", path=str(path), **kw))


def _rows(ds: Dataset) -> torch.Tensor:
    """Row ids stored in feature 0, train then test."""
    return torch.cat([ds.train_x, ds.test_x])[:, 0].round().long()


def test_arrays_npy_roundtrip(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    x[:, 0] = np.arange(50)
    np.save(tmp_path / "d.npy", x)
    ds = _arrays(tmp_path / "d.npy", test_fraction=0.3)
    assert ds.shape == (3,) and ds.train_y is None and ds.test_x.shape[0] == 15
    ids = _rows(ds)
    assert sorted(ids.tolist()) == list(range(50))
    assert torch.equal(torch.cat([ds.train_x, ds.test_x]), torch.from_numpy(x[ids]).float())


@pytest.mark.parametrize("keys", [("x", "y"), ("images", "labels"), ("data", "targets"),
                                  ("arr_0", "y")])
def test_arrays_npz_with_labels(tmp_path: Path, keys: tuple[str, str]) -> None:
    x = np.tile(np.arange(40, dtype=np.float32)[:, None], (1, 4))
    y = np.arange(40) % 3
    np.savez(tmp_path / "d.npz", **{keys[0]: x, keys[1]: y})
    ds = _arrays(tmp_path / "d.npz")
    ids = _rows(ds)
    assert torch.equal(torch.cat([ds.train_y, ds.test_y]), torch.from_numpy(y[ids]))
    assert ds.train_y.dtype == torch.int64


def test_arrays_images_hwc_transposed_and_uint8_scaled(tmp_path: Path) -> None:
    x = np.random.default_rng(1).integers(0, 200, size=(20, 6, 5, 3), dtype=np.uint8)
    x[:, 0, 0, 0] = np.arange(20)  # row id, at channel 0, pixel (0, 0)
    x[:, 1, 1, 1] = 255
    np.savez(tmp_path / "d.npz", x=x)
    ds = _arrays(tmp_path / "d.npz", test_fraction=0.25)
    assert ds.shape == (3, 6, 5) and ds.test_x.shape[0] == 5
    got = torch.cat([ds.train_x, ds.test_x])
    ids = (got[:, 0, 0, 0] * 255).round().long()
    assert sorted(ids.tolist()) == list(range(20))
    expected = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(got, expected[ids])
    assert bool((got[:, 1, 1, 1] == 1.0).all())


@pytest.mark.parametrize("shape,expected", [((10, 7, 9), (1, 7, 9)), ((10, 2, 7, 9), (2, 7, 9)),
                                            ((10, 3, 8, 3), (3, 8, 3))])
def test_arrays_image_layouts(tmp_path: Path, shape: tuple[int, ...],
                              expected: tuple[int, ...]) -> None:
    np.save(tmp_path / "d.npy", np.zeros(shape, dtype=bool))
    assert _arrays(tmp_path / "d.npy").shape == expected


def test_arrays_nan_is_an_error_naming_count_and_split(tmp_path: Path) -> None:
    x = np.ones((10, 4))
    x[:, 1] = np.nan
    np.save(tmp_path / "d.npy", x)
    with pytest.raises(XaeError, match=r"data set 'arrays' has 8 NaN values in train_x; clean"):
        _arrays(tmp_path / "d.npy")


def test_arrays_inf_is_an_error(tmp_path: Path) -> None:
    x = np.ones((10, 4))
    x[:, 2] = np.inf
    np.save(tmp_path / "d.npy", x)
    with pytest.raises(XaeError, match="infinite"):
        _arrays(tmp_path / "d.npy")


def test_arrays_pickled_objects_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(XaeError, match="could not be read"):
        _arrays(tmp_path / "obj.npy")
    np.savez(tmp_path / "obj.npz", x=np.array([[1], "a"], dtype=object))
    with pytest.raises(XaeError, match="could not be read"):
        _arrays(tmp_path / "obj.npz")


class _Exploit:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def test_arrays_plain_pickle_does_not_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil.npy").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(XaeError, match="could not be read"):
        _arrays(tmp_path / "evil.npy")
    assert not marker.exists()


@pytest.mark.parametrize("case,match", [
    ("missing", "does not exist"), ("suffix", "extension"), ("empty", "data.path"),
    ("garbage", "could not be read"), ("one_d", "reshape 1-D"), ("no_data", "no data array"),
    ("label_len", "one integer label per sample"), ("label_float", "not integers"),
    ("label_str", "not integers"), ("strings", "not numbers"), ("too_few", "at least 2"),
])
def test_arrays_bad_input_says_what_to_do(tmp_path: Path, case: str, match: str) -> None:
    p = tmp_path / "d.npz"
    x = np.zeros((10, 3))
    if case == "missing":
        p = tmp_path / "absent.npy"
    elif case == "suffix":
        p = tmp_path / "d.csv"
        p.write_text("1,2,3\n")
    elif case == "empty":
        p = Path("")
    elif case == "garbage":
        p = tmp_path / "d.npy"
        p.write_bytes(b"\x93NUMPY garbage")
    elif case == "one_d":
        np.savez(p, x=np.zeros(10))
    elif case == "no_data":
        np.savez(p, a=x, b=x)
    elif case == "label_len":
        np.savez(p, x=x, y=np.zeros(9, dtype=int))
    elif case == "label_float":
        np.savez(p, x=x, y=np.full(10, 0.5))
    elif case == "label_str":
        np.savez(p, x=x, y=np.array(["cat"] * 10))
    elif case == "strings":
        np.savez(p, x=np.full((10, 3), "a"))
    elif case == "too_few":
        np.savez(p, x=np.zeros((3, 2)))
    with pytest.raises(XaeError, match=match):
        load(DataConfig(name="arrays", path="" if case == "empty" else str(p)))


def test_arrays_integral_float_labels_are_accepted(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 2)), y=np.arange(10.0).reshape(10, 1))
    ds = _arrays(tmp_path / "d.npz")
    assert sorted(torch.cat([ds.train_y, ds.test_y]).tolist()) == list(range(10))


# ---------------------------------------------------------------- linear-gaussian

def test_linear_gaussian_covariance_matches_closed_form() -> None:
    sigma = 0.5
    ds = load(DataConfig(name="linear-gaussian", n=200_000, dim=5, true_latent_dim=2,
                         noise_std=sigma, test_fraction=0.01, seed=1))
    w, mu = ds.info["W"], ds.info["mu"]
    assert w.shape == (5, 2) and mu.shape == (5,) and ds.shape == (5,)
    assert ds.train_x.shape == (200_000, 5) and ds.test_x.shape == (2000, 5)
    assert ds.train_y is None and ds.test_y is None
    closed = w @ w.T + sigma**2 * torch.eye(5)
    assert torch.allclose(ds.info["cov"], closed, atol=1e-6)
    sample_cov = torch.cov(ds.train_x.double().T).float()
    assert (sample_cov - closed).abs().max() < 0.03 * closed.diagonal().max()
    assert (ds.train_x.mean(0) - mu).abs().max() < 0.03


def test_linear_gaussian_log_likelihood_by_hand() -> None:
    ds = load(DataConfig(name="linear-gaussian", n=100, dim=6, true_latent_dim=3,
                         noise_std=0.3, test_fraction=0.5, seed=7))
    x = ds.test_x.double().numpy()
    cov = ds.info["cov"].double().numpy()
    diff = x - ds.info["mu"].double().numpy()
    _, logdet = np.linalg.slogdet(cov)
    maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    by_hand = np.mean(-0.5 * (6 * math.log(2 * math.pi) + logdet + maha))
    assert ds.info["log_likelihood_test"] == pytest.approx(by_hand, rel=1e-5)
    assert ds.info["sigma"] == 0.3


def test_linear_gaussian_is_seeded_and_checks_its_config() -> None:
    cfg = DataConfig(name="linear-gaussian", n=30, dim=4)
    assert torch.equal(load(cfg).info["W"], load(cfg).info["W"])
    assert not torch.equal(load(cfg).info["W"],
                           load(DataConfig(name="linear-gaussian", n=30, dim=4, seed=1)).info["W"])
    for key, value in (("noise_std", 0.0), ("dim", 0), ("n", -5), ("true_latent_dim", 0)):
        with pytest.raises(XaeError, match=f"data.{key} must be a positive"):
            load(DataConfig(name="linear-gaussian", **{key: value}))
    with pytest.raises(XaeError, match=r"\[0, 1\]"):
        load(DataConfig(name="linear-gaussian", n=30, dim=4, binarize="static"))


# ---------------------------------------------------------------- binarize

def test_binarize_static_is_deterministic_and_unbiased() -> None:
    gray = load(DataConfig(name="digits"))
    a = load(DataConfig(name="digits", binarize="static"))
    b = load(DataConfig(name="digits", binarize="static"))
    c = load(DataConfig(name="digits", binarize="static", seed=1))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x)
    assert not torch.equal(a.train_x, c.train_x)
    for x in (a.train_x, a.test_x):
        assert set(x.unique().tolist()) <= {0.0, 1.0} and x.dtype == torch.float32
    assert abs(float(a.train_x.mean() - gray.train_x.mean())) < 0.01
    assert a.info["binarize"] == "static"


def test_binarize_dynamic_fixes_test_and_keeps_train() -> None:
    gray = load(DataConfig(name="digits"))
    dyn = load(DataConfig(name="digits", binarize="dynamic"))
    static = load(DataConfig(name="digits", binarize="static"))
    assert torch.equal(dyn.train_x, gray.train_x)
    assert torch.equal(dyn.test_x, load(DataConfig(name="digits", binarize="dynamic")).test_x)
    assert torch.equal(dyn.test_x, static.test_x)  # one evaluation set for both protocols
    assert set(dyn.test_x.unique().tolist()) == {0.0, 1.0}
    assert abs(float(dyn.test_x.mean() - gray.test_x.mean())) < 0.02


def test_binarize_function() -> None:
    x = torch.rand(4000, 3)
    draw = binarize(x, torch.Generator().manual_seed(0))
    assert draw.shape == x.shape and draw.dtype == x.dtype
    assert torch.equal(draw, binarize(x, torch.Generator().manual_seed(0)))
    assert set(draw.unique().tolist()) == {0.0, 1.0}
    assert abs(float(draw.mean() - x.mean())) < 0.02
    with pytest.raises(XaeError, match=r"\[0, 1\]"):
        binarize(x + 0.5)
    with pytest.raises(XaeError, match=r"\[0, 1\]"):
        binarize(torch.tensor([0.5, float("nan")]))


def test_binarize_unknown_mode_lists_the_valid_ones() -> None:
    with pytest.raises(XaeError) as info:
        load(DataConfig(name="digits", binarize="dinamic"))
    assert all(mode in str(info.value) for mode in BINARIZE_MODES)


# ---------------------------------------------------------------- names

@pytest.mark.parametrize("name,near", [("mnsit", "mnist"), ("digit", "digits"),
                                       ("MNIST", "mnist"), ("linear_gaussian", "linear-gaussian")])
def test_unknown_name_suggests_nearest(name: str, near: str) -> None:
    with pytest.raises(XaeError) as info:
        load(DataConfig(name=name))
    msg = str(info.value)
    assert f"did you mean '{near}'" in msg
    assert all(valid in msg for valid in ("digits", "mnist", "arrays", "linear-gaussian"))
