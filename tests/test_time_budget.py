"""train.max_minutes: a run stops at a step boundary with a checkpoint once its training time
reaches the budget, and a resume with a larger budget ends exactly where an uninterrupted run
ends."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import xae
from xae.config import apply, validate
from xae.errors import XaeError
from xae.train.checkpoint import load_state, read_config

STEPS = 40


def _cfg(**extra: object) -> xae.Config:
    cfg = xae.preset("vae", latent_dim=4, steps=STEPS, **{"model.mlp.hidden": [64]})
    return apply(cfg, {"train.log_every": 5, "train.checkpoint_every": 1000,
                       "train.progress": False, "train.figures": False,
                       "train.eval_every": 0, "data.binarize": "dynamic", **extra})


def _log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_spent_budget_stops_with_a_checkpoint_and_resumes_exactly(tmp_path: Path) -> None:
    full = xae.train(_cfg(), tmp_path / "full")
    part = xae.train(_cfg(**{"train.max_minutes": 1e-4}), tmp_path / "part")  # 6 ms
    metrics = json.loads((part / "metrics.json").read_text())
    stopped = metrics["step"]
    assert 1 <= stopped < STEPS, "the budget did not stop the run early"
    assert metrics["stopped"] == {"reason": "train.max_minutes", "planned_steps": STEPS}
    assert load_state(part)["step"] == stopped  # a checkpoint at the very step it stopped
    assert metrics["train_time_s"] >= 60 * 1e-4

    again = xae.train(read_config(part), part, resume=True)  # the same, spent budget
    assert json.loads((again / "metrics.json").read_text())["step"] == stopped

    resumed = xae.train(apply(read_config(part), {"train.max_minutes": 0}), part, resume=True)
    assert _log(resumed) == [{**r, "samples_per_s": a["samples_per_s"]}
                             for r, a in zip(_log(full), _log(resumed))]
    assert len(_log(resumed)) == len(_log(full))
    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    final = json.loads((resumed / "metrics.json").read_text())
    assert final["step"] == STEPS and "stopped" not in final


@pytest.mark.parametrize("value", [-1.0, float("inf")])
def test_a_bad_budget_is_refused_by_name(value: float) -> None:
    with pytest.raises(XaeError, match="train.max_minutes"):
        validate(_cfg(**{"train.max_minutes": value}))
