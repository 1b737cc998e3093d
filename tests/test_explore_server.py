"""The explorer's server and data: the map is the test set's latent means (or their principal
plane), the decode endpoint equals the torch model and refuses bad vectors with 4xx, only the
explorer's own files are served, loopback is the default, and the CLI serves on a free port or
writes a static folder whole."""
from __future__ import annotations

import http.client
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest
import torch

import xae
from xae.cli import main
from xae.explore import runtime, server as server_module
from xae.explore.runs import plane_of, run_stats
from xae.explore.site import MARKER, MAX_BODY_BYTES, MAX_DECODE_BATCH, PAGE
from conftest import ROOT, SUBPROCESS_ENV, run_xae


def _request(server, method, path, body=None, headers=None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    hdrs = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if body is not None and "Content-Length" not in hdrs:
        hdrs["Content-Length"] = str(len(body))
    for k, v in hdrs.items():
        conn.putheader(k, v)
    conn.endheaders()
    if body is not None:
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):  # the server refused before reading it
            pass
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type"), data


def _raw(server, data, timeout=10):
    """What the server answers to the bytes ``data`` before it closes the connection."""
    with socket.create_connection(server.server_address[:2], timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _wait_for_handlers(baseline, seconds=20):
    """Wait until the server's connection threads are done (the thread count is back)."""
    deadline = time.monotonic() + seconds
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)


def _no_traceback(err):
    assert "Traceback" not in err and "Error" not in err and "Exception" not in err, err


def _post(server, endpoint, payload):
    """POST ``payload`` (bytes as they are, else as JSON) to ``/api/<endpoint>``."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _request(server, "POST", f"/api/{endpoint}", raw, {"Content-Type": "application/json"})


# ---- what the map shows ----------------------------------------------------------------------

def test_the_principal_plane_holds_the_top_two_directions():
    rng = np.random.default_rng(0)
    axes = np.linalg.qr(rng.normal(size=(6, 6)))[0]  # orthonormal columns
    scales = np.array([5.0, 2.0, 0.3, 0.2, 0.1, 0.05])
    z = (rng.normal(size=(4000, 6)) * scales) @ axes.T + 3.0
    plane = plane_of(z)
    assert plane.pca and plane.basis.shape == (2, 6)
    np.testing.assert_allclose(plane.basis @ plane.basis.T, np.eye(2), atol=1e-10)
    for k in range(2):  # the k-th basis vector is ± the k-th true axis
        assert abs(plane.basis[k] @ axes[:, k]) > 0.999
    np.testing.assert_allclose(plane.mean, z.mean(0))
    var = scales**2
    np.testing.assert_allclose(plane.explained, var[:2] / var.sum(), rtol=0.08)
    # a point of the plane maps to its coordinates and back
    uv = np.array([[1.5, -2.0]])
    np.testing.assert_allclose(plane.project(plane.mean + uv @ plane.basis), uv, atol=1e-10)


def test_two_and_one_dimensional_latents_are_drawn_as_they_are():
    z = np.random.default_rng(1).normal(size=(50, 2))
    plane = plane_of(z)
    assert not plane.pca
    np.testing.assert_array_equal(plane.project(z), z)
    line = plane_of(z[:, :1])
    np.testing.assert_array_equal(line.project(z[:, :1]), np.column_stack([z[:, 0], 0 * z[:, 0]]))


def test_the_map_holds_every_test_point_with_its_latent_mean(explore_runs, explore_views):
    for view in explore_views:
        model, data = view.model, xae.data.load(view.model.config.data)
        with torch.no_grad():
            z = model.latent_mean(data.test_x).double().numpy()
        raw = np.frombuffer(view.map_bytes(), dtype="<f4").reshape(-1, 3)
        assert len(raw) == len(data.test_x)
        np.testing.assert_allclose(raw[:, :2], view.plane.project(z), atol=1e-5)
        np.testing.assert_array_equal(raw[:, 2], data.test_y.numpy())
        prior = np.frombuffer(view.prior_bytes(), dtype="<f4").reshape(-1, model.latent_dim)
        assert len(prior) == 1024 and abs(prior.mean()) < 0.15 and abs(prior.std() - 1) < 0.1
    assert explore_views[2].plane.pca and not explore_views[0].plane.pca


def test_stats_come_from_the_run(explore_runs, explore_views):
    final = json.loads((explore_runs["vae"] / "metrics.json").read_text())["test"]
    stats = explore_views[0].stats
    assert stats["preset"] == "vae" and stats["beta"] == 1.0 and stats["source"] == "metrics.json"
    assert stats["rate"] == final["rate"] and stats["distortion"] == final["distortion"]
    assert "nll_iw" not in stats  # not evaluated yet: the page says so


def test_stats_prefer_xae_evals_results(explore_runs, explore_views, tmp_path):
    run = shutil.copytree(explore_runs["vae"], tmp_path / "vae")
    p = run_xae("eval", str(run), "--k", "5", "--no-images")
    assert p.returncode == 0, p.stderr
    evaluated = json.loads((run / "eval.json").read_text())["test"]
    stats = run_stats(run, explore_views[0].model)
    assert stats["source"] == "eval.json" and stats["nll_iw"] == evaluated["nll_iw"]
    assert stats["rate"] == evaluated["rate"]


# ---- the decode endpoint ---------------------------------------------------------------------

def test_decode_equals_the_torch_model(explore_server, explore_views):
    for i, view in enumerate(explore_views):
        z = np.random.default_rng(i).normal(size=(3, view.latent_dim)).astype(np.float32)
        status, ctype, body = _post(explore_server, "decode", {"run": i, "z": z.tolist()})
        assert status == 200 and ctype.startswith("application/json")
        out = json.loads(body)
        assert out["shape"] == [3, 1, 8, 8]
        with torch.no_grad():
            want = view.model.decode(torch.from_numpy(z)).numpy()
        np.testing.assert_allclose(np.array(out["x"]).reshape(want.shape), want, atol=1e-6)


BAD_DECODES = [
    (b'{"run": 0, "z": [[NaN, 0.0]]}', 400, "finite"),
    (b'{"run": 0, "z": [[Infinity, 0.0]]}', 400, "finite"),
    ({"run": 0, "z": [[1e39, 0.0]]}, 400, "too large"),
    ({"run": 0, "z": [[0.0, 0.0, 0.0]]}, 400, "list of 2 numbers"),
    ({"run": 0, "z": [[0.0]]}, 400, "list of 2 numbers"),
    ({"run": 2, "z": [[0.0, 0.0]]}, 400, "list of 5 numbers"),
    ({"run": 0, "z": [[True, 0.0]]}, 400, "finite numbers"),
    ({"run": 0, "z": [["0", 0.0]]}, 400, "finite numbers"),
    ({"run": 0, "z": [0.0, 0.0]}, 400, "z[0] must be a list"),
    ({"run": 0, "z": []}, 400, "non-empty"),
    ({"run": 3, "z": [[0.0, 0.0]]}, 400, "from 0 to 2"),
    ({"run": "0", "z": [[0.0, 0.0]]}, 400, "from 0 to 2"),
    ({"z": [[0.0, 0.0]]}, 400, "exactly the keys"),
    ({"run": 0, "z": [[0.0, 0.0]], "path": "/etc/passwd"}, 400, "exactly the keys"),
    ([[0.0, 0.0]], 400, "exactly the keys"),
    (b"not json", 400, "must be JSON"),
    (b"\xff\xfe", 400, "must be JSON"),
    ({"run": 0, "z": [[0.0, 0.0]] * (MAX_DECODE_BATCH + 1)}, 413, "at most"),
    (b'{"run": 0, "z": [[1' + b"0" * 400 + b', 0.0]]}', 400, "too large"),
    (b'{"run": 0, "z": [[-' + b"9" * 400 + b', 0.0]]}', 400, "too large"),
    (b'{"run": 0, "z": [[' + b"9" * 5000 + b', 0.0]]}', 400, "must be JSON"),
    (b'{"run": ' + b"9" * 400 + b', "z": [[0.0, 0.0]]}', 400, "of type int"),
    (b"[" * 100_000, 400, "nested too deeply"),
    (b'{"run": 0, "z": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "nested too deeply"),
    (b'{"run": ' + b"[" * 900 + b"]" * 900 + b', "z": [[0.0, 0.0]]}', 400, "of type list"),
]
BAD_SCORES = [
    ({"run": 0, "x": [0.0] * 63}, 400, "flat list of 64 numbers"),
    ({"run": 0, "x": [[0.0] * 64]}, 400, "flat list of 64 numbers"),
    ({"run": 0, "x": "0"}, 400, "flat list of 64 numbers"),
    ({"run": 0, "x": [0.0] * 63 + [True]}, 400, "finite numbers"),
    (b'{"run": 0, "x": [' + b"0.0, " * 63 + b"NaN]}", 400, "finite"),
    ({"run": 0, "x": [0.0] * 63 + [1e39]}, 400, "too large"),
    ({"run": 5, "x": [0.0] * 64}, 400, "from 0 to 2"),
    ({"run": 0, "z": [[0.0, 0.0]]}, 400, 'exactly the keys "run" and "x"'),
    (b"not json", 400, "must be JSON"),
]


@pytest.mark.parametrize("endpoint,payload,status,words",
                         [("decode", *c) for c in BAD_DECODES] + [("score", *c) for c in BAD_SCORES])
def test_bad_requests_get_4xx_with_a_message(explore_server, endpoint, payload, status, words,
                                             capfd):
    got, ctype, body = _post(explore_server, endpoint, payload)
    assert got == status and ctype.startswith("application/json")
    assert words in json.loads(body)["error"]
    _no_traceback(capfd.readouterr().err)


# ---- the score endpoint: −ELBO and anomaly score of one input -------------------------------

def test_score_answers_xae_scores_figures_and_the_test_sets_percentile(explore_server,
                                                                       explore_views):
    from xae.anomaly.scores import score_samples
    from xae.explore.scoring import K, SEED

    view = explore_views[0]
    x = view.test_x[3]
    status, _, body = _post(explore_server, "score", {"run": 0, "x": x.flatten().tolist()})
    assert status == 200
    got = json.loads(body)
    want = score_samples(view.model, x[None], ["elbo", "nll"], k=K, seed=SEED)
    assert got["neg_elbo"] == pytest.approx(float(want["neg_elbo_nats"][0]), rel=1e-6)
    assert got["score"] == "nll" and got["value"] == pytest.approx(float(want["nll_nats"][0]),
                                                                   rel=1e-6)
    ref = score_samples(view.model, view.test_x, ["nll"], k=K, seed=SEED)["nll_nats"]
    assert got["percentile"] == pytest.approx(100 * np.mean(ref <= got["value"]))
    assert got["test_points"] == len(view.test_x)
    # a plain AE has no bound: its score is the reconstruction term, and it says why
    status, _, body = _post(explore_server, "score", {"run": 1, "x": x.flatten().tolist()})
    ae = json.loads(body)
    assert status == 200 and ae["neg_elbo"] is None and ae["score"] == "recon" and ae["no_elbo"]


def test_score_keeps_the_servers_limits(explore_server):
    huge = b'{"run": 0, "x": [' + b"0.0," * (MAX_BODY_BYTES // 4) + b"0.0]}"
    status, _, body = _post(explore_server, "score", huge)
    assert status == 413 and "at most" in json.loads(body)["error"]
    status, _, body = _request(explore_server, "GET", "/api/score")
    assert status == 405 and "takes a POST" in json.loads(body)["error"]


def test_huge_bodies_are_refused_before_they_are_read(explore_server):
    huge = b'{"run": 0, "z": [' + b"[0.0, 0.0]," * (MAX_BODY_BYTES // 10) + b"[0.0, 0.0]]}"
    status, _, body = _post(explore_server, "decode", huge)
    assert status == 413 and "at most" in json.loads(body)["error"]
    status, _, body = _request(explore_server, "POST", "/api/decode", b"{}",
                               {"Content-Length": str(10**12)})
    assert status == 413
    status, _, _ = _request(explore_server, "POST", "/api/decode", b"{}", {"Content-Length": "-4"})
    assert status == 400
    status, _, body = _request(explore_server, "POST", "/api/decode")
    assert status == 411 and "Content-Length" in json.loads(body)["error"]


@pytest.mark.parametrize("length,status", [
    ("\u00b2", 400), ("\u00b9\u00b3", 400), ("-4", 400), ("+4", 400), (" 4x", 400), ("0x10", 400),
    ("9" * 5000, 413), (str(MAX_BODY_BYTES + 1), 413), ("0", 400),
])
def test_bad_content_lengths_get_4xx(explore_server, length, status, capfd):
    head = (f"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
            "Content-Type: application/json\r\n\r\n").encode("latin-1")  # ² is one byte
    answer = _raw(explore_server, head)  # no body: one left unread would reset the connection
    assert answer.startswith(f"HTTP/1.0 {status} ".encode()), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    _no_traceback(capfd.readouterr().err)


# ---- under load, and clients that misbehave ---------------------------------------------------

def test_200_concurrent_clients_all_get_their_answer(explore_server, capfd):
    n, results = 200, {}
    start = threading.Barrier(n, timeout=60)

    def client(i):
        try:
            start.wait()
            status, _, body = _request(explore_server, "GET", "/runs.json")
            results[i] = status if json.loads(body)["runs"] else "empty"
        except Exception as e:  # noqa: BLE001 - a reset or a timeout is what is counted
            results[i] = type(e).__name__

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert Counter(results.values()) == {200: n}
    _no_traceback(capfd.readouterr().err)


def test_clients_that_go_away_mid_answer_leave_no_traceback(explore_server, capfd):
    baseline = threading.active_count()
    for _ in range(50):
        s = socket.create_connection(explore_server.server_address[:2], timeout=10)
        s.sendall(b"GET /run/1/decoder.onnx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # a reset, not a polite close
    _wait_for_handlers(baseline)
    assert _request(explore_server, "GET", "/runs.json")[0] == 200  # still serving
    _no_traceback(capfd.readouterr().err)


@pytest.mark.parametrize("line", [b"GET /\r\n", b"GET\r\n", b"GET / HTTP/1.1 x\r\n",
                                  b"GET / FTP/1.0\r\n", b"\x16\x03\x01 junk\r\n"])
def test_a_malformed_request_line_gets_400_at_once(explore_server, line, capfd):
    t = time.monotonic()
    answer = _raw(explore_server, line)  # the client then waits: the server must answer now
    assert answer.startswith(b"HTTP/1.0 400 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert time.monotonic() - t < server_module.CONNECTION_TIMEOUT
    _no_traceback(capfd.readouterr().err)


@pytest.mark.parametrize("sent", [b"", b"GET / HTT", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                  b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  b"Content-Length: 100\r\n\r\n{\"run\""])
def test_a_silent_client_is_dropped(explore_server, monkeypatch, sent, capfd):
    monkeypatch.setattr(server_module, "CONNECTION_TIMEOUT", 0.5)
    baseline = threading.active_count()
    t = time.monotonic()
    assert _raw(explore_server, sent, timeout=10) == b""  # closed without an answer
    assert time.monotonic() - t < 5
    _wait_for_handlers(baseline)
    _no_traceback(capfd.readouterr().err)


# ---- files ---------------------------------------------------------------------------------

def test_only_the_explorers_own_files_are_served(explore_server, explore_views):
    status, ctype, body = _request(explore_server, "GET", "/")
    assert status == 200 and ctype.startswith("text/html") and b"xae latent explorer" in body
    status, _, body = _request(explore_server, "GET", "/run/1/decoder.onnx")
    assert status == 200 and body == explore_views[1].decoder_onnx
    status, _, body = _request(explore_server, "GET", "/runs.json?x=1")
    assert status == 200 and [r["name"] for r in json.loads(body)["runs"]] == ["vae", "ae", "vae5"]
    for path in ["/../pyproject.toml", "/%2e%2e/%2e%2e/etc/passwd", "/run/0/../../../etc/passwd",
                 "//etc/passwd", "/static/app.js", "/app.js/", "/run/3/map.bin", "/etc/passwd",
                 "/..%2fpyproject.toml", "/vendor/../runs.json", "/explore/server.py",
                 "/" + "a" * 5000]:
        status, ctype, body = _request(explore_server, "GET", path)
        assert status == 404 and "no such file" in json.loads(body)["error"], path


@pytest.mark.parametrize("method,path,status", [
    ("PUT", "/runs.json", 405), ("DELETE", "/index.html", 405), ("BREW", "/", 405),
    ("GET", "/api/decode", 405), ("POST", "/runs.json", 405), ("POST", "/api/encode", 404),
])
def test_other_methods_and_paths_get_4xx(explore_server, method, path, status):
    got, _, body = _request(explore_server, method, path, b"{}")
    assert got == status and json.loads(body)["error"]


def test_a_loopback_server_refuses_other_host_names(explore_server):
    for host in ["evil.example", "127.0.0.1.evil.example:80", ""]:
        status, _, body = _request(explore_server, "GET", "/", headers={"Host": host})
        assert status == 403 and "answers only to" in json.loads(body)["error"]
    port = explore_server.server_address[1]
    for host in [f"localhost:{port}", "localhost", f"[::1]:{port}"]:
        assert _request(explore_server, "GET", "/", headers={"Host": host})[0] == 200


def test_the_server_binds_to_loopback_by_default(explore_server):
    assert explore_server.server_address[0] == "127.0.0.1"
    assert explore_server.url == f"http://127.0.0.1:{explore_server.server_address[1]}/"


# ---- the command line ------------------------------------------------------------------------

def _readline(proc, seconds):
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=seconds):
            return f"(nothing in {seconds} s)"
    return proc.stdout.readline()


def test_the_cli_serves_on_a_free_port_and_ctrl_c_stops_it(explore_runs):
    """Launched with SIGINT ignored, as a background job's shell launches it (it is inherited
    through exec), SIGINT still stops the server cleanly."""
    env = {**os.environ, **SUBPROCESS_ENV}
    launch = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
              "os.execv(sys.executable, [sys.executable, '-m', 'xae', *sys.argv[1:]])")
    proc = subprocess.Popen([sys.executable, "-c", launch, "explore", str(explore_runs["vae"]),
                             str(explore_runs["ae"])], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = _readline(proc, 120)
        assert line.startswith("xae explore: http://127.0.0.1:") and "2 runs" in line, line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert port > 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/runs.json")
        runs = json.loads(conn.getresponse().read())["runs"]
        assert [r["name"] for r in runs] == ["vae", "ae"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    err = proc.stderr.read()
    assert "Traceback" not in err and "stopped" in err, err


@pytest.mark.parametrize("args,words", [
    (["explore", "no/such/run"], "no/such/run"),
    (["explore", "{vae}", "--port", "70000"], "--port must be from 0 to 65535"),
    (["explore", "{vae}", "--host", "no.such.host.invalid"], "not an address"),
    (["explore", "{vae}", "--max-points", "0"], "--max-points"),
    (["explore", "{vae}", "--static", "{tmp}/site", "--port", "9000"], "--static writes"),
])
def test_bad_cli_input_exits_2_with_a_message(explore_runs, tmp_path, args, words):
    args = [a.format(vae=explore_runs["vae"], tmp=tmp_path) for a in args]
    p = run_xae(*args)
    assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr


def test_the_port_in_use_is_refused(explore_server, explore_runs):
    p = run_xae("explore", str(explore_runs["vae"]), "--port",
                str(explore_server.server_address[1]))
    assert p.returncode == 2 and "pick another --port" in p.stderr


def test_static_without_the_runtime_exits_2_and_writes_nothing(explore_runs, tmp_path):
    p = run_xae("explore", str(explore_runs["vae"]), "--static", str(tmp_path / "site"),
                env={"XAE_ORT_DIR": str(tmp_path)})
    assert p.returncode == 2 and "XAE_ORT_DIR" in p.stderr and "make web" in p.stderr
    assert list(tmp_path.iterdir()) == []


def test_static_writes_the_whole_site(explore_runs, tmp_path):
    if runtime.ort_dir() is None:
        pytest.fail(f"onnxruntime-web is missing: {runtime.HOW}")
    p = run_xae("explore", str(explore_runs["vae"]), str(explore_runs["ae"]),
                "--static", str(tmp_path / "site"))
    assert p.returncode == 0, p.stderr
    site = tmp_path / "site"
    names = sorted(str(f.relative_to(site)) for f in site.rglob("*") if f.is_file())
    graphs = ("map.bin", "prior.bin", "decoder.onnx", "encoder.onnx")
    assert names == sorted([*PAGE, "runs.json", MARKER, "run/0/posterior.bin"]  # the VAE's q
                           + [f"vendor/{f}" for f in runtime.FILES]
                           + [f"run/{i}/{f}" for i in (0, 1) for f in graphs])
    index = json.loads((site / "runs.json").read_text())
    assert index["decode_endpoint"] is None and index["runtime"] == "vendor/ort.wasm.min.js"
    assert index["score_endpoint"] is None
    assert json.loads((site / MARKER).read_text())["format"] == "xae-static"
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_explore_without_onnx_says_how_to_install_it(explore_runs, tmp_path, monkeypatch,
                                                     capsys):
    run = shutil.copytree(explore_runs["vae"], tmp_path / "vae")
    shutil.rmtree(run / "export", ignore_errors=True)  # no saved decoder: it must export
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    assert main(["explore", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xae: error:") and "onnx" in err and "make web" in err, err
    assert "xae[web]" in err and "please report" not in err and len(err.splitlines()) == 1
