"""DDP with a piece that has its own optimizer: FactorVAE's discriminator under two gloo
processes."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import SUBPROCESS_ENV
from test_train import _free_port

from xae.train.checkpoint import load_state


def test_ddp_trains_a_model_with_two_optimizers(tmp_path: Path) -> None:
    args = ["--preset", "factor-vae", "--steps", "30", "--no-progress", "--set",
            "model.mlp.hidden=[32]", "model.factor.hidden=[32]", "model.factor.start=10",
            "train.log_every=5", "train.figures=false", "train.eval_every=0"]
    env = {**os.environ, **SUBPROCESS_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                             "2", "--master_port", str(_free_port()), "-m", "xae", "train",
                             *args, "--out", str(tmp_path / "ddp")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, err[-3000:]
    log = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [5, 10, 15, 20, 25, 30]
    # the discriminator sits out the first 10 steps, then learns on both processes
    assert "discriminator_loss" not in log[0] and "discriminator_loss" in log[-1]
    assert all(math.isfinite(r["loss"]) for r in log) and log[-1]["loss"] < log[0]["loss"]
    state = load_state(tmp_path / "ddp")
    assert set(state["optimizers"]) == {"model", "discriminator"}
    assert state["optimizers"]["discriminator"]["state"]  # it stepped
