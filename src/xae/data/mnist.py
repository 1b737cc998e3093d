"""MNIST from its four IDX files (LeCun, Bottou, Bengio & Haffner 1998), gzipped or not.

The files are searched for in ``data.data_dir`` (only there, when it is set), ``$XAE_DATA``
(the folder itself or its ``mnist`` subfolder), ``../shared/data/mnist`` relative to the
current directory and to the repository root, and the cache ``~/.cache/xae/mnist``. When no
folder holds all four files they are downloaded from :data:`MIRRORS` into ``data.data_dir``
(or the cache) with atomic writes. Every file, local or downloaded, is checked against the
SHA-256 of its uncompressed bytes.
"""
from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from xae.config import DataConfig
from xae.data.dataset import Dataset
from xae.data.idx import (TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, IdxFile,
                          IdxSet, gunzip, image_dataset, missing, parse, read_folder)
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


#: The four files, what each must hold, and what to do about a damaged one.
FILES = IdxSet("MNIST", {
    TRAIN_IMAGES: IdxFile(
        0x803, (60000, 28, 28), "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    TRAIN_LABELS: IdxFile(
        0x801, (60000,), "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    TEST_IMAGES: IdxFile(
        0x803, (10000, 28, 28), "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    TEST_LABELS: IdxFile(
        0x801, (10000,), "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}, fix_corrupt="delete it and run again to re-download it, or copy a good one from an MNIST "
               "mirror")

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
            parse(gunzip(raw, url, FILES), name, url, FILES)
            return raw
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError,
                XaeError) as e:
            logger.warning("could not download %s: %s", url, e)
            failures.append(f"{url}: {e}")
    raise XaeError("; ".join(failures) or "no mirrors are configured")


def _download(target: Path, searched: list[Path]) -> None:
    """Download the files missing from ``target`` into it, or raise a helpful XaeError."""
    for name in missing(target, FILES):
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
        if folder.is_dir() and not missing(folder, FILES):
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
    return image_dataset("mnist", read_folder(folder, FILES), folder)
