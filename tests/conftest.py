"""Shared helpers: run the real CLI in a subprocess, and a tiny fast config."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# one thread per child process: the tiny test models gain nothing from more, and two
# processes each spinning two OpenMP threads on a two-core machine slow each other down
SUBPROCESS_ENV = {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
TINY = ["model.hidden=[64]", "train.log_every=5", "train.checkpoint_every=10"]


def run_xae(*args: str, cwd: Path | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m xae ARGS`` as a user would run it; returns the finished process."""
    full_env = {**os.environ, **SUBPROCESS_ENV, **(env or {})}
    return subprocess.run([sys.executable, "-m", "xae", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def xae_cli():
    return run_xae
