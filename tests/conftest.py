"""Shared helpers: run the real CLI in a subprocess, and a tiny fast config."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# one thread per child process: the tiny test models gain nothing from more, and two
# processes each spinning two OpenMP threads on a two-core machine slow each other down
SUBPROCESS_ENV = {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
TINY = ["model.mlp.hidden=[64]", "train.log_every=5", "train.checkpoint_every=10"]


def run_xae(*args: str, cwd: Path | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m xae ARGS`` as a user would run it; returns the finished process."""
    full_env = {**os.environ, **SUBPROCESS_ENV, **(env or {})}
    return subprocess.run([sys.executable, "-m", "xae", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def torchrun_xae(*args: str, timeout: float = 300) -> tuple[int, str, str]:
    """``torchrun --nproc_per_node 2 -m xae ARGS`` (two gloo processes): the exit code, stdout
    and stderr; the launcher and both workers are killed if it runs past ``timeout``."""
    env = {**os.environ, **SUBPROCESS_ENV}
    # --standalone: the launcher binds a free port itself (no window for another run to take it)
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node", "2", "-m", "xae", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    if proc.returncode:  # the workers' own words first: the launcher's summary hides them
        causes = [ln for ln in err.splitlines() if "torch/distributed/elastic" not in ln
                  and any(w in ln for w in ("rror", "terminate", "what()", "bort", "xae:"))]
        err = "\n".join(causes[:40]) + "\n---\n" + err[-1500:]
    return proc.returncode, out, err


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A tiny finished VAE run on the digits (10 steps, 2 latents, no figures); tests that
    damage it work on a copy."""
    from xae.cli import main

    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--steps", "10", "--no-progress", "--set", *TINY,
                 "model.latent_dim=2", "train.figures=false", "--out", str(out)]) == 0
    return out


@pytest.fixture
def xae_cli():
    return run_xae


# ---- the latent explorer: tiny trained runs, a live server, a real browser ------------------

@pytest.fixture(scope="session")
def explore_runs(tmp_path_factory) -> dict[str, Path]:
    """Three tiny runs on the bundled digits: a VAE and an AE with 2-d latents, and a VAE with
    a 5-d latent (shown on its principal plane)."""
    import xae

    base = tmp_path_factory.mktemp("explore")
    runs = {}
    for name, preset, d in [("vae", "vae", 2), ("ae", "ae", 2), ("vae5", "vae", 5)]:
        cfg = xae.preset(preset, **{"model.mlp.hidden": [32], "latent_dim": d, "steps": 40,
                                    "train.seed": 1, "progress": False, "figures": False,
                                    "log_every": 20})
        runs[name] = xae.train(cfg, base / name)
    return runs


@pytest.fixture(scope="session")
def explore_views(explore_runs):
    from xae.explore.runs import load_run

    return [load_run(explore_runs[k]) for k in ("vae", "ae", "vae5")]


def open_page(browser, url, **options):
    """A page of the explorer at ``url`` in a fresh context of ``browser`` (1400 × 1100, plus
    Playwright's context ``options``, e.g. ``has_touch``), once it is ready and without an
    error; ``page.close()`` closes its context too."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, **options)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.xae && (window.xae.ready || window.xae.error)", timeout=30_000)
    assert page.evaluate("xae.error") is None and not errors, (page.evaluate("xae.error"), errors)
    return page


@contextlib.contextmanager
def serving(views, sweep=None):
    """``xae explore`` on ``views`` (the loaded runs of ``sweep``, when given), served live
    from a thread on a free loopback port until the block ends."""
    import threading

    from xae.explore import build_site, make_server

    server = make_server(build_site(views, live=True, sweep=sweep), views)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def explore_server(explore_views):
    """``xae explore`` on the three runs."""
    with serving(explore_views) as server:
        yield server


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright. ``make test`` installs it (``make browser``:
    apt-get install chromium chromium-driver); this skips, saying why, only where it is not
    there, e.g. on a machine without root or sudo."""
    import shutil

    path = os.environ.get("XAE_CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed and could not be: `make browser` "
                    "runs apt-get install chromium chromium-driver, which needs root or sudo "
                    "(or set XAE_CHROMIUM to a Chromium binary)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()
