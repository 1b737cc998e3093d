"""The latent explorer in headless Chromium: page-ready time and cursor-to-image latency.

For each run (by default two MNIST runs this script trains once and keeps: an MLP VAE with a
2-d latent and a conv VAE with a 16-d latent, shown on its principal plane), on the 10,000
MNIST test points:

- **prepare**: the seconds ``xae explore`` spends before serving (load, encode the test set,
  export the decoder); not part of the page's time;
- **page ready**: from navigation start to the map drawn and the decoder loaded and warmed
  (``xae.readyMs``, the page's ``performance.now()`` then), over ``--loads`` fresh browser
  contexts (no cache); median and max;
- **latency**: ``--moves`` synthetic mouse moves (Playwright, through Chromium's input
  pipeline) across the map, each waiting for its image. Per move: from the input event's
  timestamp to the decoded image drawn on its canvas (``xae.latencies``), and to the first
  animation frame after that draw (``xae.frameLatencies``); median and p95 in ms.
  Goal: p95 ≤ 16 ms. The same with decoding by the server's endpoint (the page's fallback
  without onnxruntime-web) for comparison.
- **encode and place**: ``--moves`` pointer moves drawing on the first run's pad, each waiting
  for the pad to be shrunk to the input size, encoded in the page (``encoder.onnx``), placed
  on the map and its reconstruction drawn (``xae.encodeLatencies``, from the input event's
  timestamp); median and p95 in ms. Goal: p95 ≤ 16 ms.
- **sweep page ready**: ``xae explore SWEEP_DIR`` on a 7-run β sweep (MLP VAEs with a 2-d
  latent, β = 0 … 30, ``--epochs`` each, trained once by ``xae sweep`` and kept), all 10,000
  test points per run: page ready over ``--loads`` fresh contexts. Goal: ≤ 2 s.
- **load** (loopback only): ``xae explore`` on the first run, in its own process, under
  ``--load-clients`` (200) concurrent clients for ``--load-seconds`` (30) per request kind,
  each client opening a connection per request (the server speaks HTTP/1.0): ``GET
  /runs.json`` and ``POST /api/decode`` of one latent. Requests/s, median and p99 latency (from
  connect to the last byte), failures (resets, timeouts, non-200) and tracebacks in the
  server's stderr. The clients (asyncio, one process) share the machine's cores with it.

    PYTHONPATH=src .venv/bin/python benchmarks/explorer.py
    PYTHONPATH=src .venv/bin/python benchmarks/explorer.py --runs runs/vae-mnist --moves 500
    PYTHONPATH=src .venv/bin/python benchmarks/explorer.py --load-only --load-seconds 10
    PYTHONPATH=src .venv/bin/python benchmarks/explorer.py --sweep-only --no-load

Writes ``benchmarks/results/explorer/results.json`` (a run replaces only the figures it
measured: the browser's per run, and ``load``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.request import urlopen

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from conftest import CHROMIUM_ARGS  # noqa: E402 - one list of Chromium flags

import xae  # noqa: E402
from xae.explore import build_site, load_run, make_server, runtime  # noqa: E402
from xae.fileio import write_json  # noqa: E402

OUT = HERE / "results" / "explorer"
MNIST = str(HERE.parents[1] / "shared" / "data" / "mnist")
DEFAULT_RUNS = {"vae-mlp-2d": {"model.latent_dim": 2},
                "vae-conv-16d": {"model.latent_dim": 16, "model.encoder": "conv",
                                 "model.decoder": "conv"}}


def train_default(name: str, overrides: dict, epochs: int) -> Path:
    out = OUT / name
    if not (out / "metrics.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        cfg = xae.preset("vae", **{"data.name": "mnist", "data.data_dir": MNIST,
                                   "train.epochs": epochs, "train.progress": False,
                                   "train.figures": False, **overrides})
        xae.train(cfg, out)
    return out


SWEEP_BETAS = "0,0.1,0.3,1,3,10,30"


def train_sweep(epochs: int) -> Path:
    """The 7-run β sweep on MNIST (trained once; ``xae sweep`` reuses finished runs)."""
    from xae.cli import main as xae_main

    out = OUT / "sweep-beta"
    if not (out / "sweep.json").is_file():
        status = xae_main(["sweep", "--beta", SWEEP_BETAS, "--jobs", "2", "--set",
                           "data.name=mnist", f"data.data_dir={MNIST}", f"train.epochs={epochs}",
                           "model.latent_dim=2", "train.figures=false", "--out", str(out)])
        if status:
            raise RuntimeError(f"the sweep failed (exit {status}); see {out}")
    return out


def sweep_ready(browser, folder: Path, loads: int) -> dict:
    """Page-ready of ``xae explore SWEEP_DIR`` (served live, decoding in the browser)."""
    from xae.explore.sweep import load_sweep, read_sweep

    t = time.perf_counter()
    sweep = read_sweep(folder)
    views = load_sweep(sweep)
    prepare = time.perf_counter() - t
    server = make_server(build_site(views, live=True, need_runtime=True, sweep=sweep), views)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready = []
    try:
        for _ in range(loads):
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            page.goto(server.url)
            page.wait_for_function("window.xae && (xae.ready || xae.error)", timeout=60_000)
            if page.evaluate("xae.error"):
                raise RuntimeError(page.evaluate("xae.error"))
            ready.append(page.evaluate("xae.readyMs"))
            shown = page.evaluate("xae.panels.length")
            ctx.close()
    finally:
        server.shutdown()
        server.server_close()
    return {"runs": shown, "points_per_run": int(len(views[0].coords)), "prepare_s": prepare,
            "ready_ms_median": statistics.median(ready), "ready_ms_max": max(ready),
            "loads": loads}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure(browser, url: str, loads: int, moves: int) -> dict:
    ready = []
    for _ in range(loads):
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_function("window.xae && (xae.ready || xae.error)", timeout=60_000)
        if page.evaluate("xae.error"):
            raise RuntimeError(page.evaluate("xae.error"))
        ready.append(page.evaluate("xae.readyMs"))
        points = page.evaluate("xae.panels[0].pointsDrawn")
        if len(ready) < loads:
            ctx.close()
    box = page.locator(".panel[data-run='0'] .map-overlay").bounding_box()
    page.evaluate("xae.latencies.length = 0; xae.frameLatencies.length = 0")
    rng = np.random.default_rng(0)
    for i in range(moves):
        x, y = rng.uniform(5, box["width"] - 5), rng.uniform(5, box["height"] - 5)
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.wait_for_function(f"xae.frameLatencies.length > {i}")
    lat, frame = page.evaluate("xae.latencies"), page.evaluate("xae.frameLatencies")
    via = page.evaluate("xae.via")
    out = {"via": via, "points": points, "ready_ms_median": statistics.median(ready),
           "ready_ms_max": max(ready), "moves": len(lat),
           "draw_ms_median": pct(lat, 50), "draw_ms_p95": pct(lat, 95),
           "frame_ms_median": pct(frame, 50), "frame_ms_p95": pct(frame, 95)}
    if via == "browser":
        enc = draw_strokes(page, moves)
        out.update({"strokes": len(enc), "encode_ms_median": pct(enc, 50),
                    "encode_ms_p95": pct(enc, 95)})
    ctx.close()
    return out


def draw_strokes(page, moves: int) -> list[float]:
    """``moves`` pointer moves drawing on the first panel's pad, each waiting until the pad is
    encoded in the page, placed on the map and its reconstruction drawn; the latencies (ms)
    from each input event's timestamp (``xae.encodeLatencies``)."""
    page.click(".panel[data-run='0'] .draw summary")
    box = page.locator(".panel[data-run='0'] .pad").bounding_box()
    rng = np.random.default_rng(1)
    page.evaluate("xae.encodeLatencies.length = 0")
    page.mouse.move(box["x"] + 80, box["y"] + 80)
    page.mouse.down()
    for i in range(moves):
        x, y = rng.uniform(10, box["width"] - 10), rng.uniform(10, box["height"] - 10)
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.wait_for_function(f"xae.encodeLatencies.length > {i + 1}")  # the down was one
        if i % 25 == 24:  # start again on a clean pad now and then, as a user would
            page.mouse.up()
            page.click(".panel[data-run='0'] .clear-pad")
            page.mouse.move(box["x"] + x, box["y"] + y)
            page.wait_for_function("!xae.panels[0].padBusy && !xae.panels[0].padPending")
            page.evaluate(f"xae.encodeLatencies.length = {i + 1}")
            page.mouse.down()
            page.wait_for_function(f"xae.encodeLatencies.length > {i + 1}")
    page.mouse.up()
    return page.evaluate("xae.encodeLatencies")[1:moves + 1]


def serve(views, live_runtime: bool):
    if live_runtime:
        site = build_site(views, live=True, need_runtime=True)
    else:  # the page's fallback: no onnxruntime-web, decode by the server
        saved, runtime.ort_dir = runtime.ort_dir, lambda: None
        try:
            site = build_site(views, live=True)
        finally:
            runtime.ort_dir = saved
    server = make_server(site, views)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def _fetch(port: int, request: bytes, timeout: float) -> int:
    """One request on its own connection; the answer's status (0 if it is not HTTP)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(request)
        data = await asyncio.wait_for(reader.read(), timeout)  # the server closes when done
    finally:
        writer.close()
    return int(data[9:12]) if data[:5] == b"HTTP/" and data[9:12].isdigit() else 0


async def _hammer(port: int, request: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    failures: Counter = Counter()
    end = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                status = await _fetch(port, request, timeout=30)
            except (OSError, asyncio.TimeoutError) as e:
                failures[type(e).__name__] += 1
                continue
            if status == 200:
                latencies.append(time.perf_counter() - t)
            else:
                failures[f"HTTP {status}"] += 1

    t = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t
    ms = [1000 * v for v in latencies] or [float("nan")]
    return {"requests": len(latencies), "seconds": wall, "requests_per_s": len(latencies) / wall,
            "ms_median": pct(ms, 50), "ms_p99": pct(ms, 99), "ms_max": max(ms),
            "failures": dict(failures)}


def load_figure(run: Path, clients: int, seconds: float) -> dict:
    """``xae explore RUN`` in a subprocess under ``clients`` concurrent loopback clients."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src"), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "xae", "explore", str(run)], env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                line = proc.stdout.readline() if sel.select(timeout=600) else ""
            if "127.0.0.1:" not in line:
                raise RuntimeError(f"xae explore did not start: {line!r}")
            port = int(line.split("127.0.0.1:")[1].split("/")[0])
            head = f"Host: 127.0.0.1:{port}\r\n"
            meta = json.loads(urlopen(f"http://127.0.0.1:{port}/runs.json", timeout=30).read())
            body = json.dumps({"run": 0, "z": [[0.1] * meta["runs"][0]["latent_dim"]]}).encode()
            kinds = {"GET /runs.json": f"GET /runs.json HTTP/1.1\r\n{head}\r\n".encode(),
                     "POST /api/decode": (f"POST /api/decode HTTP/1.1\r\n{head}Content-Length: "
                                          f"{len(body)}\r\n\r\n").encode() + body}
            out = {}
            for kind, request in kinds.items():
                out[kind] = asyncio.run(_hammer(port, request, clients, seconds))
                print(f"load, {clients} clients, {kind}: {out[kind]}", flush=True)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        err.seek(0)
        log = err.read()
    return {"run": run.name, "clients": clients, "seconds_each": seconds,
            "server_tracebacks": log.count("Traceback"), **out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="*", help="run folders (default: two MNIST VAEs, trained "
                    "once into benchmarks/results/explorer/)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs of the default runs")
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--load-only", action="store_true", help="only the loopback load figure")
    ap.add_argument("--sweep-only", action="store_true", help="only the sweep's page-ready "
                    "figure (and the load figure unless --no-load)")
    ap.add_argument("--no-load", action="store_true", help="skip the loopback load figure")
    ap.add_argument("--load-clients", type=int, default=200)
    ap.add_argument("--load-seconds", type=float, default=30.0, help="per request kind")
    args = ap.parse_args()

    defaults = list(DEFAULT_RUNS.items())[:1 if args.load_only or args.sweep_only else None]
    runs = [Path(r) for r in args.runs] if args.runs else \
        [train_default(n, o, args.epochs) for n, o in defaults]
    results = json.loads((OUT / "results.json").read_text()) \
        if (OUT / "results.json").is_file() else {}
    if not args.load_only and not args.sweep_only:
        browser_figures(runs, args, results)
    if not args.load_only:
        from playwright.sync_api import sync_playwright

        folder = train_sweep(args.epochs)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            results["sweep"] = {"folder": folder.name, "betas": SWEEP_BETAS,
                                **sweep_ready(browser, folder, args.loads)}
            browser.close()
        print(f"sweep: {results['sweep']}", flush=True)
    if not args.no_load:
        results["load"] = load_figure(runs[0], args.load_clients, args.load_seconds)
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / "results.json", results)
    print_tables(results)


def browser_figures(runs: list[Path], args: argparse.Namespace, results: dict) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        for run in runs:
            t = time.perf_counter()
            view = load_run(run)
            prepare = time.perf_counter() - t
            for mode, live_runtime in (("browser", True), ("server", False)):
                server = serve([view], live_runtime)
                try:
                    r = measure(browser, server.url, args.loads if live_runtime else 1,
                                args.moves)
                finally:
                    server.shutdown()
                    server.server_close()
                key = f"{run.name} [{mode}]"
                results[key] = {**r, "prepare_s": prepare, "latent_dim": view.latent_dim,
                                "plane": "pca" if view.plane.pca else "latent"}
                print(f"{key}: {r}", flush=True)
        browser.close()


def print_tables(results: dict) -> None:
    pages = {k: r for k, r in results.items() if k not in ("load", "sweep")}
    if pages:
        print("\n| run | decode | points | prepare (s) | page ready median / max (ms) | "
              "draw median / p95 (ms) | to next frame median / p95 (ms) |")
        print("|---|---|---|---|---|---|---|")
    for key, r in pages.items():
        name, mode = key.split(" [")
        print(f"| {name} (D = {r['latent_dim']}) | {mode[:-1]} | {r['points']} | "
              f"{r['prepare_s']:.1f} | {r['ready_ms_median']:.0f} / {r['ready_ms_max']:.0f} | "
              f"{r['draw_ms_median']:.2f} / {r['draw_ms_p95']:.2f} | "
              f"{r['frame_ms_median']:.2f} / {r['frame_ms_p95']:.2f} |")
    for key, r in pages.items():
        if "encode_ms_p95" in r:
            print(f"\n{key}: encode and place a drawn input, {r['strokes']} strokes: median "
                  f"{r['encode_ms_median']:.2f} ms, p95 {r['encode_ms_p95']:.2f} ms (goal ≤ 16)")
    if "sweep" in results:
        s = results["sweep"]
        print(f"\nsweep {s['folder']} (β = {s['betas']}): {s['runs']} runs × "
              f"{s['points_per_run']} points; prepare {s['prepare_s']:.1f} s; page ready median "
              f"{s['ready_ms_median']:.0f} ms, max {s['ready_ms_max']:.0f} ms (goal ≤ 2000)")
    if "load" in results:
        load = results["load"]
        print(f"\nloopback load on {load['run']}: {load['clients']} concurrent clients, "
              f"{load['seconds_each']:g} s each; tracebacks in the server's log: "
              f"{load['server_tracebacks']}")
        print("\n| request | requests/s | median (ms) | p99 (ms) | failures |")
        print("|---|---|---|---|---|")
        for kind, r in load.items():
            if isinstance(r, dict):
                print(f"| {kind} | {r['requests_per_s']:.0f} | {r['ms_median']:.1f} | "
                      f"{r['ms_p99']:.1f} | {sum(r['failures'].values())} {r['failures'] or ''}".rstrip()
                      + " |")


if __name__ == "__main__":
    main()
