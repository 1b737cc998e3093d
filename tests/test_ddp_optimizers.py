"""DDP with a piece that has its own optimizer: FactorVAE's discriminator under two gloo
processes."""
from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import torchrun_xae

from xae.train.checkpoint import load_state


def test_ddp_trains_a_model_with_two_optimizers(tmp_path: Path) -> None:
    args = ["--preset", "factor-vae", "--steps", "30", "--no-progress", "--set",
            "model.mlp.hidden=[32]", "model.factor.hidden=[32]", "model.factor.start=10",
            "train.log_every=5", "train.figures=false", "train.eval_every=0"]
    code, _, err = torchrun_xae("train", *args, "--out", str(tmp_path / "ddp"))
    assert code == 0, err
    log = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [5, 10, 15, 20, 25, 30]
    # the discriminator sits out the first 10 steps, then learns on both processes
    assert "discriminator_loss" not in log[0] and "discriminator_loss" in log[-1]
    assert all(math.isfinite(r["loss"]) for r in log) and log[-1]["loss"] < log[0]["loss"]
    state = load_state(tmp_path / "ddp")
    assert set(state["optimizers"]) == {"model", "discriminator"}
    assert state["optimizers"]["discriminator"]["state"]  # it stepped
