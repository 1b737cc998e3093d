"""``import xae`` (and so every ``xae`` command, sweep child and DDP rank) loads torch and numpy
but none of the libraries only some commands use: each is imported where it is needed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import SUBPROCESS_ENV

LATER = ("sklearn", "scipy", "pandas", "matplotlib", "PIL", "h5py", "anndata", "onnx",
         "onnxruntime", "optuna", "constriction", "diffusers", "playwright")


def test_importing_xae_leaves_the_heavy_optional_libraries_unloaded():
    code = ("import json, sys, xae, xae.cli\n"
            f"print(json.dumps([m for m in {list(LATER)!r} if m in sys.modules]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, **SUBPROCESS_ENV}, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == []
