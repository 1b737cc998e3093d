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

    PYTHONPATH=src .venv/bin/python benchmarks/explorer.py
    PYTHONPATH=src .venv/bin/python benchmarks/explorer.py --runs runs/vae-mnist --moves 500

Writes ``benchmarks/results/explorer/results.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

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
    ctx.close()
    return {"via": via, "points": points, "ready_ms_median": statistics.median(ready),
            "ready_ms_max": max(ready), "moves": len(lat),
            "draw_ms_median": pct(lat, 50), "draw_ms_p95": pct(lat, 95),
            "frame_ms_median": pct(frame, 50), "frame_ms_p95": pct(frame, 95)}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="*", help="run folders (default: two MNIST VAEs, trained "
                    "once into benchmarks/results/explorer/)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs of the default runs")
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    runs = [Path(r) for r in args.runs] if args.runs else \
        [train_default(n, o, args.epochs) for n, o in DEFAULT_RUNS.items()]
    results = {}
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
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / "results.json", results)
    print("\n| run | decode | points | prepare (s) | page ready median / max (ms) | "
          "draw median / p95 (ms) | to next frame median / p95 (ms) |")
    print("|---|---|---|---|---|---|---|")
    for key, r in results.items():
        name, mode = key.split(" [")
        print(f"| {name} (D = {r['latent_dim']}) | {mode[:-1]} | {r['points']} | "
              f"{r['prepare_s']:.1f} | {r['ready_ms_median']:.0f} / {r['ready_ms_max']:.0f} | "
              f"{r['draw_ms_median']:.2f} / {r['draw_ms_p95']:.2f} | "
              f"{r['frame_ms_median']:.2f} / {r['frame_ms_p95']:.2f} |")


if __name__ == "__main__":
    main()
