"""What a run of a hierarchy reports per latent group: the held-out evaluations (rate and
active units of each group), the figure of each group's KL over training, samples at several
temperatures."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

import xae
from xae.data import load as load_data
from xae.data.split import hold_out
from xae.evaluate.diagnostics import evaluate
from xae.viz_levels import hierarchy_figures, temperatures, tempered_samples
from xae.viz_rates import rate_groups_figure

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


def test_the_kl_of_each_group_over_training_is_drawn_from_the_log(run: Path) -> None:
    png = run / "figures" / "rate_groups.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = _lines(run / "metrics.jsonl")
    ax = rate_groups_figure(log).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines) == ["z1", "z2", "total"]
    for label, key in (("z1", "rate/z1"), ("z2", "rate/z2"), ("total", "rate")):
        assert list(lines[label].get_xdata()) == [r["step"] for r in log]
        assert list(lines[label].get_ydata()) == [r[key] for r in log]
    with pytest.raises(xae.XaeError, match="rate/<group>"):
        rate_groups_figure([{"step": 1, "loss": 2.0, "rate": 1.0}])


def test_samples_at_several_temperatures_share_their_noise(run: Path, tmp_path: Path) -> None:
    assert (run / "figures" / "temperatures.png").stat().st_size > 0  # drawn with the others
    model = xae.load(run)
    rows = tempered_samples(model, n=5, temperatures=(1.0, 0.5), seed=3)
    assert rows.shape == (10, 1, 8, 8)
    with torch.no_grad():
        torch.manual_seed(3)
        z1 = model.sample_z(5, 1.0)
        torch.manual_seed(3)
        z_half = model.sample_z(5, 0.5)
        torch.testing.assert_close(z_half[:, :2], 0.5 * z1[:, :2])  # the same noise, scaled
        torch.testing.assert_close(rows[:5], model.decode(z1))
        torch.testing.assert_close(rows[5:], model.decode(z_half))
    assert not torch.allclose(rows[:5], rows[5:])
    out = temperatures(model, tmp_path / "t.png", n=4)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_prior_without_a_temperature_skips_that_figure(tmp_path: Path, caplog) -> None:
    model = xae.build(xae.preset("vae", **TOPDOWN, **{"model.prior": "mog"}))
    x = torch.rand(8, 1, 8, 8).round()
    with caplog.at_level(logging.WARNING):
        paths = hierarchy_figures(tmp_path, model, x)
    assert [p.name for p in paths] == ["levels.png"]  # no log: no rate_groups.png either
    assert "temperatures.png was not drawn" in caplog.text and "no temperature" in caplog.text
