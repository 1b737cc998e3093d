"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28x28 grey images of clothing, 10 classes.

The four IDX files are read from ``data.data_dir`` when it is set, else from
:data:`DEBIAN_DIR`, where Debian's ``dataset-fashion-mnist`` package puts them (``make test``
installs it, as it installs Chromium). Nothing is downloaded. Every file is checked against
the SHA-256 of its uncompressed bytes.
"""
from __future__ import annotations

import logging
from pathlib import Path

from xae.config import DataConfig
from xae.data.dataset import Dataset
from xae.data.idx import (TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, IdxFile,
                          IdxSet, image_dataset, missing, read_folder)
from xae.errors import XaeError

logger = logging.getLogger(__name__)

#: Where Debian's ``dataset-fashion-mnist`` installs the files.
DEBIAN_DIR: Path = Path("/usr/share/datasets/fashion-mnist")

#: The Debian package holding the files.
PACKAGE: str = "dataset-fashion-mnist"

#: The class of each label 0..9 (the data set's README).
CLASSES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                            "Shirt", "Sneaker", "Bag", "Ankle boot")

_INSTALL = (f"install Debian's {PACKAGE} (`make test` does, or `sudo apt-get install "
            f"{PACKAGE}`), or pass --data-dir (data.data_dir) pointing at a folder with the "
            f"four Fashion-MNIST IDX files")

#: The four files, what each must hold, and what to do about a damaged one.
FILES = IdxSet("Fashion-MNIST", {
    TRAIN_IMAGES: IdxFile(
        0x803, (60000, 28, 28), "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    TRAIN_LABELS: IdxFile(
        0x801, (60000,), "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    TEST_IMAGES: IdxFile(
        0x803, (10000, 28, 28), "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    TEST_LABELS: IdxFile(
        0x801, (10000,), "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}, fix_corrupt=f"reinstall Debian's {PACKAGE} (`sudo apt-get install --reinstall {PACKAGE}`) "
               f"or replace it with a good copy")


def find(data_dir: str = "") -> Path:
    """The folder holding the four files: ``data_dir`` when given, else :data:`DEBIAN_DIR`.

    Raises
    ------
    XaeError
        Naming the folder, the files it lacks and how to get them.
    """
    folder = Path(data_dir).expanduser() if data_dir else DEBIAN_DIR
    lacking = missing(folder, FILES)
    if lacking:
        what = "does not exist" if not folder.is_dir() else \
            f"lacks {', '.join(f'{n}(.gz)' for n in lacking)}"
        raise XaeError(f"Fashion-MNIST files not found: '{folder}' {what}; {_INSTALL}")
    return folder


def load_fashion_mnist(cfg: DataConfig) -> Dataset:
    """Load Fashion-MNIST with its official 60,000/10,000 split as ``(N, 1, 28, 28)`` images.

    Parameters
    ----------
    cfg : DataConfig
        Uses ``data_dir``; ``test_fraction`` and ``seed`` do not apply (the split is fixed).

    Returns
    -------
    Dataset
        Images in [0, 1] (scaled by 1/255) and int64 labels 0..9 (named in :data:`CLASSES`);
        ``info["folder"]`` is where they came from.
    """
    folder = find(cfg.data_dir)
    logger.info("reading Fashion-MNIST from %s", folder)
    return image_dataset("fashion-mnist", read_folder(folder, FILES), folder)
