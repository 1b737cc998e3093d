"""MNIST from its four IDX files (LeCun, Bottou, Bengio & Haffner 1998), gzipped or not.

The files are searched for in ``data.data_dir`` (only there, when it is set), ``$XAE_DATA``
(the folder itself or its ``mnist`` subfolder), ``../shared/data/mnist`` relative to the
current directory and to the repository root, and the cache ``~/.cache/xae/mnist``. When no
folder holds all four files they are downloaded from :data:`MIRRORS` into ``data.data_dir``
(or the cache) with atomic writes. Every file, local or downloaded, is checked against the
SHA-256 of its uncompressed bytes.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import logging
import os
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xae.config import DataConfig
from xae.data.dataset import Dataset
from xae.data.split import to_float32
from xae.errors import XaeError
from xae.fileio import atomic_path

logger = logging.getLogger(__name__)

#: Base URLs tried in order when the files are missing; each serves ``<name>.gz``.
MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

#: Seconds to wait for one mirror before trying the next.
DOWNLOAD_TIMEOUT_S: float = 30.0


@dataclass(frozen=True)
class _IdxFile:
    """What one IDX file must hold: its magic number, dimensions and SHA-256 (uncompressed)."""

    magic: int
    dims: tuple[int, ...]
    sha256: str


FILES: dict[str, _IdxFile] = {
    "train-images-idx3-ubyte": _IdxFile(
        0x803, (60000, 28, 28), "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": _IdxFile(
        0x801, (60000,), "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": _IdxFile(
        0x803, (10000, 28, 28), "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": _IdxFile(
        0x801, (10000,), "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

_HOW_TO_FIX = "pass --data-dir (data.data_dir) pointing at a folder with the four IDX files, " \
              "or set XAE_DATA"


def cache_dir() -> Path:
    """The download cache, ``$XDG_CACHE_HOME/xae/mnist`` (default ``~/.cache/xae/mnist``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "xae" / "mnist"


def candidate_dirs(data_dir: str = "") -> list[Path]:
    """The folders searched, in order; ``data_dir``, when given, is the only one."""
    if data_dir:
        return [Path(data_dir).expanduser()]
    found: list[Path] = []
    env = os.environ.get("XAE_DATA", "")
    if env:
        found += [Path(env).expanduser(), Path(env).expanduser() / "mnist"]
    repo_root = Path(__file__).resolve().parents[3]
    found += [Path.cwd() / ".." / "shared" / "data" / "mnist",
              repo_root / ".." / "shared" / "data" / "mnist", cache_dir()]
    unique: dict[Path, Path] = {}
    for folder in found:
        unique.setdefault(folder.resolve(), folder)
    return list(unique)


def _file_in(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (the plain file first)."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _missing(folder: Path) -> list[str]:
    return [name for name in FILES if _file_in(folder, name) is None]


def _corrupt(path: Path | str, reason: str) -> XaeError:
    return XaeError(f"file '{path}' is corrupt or not MNIST: {reason}; delete it and run again "
                    f"to re-download it, or copy a good one from an MNIST mirror")


def _gunzip(raw: bytes, source: Path | str) -> bytes:
    """Decompress gzip bytes; a truncated or damaged stream is an XaeError naming ``source``."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise _corrupt(source, f"it could not be decompressed ({e})") from None


def _parse_idx(data: bytes, name: str, source: Path | str) -> np.ndarray:
    """Check the header, size and SHA-256 of uncompressed IDX bytes and return the array."""
    spec = FILES[name]
    header = 4 + 4 * len(spec.dims)
    if len(data) < header:
        raise _corrupt(source, f"it has {len(data)} bytes, fewer than its header")
    magic = struct.unpack(">I", data[:4])[0]
    dims = struct.unpack(f">{len(spec.dims)}I", data[4:header])
    if magic != spec.magic or dims != spec.dims:
        raise _corrupt(source, f"its header says magic {magic:#x} with dimensions {dims}, "
                               f"expected {spec.magic:#x} with {spec.dims}")
    expected = header + int(np.prod(spec.dims))
    if len(data) != expected:
        raise _corrupt(source, f"it has {len(data)} bytes (uncompressed), expected {expected}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise _corrupt(source, f"its SHA-256 is {digest}, expected {spec.sha256}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(spec.dims).copy()


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Path, size and mtime of each file, so the in-process cache notices replaced files."""
    stamp = []
    for name in FILES:
        path = _file_in(folder, name)
        if path is None:
            raise XaeError(f"MNIST file '{name}' vanished from '{folder}' while loading; "
                           f"run again")
        stat = path.stat()
        stamp.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return tuple(stamp)


@functools.lru_cache(maxsize=4)
def _decode(stamp: tuple[tuple[str, int, int], ...]) -> dict[str, np.ndarray]:
    """Read and verify the four files named in ``stamp``; cached per folder and file state."""
    arrays = {}
    for (path, _, _), name in zip(stamp, FILES, strict=True):
        raw = Path(path).read_bytes()
        data = _gunzip(raw, path) if path.endswith(".gz") else raw
        arrays[name] = _parse_idx(data, name, path)
    return arrays


def _fetch(name: str) -> bytes:
    """Download ``<name>.gz`` from the first mirror that serves bytes with the right checksum.

    Returns the gzipped bytes; raises XaeError with every mirror's failure otherwise.
    """
    failures = []
    for mirror in MIRRORS:
        url = f"{mirror.rstrip('/')}/{name}.gz"
        logger.info("downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                raw = response.read()
            _parse_idx(_gunzip(raw, url), name, url)
            return raw
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError,
                XaeError) as e:
            logger.warning("could not download %s: %s", url, e)
            failures.append(f"{url}: {e}")
    raise XaeError("; ".join(failures) or "no mirrors are configured")


def _download(target: Path, searched: list[Path]) -> None:
    """Download the files missing from ``target`` into it, or raise a helpful XaeError."""
    for name in _missing(target):
        try:
            raw = _fetch(name)
        except XaeError as e:
            places = ", ".join(f"'{p}'" for p in searched)
            raise XaeError(f"MNIST files were not found in {places} and could not be "
                           f"downloaded ({e}); {_HOW_TO_FIX}") from None
        try:
            with atomic_path(target / f"{name}.gz") as tmp:
                tmp.write_bytes(raw)
        except OSError as e:
            raise XaeError(f"could not save MNIST into '{target}' ({e}); {_HOW_TO_FIX} "
                           f"with a writable folder") from None
        logger.info("saved %s", target / f"{name}.gz")


def find_or_download(data_dir: str = "") -> Path:
    """The folder holding all four MNIST files, downloading them when none does.

    Parameters
    ----------
    data_dir : str
        A folder given by the user; when set it is the only place searched and the one
        downloaded into.
    """
    searched = candidate_dirs(data_dir)
    for folder in searched:
        if folder.is_dir() and not _missing(folder):
            return folder
    target = searched[0] if data_dir else cache_dir()
    _download(target, searched)
    return target


def load_mnist(cfg: DataConfig) -> Dataset:
    """Load MNIST with its official 60,000/10,000 split as ``(N, 1, 28, 28)`` images in [0, 1].

    Parameters
    ----------
    cfg : DataConfig
        Uses ``data_dir``; ``test_fraction`` and ``seed`` do not apply (the split is fixed).

    Returns
    -------
    Dataset
        Images scaled by 1/255 and int64 labels 0..9; ``info["folder"]`` is where they came from.
    """
    folder = find_or_download(cfg.data_dir)
    logger.info("reading MNIST from %s", folder)
    arrays = _decode(_stamp(folder))
    return Dataset(
        name="mnist",
        train_x=to_float32(arrays["train-images-idx3-ubyte"], "MNIST").unsqueeze(1),
        train_y=torch.from_numpy(arrays["train-labels-idx1-ubyte"]).to(torch.int64),
        test_x=to_float32(arrays["t10k-images-idx3-ubyte"], "MNIST").unsqueeze(1),
        test_y=torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).to(torch.int64),
        info={"folder": str(folder)},
    )
