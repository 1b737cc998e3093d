"""What a run of a hierarchy reports per latent group: the held-out evaluations (rate and
active units of each group)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import xae
from xae.data import load as load_data
from xae.data.split import hold_out
from xae.evaluate.diagnostics import evaluate

TOPDOWN = {"model.bottleneck": "topdown", "model.topdown.groups": [2, 4],
           "model.latent_dim": 6, "model.topdown.hidden": 16, "model.mlp.hidden": [32],
           "train.progress": False}


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    cfg = xae.preset("vae", **TOPDOWN, **{"train.steps": 60, "train.log_every": 10,
                                          "train.eval_every": 20, "train.lr": 3e-3})
    return xae.train(cfg, tmp_path_factory.mktemp("groups") / "run")


def test_the_held_out_evaluations_report_each_groups_rate_and_active_units(run: Path) -> None:
    log = _lines(run / "metrics.jsonl")
    assert log[-1]["loss"] < log[0]["loss"] - 1.0  # it learned
    rows = _lines(run / "held_out.jsonl")
    assert [r["step"] for r in rows] == [20, 40, 60]
    for r in rows:
        assert r["rate"] == pytest.approx(r["rate/z1"] + r["rate/z2"], rel=1e-6)
        assert r["active_units"] == r["active_units/z1"] + r["active_units/z2"]
        assert 0 <= r["active_units/z1"] <= 2 and 0 <= r["active_units/z2"] <= 4
    # the last one is what xae eval computes for the final weights on those held-out samples
    model, cfg = xae.load(run), xae.load(run).config
    _, held = hold_out(load_data(cfg.data), cfg.train.validation_fraction, cfg.data.seed)
    m = evaluate(model, held[:cfg.train.eval_samples], seed=cfg.train.seed,
                 hole_metrics=False).metrics
    last = rows[-1]
    for key in ("rate/z1", "rate/z2", "active_units", "active_units/z1", "active_units/z2"):
        assert last[key] == pytest.approx(m[key], rel=1e-5), key
    assert m["rate/z1"] > 0.01 and m["rate/z2"] > 0.01  # real values, not zeros
