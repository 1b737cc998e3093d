"""Fashion-MNIST from Debian's dataset-fashion-mnist: the real files, a clear error without
them, and a short training run on the command line."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import TINY, run_xae

from xae.config import DataConfig
from xae.data import load
from xae.data.fashion import DEBIAN_DIR, PACKAGE
from xae.errors import XaeError
from xae.registry import KNOWN_SHAPES

needs_fashion = pytest.mark.skipif(
    not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Debian's {PACKAGE} is not installed (`make test` installs it when it can)")


def _missing_message(msg: str, folder: Path) -> None:
    assert str(folder) in msg and PACKAGE in msg and "make test" in msg
    assert "apt-get install" in msg and "--data-dir" in msg


@needs_fashion
def test_the_real_files_load_with_their_official_split() -> None:
    ds = load(DataConfig(name="fashion-mnist"))
    assert ds.name == "fashion-mnist" and Path(ds.info["folder"]) == DEBIAN_DIR
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.shape == KNOWN_SHAPES["fashion-mnist"] == (1, 28, 28)
    assert ds.train_y.bincount().tolist() == [6000] * 10  # balanced classes
    assert ds.test_y.bincount().tolist() == [1000] * 10
    assert ds.train_x.min() == 0.0 and ds.train_x.max() == 1.0
    # the published pixel statistics, far from MNIST's 0.1307 / 0.3081
    assert abs(float(ds.train_x.mean()) - 0.2860) < 1e-3
    assert abs(float(ds.train_x.std()) - 0.3530) < 1e-3


@needs_fashion
def test_a_data_dir_is_read_instead_of_the_debian_folder(tmp_path: Path) -> None:
    for f in DEBIAN_DIR.glob("*.gz"):
        (tmp_path / f.name).symlink_to(f)
    raw = bytearray(gzip.decompress((DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))  # plain files go first
    ds = load(DataConfig(name="fashion-mnist", data_dir=str(tmp_path)))
    assert Path(ds.info["folder"]) == tmp_path and ds.test_y.bincount().tolist() == [1000] * 10
    raw[100] ^= 0xFF  # a valid header, one wrong label: only the SHA-256 can tell
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(XaeError, match=r"t10k-labels-idx1-ubyte' is corrupt or not "
                                       r"Fashion-MNIST: its SHA-256.*--reinstall"):
        load(DataConfig(name="fashion-mnist", data_dir=str(tmp_path)))


def test_an_empty_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(XaeError) as info:
        load(DataConfig(name="fashion-mnist", data_dir=str(tmp_path)))
    _missing_message(str(info.value), tmp_path)
    assert "lacks train-images-idx3-ubyte" in str(info.value)
    gone = tmp_path / "nowhere"
    with pytest.raises(XaeError, match="does not exist"):
        load(DataConfig(name="fashion-mnist", data_dir=str(gone)))
    assert not gone.exists()  # nothing written, nothing downloaded


def test_the_cli_says_what_to_install_and_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = run_xae("train", "--data", "fashion-mnist", "--data-dir", str(tmp_path), "--steps", "2",
                "--no-progress", "--out", str(out))
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("xae: error: ") and "Traceback" not in p.stderr
    _missing_message(p.stderr, tmp_path)
    assert not out.exists()


@needs_fashion
def test_a_short_cli_run_on_fashion_mnist_learns(tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = run_xae("train", "--preset", "vae", "--data", "fashion-mnist", "--steps", "40",
                "--seed", "0", "--no-progress", "--out", str(out),
                "--set", *TINY, "model.latent_dim=4", "train.figures=false")
    assert p.returncode == 0, p.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["name"] == "fashion-mnist" and cfg["model"]["data_shape"] == [1, 28, 28]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 40
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"], [r["loss"] for r in rows]
