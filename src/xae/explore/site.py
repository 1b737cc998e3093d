"""The explorer's files, as one table from URL path to content.

The live server answers GETs from this table only (a client never names a file on disk), and
``--static`` writes the same table to a folder, so both serve the same page:

- ``index.html``, ``app.js``, ``style.css``: the page (``xae/explore/static``);
- ``vendor/…``: onnxruntime-web's files (:mod:`xae.explore.runtime`);
- ``runs.json``: what the page needs to know of each run, and whether a decode endpoint exists;
- ``run/<i>/map.bin``, ``run/<i>/prior.bin``, ``run/<i>/decoder.onnx``: each run's arrays
  (little-endian float32) and its decoder.
"""
from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from xae.explore import runtime
from xae.explore.runs import RunView
from xae.fileio import atomic_dir

STATIC = Path(__file__).with_name("static")
PAGE = ("index.html", "app.js", "style.css")
DECODE_ENDPOINT = "api/decode"
MAX_DECODE_BATCH = 256  # latent vectors per decode request
MAX_BODY_BYTES = 1 << 20  # bytes per request body


@dataclass(frozen=True)
class Asset:
    body: bytes | Path
    content_type: str

    def read(self) -> bytes:
        return self.body.read_bytes() if isinstance(self.body, Path) else self.body


def _type(name: str) -> str:
    if name.endswith((".js", ".mjs")):
        return "text/javascript; charset=utf-8"
    if name.endswith((".bin", ".onnx")):
        return "application/octet-stream"
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return kind + ("; charset=utf-8" if kind.startswith("text/") or kind.endswith("json") else "")


def build_site(views: list[RunView], *, live: bool, need_runtime: bool = False) -> dict[str, Asset]:
    """The table for ``views``; ``live`` adds the server's decode endpoint to ``runs.json``.
    Without onnxruntime-web the page decodes through the endpoint (an error if ``need_runtime``).
    """
    ort = runtime.require_ort_dir() if need_runtime else runtime.ort_dir()
    files = {name: Asset(STATIC / name, _type(name)) for name in PAGE}
    if ort is not None:
        files.update({f"vendor/{f}": Asset(ort / f, _type(f)) for f in runtime.FILES})
    index = {
        "runs": [v.meta(i) for i, v in enumerate(views)],
        "runtime": f"vendor/{runtime.FILES[0]}" if ort is not None else None,
        "runtime_missing": None if ort is not None else runtime.HOW,
        "decode_endpoint": DECODE_ENDPOINT if live else None,
        "max_decode_batch": MAX_DECODE_BATCH,
    }
    files["runs.json"] = Asset(json.dumps(index).encode(), _type("runs.json"))
    for i, v in enumerate(views):
        files[f"run/{i}/map.bin"] = Asset(v.map_bytes(), _type(".bin"))
        files[f"run/{i}/prior.bin"] = Asset(v.prior_bytes(), _type(".bin"))
        files[f"run/{i}/decoder.onnx"] = Asset(v.decoder_onnx, _type(".onnx"))
    return files


def write_static(views: list[RunView], out_dir: str | Path) -> Path:
    """Write a self-contained folder that any static file server can serve (whole or not at
    all). It needs onnxruntime-web, since there is no server to decode."""
    files = build_site(views, live=False, need_runtime=True)
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        for name, asset in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(asset.read())
    return out
