"""Where the page's ONNX runtime (onnxruntime-web, from the npm registry) lives on disk.

``make web`` (part of ``make test``) runs ``npm ci --prefix web`` in the checkout, which puts
the version pinned in ``web/package-lock.json`` under ``web/node_modules``. ``XAE_ORT_DIR``
points elsewhere (a ``dist`` folder of onnxruntime-web). The page loads these files from the
explorer's own server or static folder: nothing is fetched from the internet.
"""
from __future__ import annotations

import os
from pathlib import Path

from xae.errors import XaeError

# The single-threaded WebAssembly build: the script defining the global ``ort``, the module it
# imports, and the WebAssembly binary (threads would need cross-origin isolation headers that
# a plain static file server does not send).
FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
_CHECKOUT = Path(__file__).resolve().parents[3]
HOW = ("run `make web` in the xae checkout (npm ci --prefix web) or set XAE_ORT_DIR to the "
       "dist folder of an onnxruntime-web install")


def ort_dir() -> Path | None:
    """The folder holding :data:`FILES`, or None when onnxruntime-web is not installed."""
    env = os.environ.get("XAE_ORT_DIR")
    candidates = [Path(env)] if env else [_CHECKOUT / "web" / "node_modules" / "onnxruntime-web"
                                          / "dist"]
    for d in candidates:
        if all((d / f).is_file() for f in FILES):
            return d
    if env:
        raise XaeError(f"XAE_ORT_DIR={env} does not hold {', '.join(FILES)}; {HOW}")
    return None


def require_ort_dir() -> Path:
    d = ort_dir()
    if d is None:
        raise XaeError(f"onnxruntime-web is not installed, and the page needs it to decode "
                       f"without a server; {HOW}")
    return d
