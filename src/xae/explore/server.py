"""The explorer's local HTTP server: the site's files and a decode endpoint.

- ``GET`` serves only the entries of the site table (:func:`xae.explore.site.build_site`);
  any other path, ``..`` included, is a 404. Nothing on disk is named by the client.
- ``POST /api/decode`` with ``{"run": i, "z": [[...D floats...], ...]}`` decodes with the
  run's torch model and answers ``{"shape": [B, ...], "x": [...]}``: the page's fallback when
  onnxruntime-web is missing, and the reference the browser's decode is tested against.
  Only finite vectors of the run's latent size are accepted, at most ``MAX_DECODE_BATCH`` of
  them in a body of at most ``MAX_BODY_BYTES``.
- ``POST /api/score`` with ``{"run": i, "x": [...the input's values, flat...]}`` answers the
  input's −ELBO and anomaly score (:mod:`xae.explore.scoring`): for what the user draws.
- Bad requests get a 4xx status and ``{"error": message}``. Bound to loopback (the default),
  the server also refuses requests for other host names (DNS rebinding).
- Under load: a listen backlog of ``BACKLOG`` connections, a thread per connection, a client
  silent for ``CONNECTION_TIMEOUT`` seconds is dropped, and a client that goes away mid-answer
  (broken pipe, reset) is dropped quietly.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import math
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from xae.errors import XaeError
from xae.explore.runs import RunView
from xae.explore.scoring import Scorer
from xae.explore.site import (DECODE_ENDPOINT, MAX_BODY_BYTES, MAX_DECODE_BATCH, SCORE_ENDPOINT,
                              Asset)

log = logging.getLogger(__name__)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
BACKLOG = 1024  # pending connections (the OS caps it at net.core.somaxconn)
F32_MAX = float(np.finfo(np.float32).max)
CONNECTION_TIMEOUT = 10.0  # seconds a connection may sit idle mid-request before it is dropped


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _request(body: bytes, views: list[RunView], key: str, form: str) -> tuple[int, Any]:
    """The run index and the value of ``key`` of a JSON body ``{"run": i, key: ...}``."""
    try:
        req = json.loads(body)
    except RecursionError:
        raise BadRequest(400, "the body's JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):  # int digits past Python's limit are a ValueError
        raise BadRequest(400, f'the body must be JSON: {{"run": index, "{key}": {form}}}') from None
    if not isinstance(req, dict) or set(req) != {"run", key}:
        raise BadRequest(400, f'the body must be an object with exactly the keys "run" and '
                         f'"{key}"')
    run = req["run"]
    if isinstance(run, bool) or not isinstance(run, int) or not 0 <= run < len(views):
        small = isinstance(run, int) and not isinstance(run, bool) and abs(run) < 10**9
        got = repr(run) if small else f"a value of type {type(run).__name__}"  # no huge echo
        raise BadRequest(400, f'"run" must be an index from 0 to {len(views) - 1}, got {got}')
    return run, req[key]


def _numbers(row: list, name: str) -> None:
    """:class:`BadRequest` unless every item of ``row`` is a finite number within float32."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
        raise BadRequest(400, f"{name} must hold only finite numbers")
    try:
        if not all(math.isfinite(v) for v in row):
            raise BadRequest(400, f"{name} must hold only finite numbers")
        small = all(abs(v) <= F32_MAX for v in row)
    except OverflowError:  # an integer beyond any float
        small = False
    if not small:
        raise BadRequest(400, f"{name} holds values too large for float32")


def parse_decode(body: bytes, views: list[RunView]) -> tuple[RunView, np.ndarray]:
    """The run and the (B, D) float32 batch a decode request asks for, or :class:`BadRequest`."""
    run, z = _request(body, views, "z", "[[...], ...]")
    view, d = views[run], views[run].latent_dim
    if not isinstance(z, list) or not z:
        raise BadRequest(400, '"z" must be a non-empty list of latent vectors')
    if len(z) > MAX_DECODE_BATCH:
        raise BadRequest(413, f'"z" has {len(z)} vectors; at most {MAX_DECODE_BATCH} per request')
    for i, row in enumerate(z):
        if not isinstance(row, list) or len(row) != d:
            got = f"length {len(row)}" if isinstance(row, list) else type(row).__name__
            raise BadRequest(400, f"z[{i}] must be a list of {d} numbers (the latent size of "
                             f"run {run}), got {got}")
        _numbers(row, f"z[{i}]")
    return view, np.asarray(z, dtype=np.float32)


def parse_score(body: bytes, views: list[RunView]) -> tuple[int, np.ndarray]:
    """The run index and the one input (the run's data shape, float32) a score request
    sends, flattened as ``"x"``, or :class:`BadRequest`."""
    run, x = _request(body, views, "x", "[... the input's values ...]")
    shape = views[run].data_shape
    size = int(np.prod(shape))
    if not isinstance(x, list) or len(x) != size:
        got = f"{len(x)} values" if isinstance(x, list) else type(x).__name__
        raise BadRequest(400, f'"x" must be a flat list of {size} numbers (one input of '
                         f"run {run}'s shape {list(shape)}), got {got}")
    _numbers(x, '"x"')
    return run, np.asarray(x, dtype=np.float32).reshape(shape)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_handler(files: dict[str, Asset], views: list[RunView], loopback: bool) -> type:
    lock = threading.Lock()  # one torch job (decode, score) at a time
    scorers: dict[int, Scorer] = {}

    def scorer(run: int) -> Scorer:  # made at the first score request of each run
        if run not in scorers:
            scorers[run] = Scorer(views[run].model, views[run].test_x)
        return scorers[run]

    class Handler(BaseHTTPRequestHandler):
        server_version = "xae-explore"
        sys_version = ""
        default_request_version = "HTTP/1.0"  # so that errors on the request line get a status

        def setup(self) -> None:
            self.timeout = CONNECTION_TIMEOUT  # read here, so that a test can lower it
            super().setup()

        def parse_request(self) -> bool:
            line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            if len(line.split()) not in (0, 3):  # HTTP/0.9 (no version) or garbage: answer now
                self.requestline, self.command, self.request_version = line, None, "HTTP/1.0"
                self.send_error(400, "bad request line; expected METHOD PATH HTTP/1.x")
                return False
            return super().parse_request()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
            log.debug("%s %s", self.address_string(), format % args)

        def send_error(self, code: int, message: str | None = None,
                       explain: str | None = None) -> None:
            # the base class answers 501 to unknown methods; those are the client's error
            code = 405 if code == 501 else code
            self._json(code, {"error": message or HTTPStatus(code).phrase}, close=True)

        def _json(self, status: int, obj: Any, close: bool = False) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _host_ok(self) -> bool:
            if not loopback:
                return True
            host = (self.headers.get("Host") or "").strip().lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name in LOOPBACK_NAMES:
                return True
            self._json(403, {"error": f"this server answers only to {', '.join(LOOPBACK_NAMES)}"
                             f", not to the host {host!r}"}, close=True)
            return False

        def _path(self) -> str:
            return urlsplit(self.path).path.lstrip("/") or "index.html"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if not self._host_ok():
                return
            name = self._path()
            asset = files.get(name)
            if asset is None:
                post = name in (DECODE_ENDPOINT, SCORE_ENDPOINT)
                msg = (f"{name.split('/')[-1]} takes a POST" if post else
                       "no such file; this server serves only the explorer's own files")
                self._json(405 if post else 404, {"error": msg})
                return
            body = asset.read()
            self.send_response(200)
            self.send_header("Content-Type", asset.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

        def do_POST(self) -> None:  # noqa: N802
            if not self._host_ok():
                return
            if self._path() not in (DECODE_ENDPOINT, SCORE_ENDPOINT):
                self._json(405 if self._path() in files else 404,
                           {"error": f"POST only to /{DECODE_ENDPOINT} or /{SCORE_ENDPOINT}"},
                           close=True)
                return
            try:
                length = self.headers.get("Content-Length")
                if length is None:
                    raise BadRequest(411, "a Content-Length header is required")
                if not (length.isascii() and length.isdigit()):
                    raise BadRequest(400, f"bad Content-Length {length[:40]!r}")
                if len(length) > 12 or int(length) > MAX_BODY_BYTES:
                    raise BadRequest(413, f"the body is {length[:40]} bytes; at most "
                                     f"{MAX_BODY_BYTES}")
                body = self.rfile.read(int(length))
                if self._path() == SCORE_ENDPOINT:
                    run, x = parse_score(body, views)
                    with lock:
                        try:
                            answer = scorer(run)(x)
                        except XaeError as e:  # e.g. a discretized likelihood off its grid
                            raise BadRequest(400, str(e)) from None
                    self._json(200, answer)
                    return
                view, z = parse_decode(body, views)
            except BadRequest as e:
                self._json(e.status, {"error": e.message}, close=True)
                return
            with lock:
                x = view.decode(z)
            self._json(200, {"shape": list(x.shape), "x": x.ravel().tolist()})

    return Handler


class ExplorerServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (reset, broken pipe, timeout) is not the server's error."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("%s went away: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"


def make_server(files: dict[str, Asset], views: list[RunView], host: str = "127.0.0.1",
                port: int = 0) -> ExplorerServer:
    """A server for ``files`` bound to ``host:port`` (port 0: a free one); not yet serving."""
    if not 0 <= port <= 65535:
        raise XaeError(f"--port must be from 0 to 65535 (0 picks a free port), got {port}")
    cls = type("Server", (ExplorerServer,), {"address_family": socket.AF_INET6 if ":" in host
                                             else socket.AF_INET})
    try:
        return cls((host, port), make_handler(files, views, _loopback(host)))
    except socket.gaierror:
        raise XaeError(f"--host {host!r} is not an address of this machine; leave it out to "
                       "serve on 127.0.0.1") from None
    except OSError as e:
        raise XaeError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port, "
                       "or leave it out for a free one") from None
