"""The ``.xae`` file: a header, the coded words, a CRC-32 over both.

Layout, little-endian::

    magic        6 bytes  b"\\x89XAE\\r\\n"
    version      u16      FORMAT_VERSION
    run hash    32 bytes  SHA-256 of the run's weights (exact.weights_hash)
    meta length  u32      then that many bytes of JSON: mode (lossless or lossy), counts,
                          shapes, the coder's settings (lossless: latent bits, block runs,
                          seed words; lossy: kind, prior, step), the input's dtype and shape
    word count   u64      then that many u32 words: the ANS stack, bottom first
    crc32        u32      of every byte before it

A file is refused, with what to do, when it is shorter than its header says (truncated), when
its CRC does not match (corrupted), when its version is another, and when the run decoding it
has other weights than the run that wrote it. It is written atomically.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from xae.errors import XaeError
from xae.fileio import atomic_path

MAGIC = b"\x89XAE\r\n"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<6sH32sI")  # magic, version, run hash, meta length
_COUNT = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def write(path: str | Path, run_hash: bytes, meta: dict[str, Any], words: np.ndarray) -> int:
    """Write the file atomically; returns its size in bytes."""
    text = json.dumps(meta, separators=(",", ":")).encode()
    body = (_HEAD.pack(MAGIC, FORMAT_VERSION, run_hash, len(text)) + text
            + _COUNT.pack(len(words)) + np.asarray(words, dtype="<u4").tobytes())
    data = body + _CRC.pack(zlib.crc32(body))
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return len(data)


def read(path: str | Path, run_hash: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """The metadata and the words of the file at ``path``, checked as the module says."""
    name = f"'{path}'"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise XaeError(f"cannot read {name} ({e.strerror}); give the .xae file that `xae "
                       f"compress` wrote") from None
    if data[:len(MAGIC)] != MAGIC[:len(data)] or len(data) < len(MAGIC):
        raise XaeError(f"{name} is not a compressed file of xae (it does not start with the "
                       f".xae magic bytes); give a file that `xae compress` wrote")
    truncated = XaeError(f"{name} is truncated (shorter than its header says); copy it again "
                         f"or compress the images again")
    if len(data) < _HEAD.size:
        raise truncated
    _, version, stored_hash, meta_len = _HEAD.unpack_from(data)
    if version != FORMAT_VERSION:
        raise XaeError(f"{name} has format version {version}, and this xae reads version "
                       f"{FORMAT_VERSION}; decompress it with the xae that wrote it")
    words_at = _HEAD.size + meta_len + _COUNT.size
    if len(data) < words_at:
        raise truncated
    (count,) = _COUNT.unpack_from(data, words_at - _COUNT.size)
    end = words_at + 4 * count
    if len(data) < end + _CRC.size:
        raise truncated
    if len(data) > end + _CRC.size:
        raise XaeError(f"{name} has {len(data) - end - _CRC.size} bytes after its end; it is "
                       f"damaged: copy it again or compress the images again")
    if zlib.crc32(data[:end]) != _CRC.unpack_from(data, end)[0]:
        raise XaeError(f"{name} is corrupted (its CRC-32 does not match its contents); copy "
                       f"it again or compress the images again")
    if stored_hash != run_hash:
        raise XaeError(f"{name} was compressed with another run (its weights differ from this "
                       f"run's); decompress it with the run that compressed it")
    try:
        meta = json.loads(data[_HEAD.size:_HEAD.size + meta_len])
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise XaeError(f"{name} has a damaged header; compress the images again")
    return meta, np.frombuffer(data, dtype="<u4", count=count, offset=words_at).astype(np.uint32)
