"""The explorer's files, as one table from URL path to content.

The live server answers GETs from this table only (a client never names a file on disk), and
``--static`` writes the same table to a folder, so both serve the same page:

- ``index.html``, ``style.css`` and the scripts of :data:`PAGE`: the page
  (``xae/explore/static``);
- ``vendor/…``: onnxruntime-web's files (:mod:`xae.explore.runtime`);
- ``runs.json``: what the page needs to know of each run, and whether a decode endpoint exists;
- ``run/<i>/map.bin``, ``run/<i>/prior.bin``, ``run/<i>/posterior.bin`` (where q(z|x) is a
  Gaussian), ``run/<i>/decoder.onnx``, ``run/<i>/encoder.onnx``, ``run/<i>/prior.onnx`` (a
  flow prior's ε → z), and for a hierarchy ``run/<i>/lower.bin`` and ``run/<i>/descend.onnx``
  (:mod:`xae.explore.hierarchy`): each run's arrays (little-endian float32) and its graphs.

A static folder also holds ``.xae-static`` (:data:`MARKER`). ``--static`` replaces its folder
whole, so it writes only to a new or empty folder or to one holding that marker: never over a
user's files, a run, or a folder above a run or above the current folder.
"""
from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xae.errors import XaeError
from xae.explore import runtime
from xae.explore.runs import RunView
from xae.fileio import atomic_dir, replaceable_folder
from xae.runfiles import STATIC_MARKER as MARKER  # what --static may replace

if TYPE_CHECKING:
    from xae.explore.sweep import SweepView

STATIC = Path(__file__).with_name("static")
PAGE = ("index.html", "priors.js", "pad.js", "hierarchy.js", "app.js", "sweep.js", "tour.js",
        "style.css")
DECODE_ENDPOINT = "api/decode"
SCORE_ENDPOINT = "api/score"
MAX_DECODE_BATCH = 256  # latent vectors per decode request
MAX_BODY_BYTES = 1 << 20  # bytes per request body
MARKER_FORMAT = "xae-static"


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


def build_site(views: list[RunView], *, live: bool, need_runtime: bool = False,
               sweep: SweepView | None = None) -> dict[str, Asset]:
    """The table for ``views``; ``live`` adds the server's decode endpoint to ``runs.json``.
    Without onnxruntime-web the page decodes through the endpoint (an error if ``need_runtime``).
    With ``sweep`` (whose loaded runs are ``views``), ``runs.json`` has a ``sweep`` entry: the
    folder, the swept keys and every member in slider order, each with its swept values, its
    index in ``runs`` (null for a failed one) and why it failed (:mod:`xae.explore.sweep`).
    """
    ort = runtime.require_ort_dir() if need_runtime else runtime.ort_dir()
    hierarchies = [v.name for v in views if v.lower is not None]
    if ort is None and hierarchies:
        raise XaeError(f"run {hierarchies[0]} is a hierarchy: the page completes the top group "
                       "its map shows with the groups below by a graph that only the browser's "
                       f"onnxruntime-web runs, which is not installed; {runtime.HOW}")
    files = {name: Asset(STATIC / name, _type(name)) for name in PAGE}
    if ort is not None:
        files.update({f"vendor/{f}": Asset(ort / f, _type(f)) for f in runtime.FILES})
    index = {
        "runs": [v.meta(i) for i, v in enumerate(views)],
        "runtime": f"vendor/{runtime.FILES[0]}" if ort is not None else None,
        "runtime_missing": None if ort is not None else runtime.HOW,
        "decode_endpoint": DECODE_ENDPOINT if live else None,
        "score_endpoint": SCORE_ENDPOINT if live else None,
        "max_decode_batch": MAX_DECODE_BATCH,
        "sweep": sweep.to_json(views) if sweep is not None else None,
    }
    files["runs.json"] = Asset(json.dumps(index).encode(), _type("runs.json"))
    for i, v in enumerate(views):
        files[f"run/{i}/map.bin"] = Asset(v.map_bytes(), _type(".bin"))
        files[f"run/{i}/prior.bin"] = Asset(v.prior_bytes(), _type(".bin"))
        files[f"run/{i}/decoder.onnx"] = Asset(v.decoder_onnx, _type(".onnx"))
        if v.page_prior.graph is not None:  # a flow prior's ε → z (xae.explore.priors)
            files[v.page_prior.file(i)] = Asset(v.page_prior.graph, _type(".onnx"))
        files[f"run/{i}/encoder.onnx"] = Asset(v.encoder_onnx, _type(".onnx"))
        if v.posterior is not None:
            files[f"run/{i}/posterior.bin"] = Asset(v.posterior_bytes(), _type(".bin"))
        if v.lower is not None:
            files[f"run/{i}/lower.bin"] = Asset(v.lower_bytes(), _type(".bin"))
            files[f"run/{i}/descend.onnx"] = Asset(v.descend_onnx, _type(".onnx"))
    return files


def check_static_target(out_dir: str | Path, runs: Iterable[str | Path]) -> Path:
    """The resolved folder ``--static out_dir`` may replace whole (see
    :func:`xae.fileio.replaceable_folder`: never a user's files or a run), or an XaeError."""
    return replaceable_folder(out_dir, "--static", MARKER, MARKER_FORMAT, runs)


def write_static(views: list[RunView], out_dir: str | Path,
                 sweep: SweepView | None = None) -> Path:
    """Write a self-contained folder that any static file server can serve (whole or not at
    all; see :func:`check_static_target` for the folders it refuses). It needs
    onnxruntime-web, since there is no server to decode."""
    from xae import __version__

    out = check_static_target(out_dir, [v.path for v in views] + ([sweep.path] if sweep else []))
    files = build_site(views, live=False, need_runtime=True, sweep=sweep)
    marker = {"format": MARKER_FORMAT, "version": 1, "xae": __version__}
    try:
        with atomic_dir(out) as tmp:
            for name, asset in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(asset.read())
            (tmp / MARKER).write_text(json.dumps(marker) + "\n")
    except OSError as e:
        raise XaeError(f"cannot write --static {out_dir} ({e.strerror}); pick a folder you "
                       "can write to") from None
    return out
