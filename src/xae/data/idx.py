"""IDX files (LeCun's format of MNIST and Fashion-MNIST), gzipped or not, checked and cached.

An :class:`IdxSet` names a data set's files with the magic number, dimensions and SHA-256
(of the uncompressed bytes) each must have, and what to tell the user when one is damaged;
:func:`read_folder` reads and verifies all of them from one folder, cached per file state.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xae.data.dataset import Dataset
from xae.data.split import to_float32
from xae.errors import XaeError


@dataclass(frozen=True)
class IdxFile:
    """What one IDX file must hold: its magic number, dimensions and SHA-256 (uncompressed)."""

    magic: int
    dims: tuple[int, ...]
    sha256: str


@dataclass(frozen=True, eq=False)  # hashed by identity: one module-level constant per set
class IdxSet:
    """A data set stored as IDX files.

    Parameters
    ----------
    title : str
        How messages name the data set, e.g. ``"MNIST"``.
    files : dict[str, IdxFile]
        File name (without ``.gz``) -> what it must hold.
    fix_corrupt : str
        What the user should do about a damaged file, ending a message.
    """

    title: str
    files: dict[str, IdxFile]
    fix_corrupt: str


def file_in(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (the plain file first)."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def missing(folder: Path, idx_set: IdxSet) -> list[str]:
    """The names of ``idx_set``'s files that ``folder`` lacks (all of them if it is no folder)."""
    return [name for name in idx_set.files if file_in(folder, name) is None]


def corrupt(path: Path | str, reason: str, idx_set: IdxSet) -> XaeError:
    return XaeError(f"file '{path}' is corrupt or not {idx_set.title}: {reason}; "
                    f"{idx_set.fix_corrupt}")


def gunzip(raw: bytes, source: Path | str, idx_set: IdxSet) -> bytes:
    """Decompress gzip bytes; a truncated or damaged stream is an XaeError naming ``source``."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise corrupt(source, f"it could not be decompressed ({e})", idx_set) from None


def parse(data: bytes, name: str, source: Path | str, idx_set: IdxSet) -> np.ndarray:
    """Check the header, size and SHA-256 of uncompressed IDX bytes and return the array."""
    spec = idx_set.files[name]
    header = 4 + 4 * len(spec.dims)
    if len(data) < header:
        raise corrupt(source, f"it has {len(data)} bytes, fewer than its header", idx_set)
    magic = struct.unpack(">I", data[:4])[0]
    dims = struct.unpack(f">{len(spec.dims)}I", data[4:header])
    if magic != spec.magic or dims != spec.dims:
        raise corrupt(source, f"its header says magic {magic:#x} with dimensions {dims}, "
                              f"expected {spec.magic:#x} with {spec.dims}", idx_set)
    expected = header + int(np.prod(spec.dims))
    if len(data) != expected:
        raise corrupt(source, f"it has {len(data)} bytes (uncompressed), expected {expected}",
                      idx_set)
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise corrupt(source, f"its SHA-256 is {digest}, expected {spec.sha256}", idx_set)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(spec.dims).copy()


def _stamp(folder: Path, idx_set: IdxSet) -> tuple[tuple[str, int, int], ...]:
    """Path, size and mtime of each file, so the in-process cache notices replaced files."""
    stamp = []
    for name in idx_set.files:
        path = file_in(folder, name)
        if path is None:
            raise XaeError(f"{idx_set.title} file '{name}' vanished from '{folder}' while "
                           f"loading; run again")
        stat = path.stat()
        stamp.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return tuple(stamp)


@functools.lru_cache(maxsize=4)
def _decode(idx_set: IdxSet, stamp: tuple[tuple[str, int, int], ...]) -> dict[str, np.ndarray]:
    """Read and verify the files named in ``stamp``; cached per set, folder and file state."""
    arrays = {}
    for (path, _, _), name in zip(stamp, idx_set.files, strict=True):
        raw = Path(path).read_bytes()
        data = gunzip(raw, path, idx_set) if path.endswith(".gz") else raw
        arrays[name] = parse(data, name, path, idx_set)
    return arrays


def read_folder(folder: Path, idx_set: IdxSet) -> dict[str, np.ndarray]:
    """Every file of ``idx_set`` in ``folder``, verified, as uint8 arrays by file name.

    The arrays are shared with later calls for unchanged files: do not modify them.
    """
    return _decode(idx_set, _stamp(folder, idx_set))


#: The four files of MNIST and of Fashion-MNIST (LeCun's names; Fashion-MNIST kept them).
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def image_dataset(name: str, arrays: dict[str, np.ndarray], folder: Path) -> Dataset:
    """A :class:`Dataset` of ``(N, 1, H, W)`` images scaled by 1/255 and int64 labels, from the
    four MNIST-named arrays; ``info["folder"]`` is where they were read."""
    def images(key: str) -> torch.Tensor:
        return to_float32(arrays[key], name).unsqueeze(1)

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key]).to(torch.int64)

    return Dataset(name=name, train_x=images(TRAIN_IMAGES), train_y=labels(TRAIN_LABELS),
                   test_x=images(TEST_IMAGES), test_y=labels(TEST_LABELS),
                   info={"folder": str(folder)})
