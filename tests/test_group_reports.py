"""What a run of a hierarchy reports per latent group: the held-out evaluations (rate and
active units of each group), the figure of each group's KL over training, samples at several
temperatures, and a divergence that names the group whose KL broke."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import xae
from xae.bottlenecks import BOTTLENECKS, TopDown
from xae.cli import main
from xae.data import load as load_data
from xae.data.split import hold_out
from xae.evaluate.diagnostics import evaluate
from xae.outputs import BottleneckOutput, LatentGroup
from xae.train.loop import TrainingDiverged
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
    m = evaluate(model, held.test_x[:cfg.train.eval_samples], seed=cfg.train.seed,
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


# ---- a divergence in one group ------------------------------------------------------------

BREAK_AT = 12  # the training step (counted from 0) whose z2 prior turns NaN


class BreaksAtStep(TopDown):
    """A test-only top-down hierarchy whose prior of z2 has a NaN mean from training step
    ``BREAK_AT`` on: the KL of z2 alone becomes NaN (z, hence the distortion, stays finite)."""

    KEYS: dict = {}

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__(in_features, latent_dim, groups=[8, 8])

    @classmethod
    def prior_dim(cls, latent_dim: int, settings: dict, data_shape: tuple) -> int:
        return 8

    def forward(self, h: torch.Tensor, step: int | None = None) -> BottleneckOutput:
        out = super().forward(h, step)
        if step is not None and step >= BREAK_AT:
            g = out.groups[1]
            p = type(g.prior)(torch.full_like(g.prior.mean, float("nan")), g.prior.logvar)
            out.groups[1] = LatentGroup(g.name, g.z, g.posterior, p)
        return out


BREAKING = ["model.bottleneck=breaks", "model.latent_dim=16", "model.mlp.hidden=[32]",
            "train.checkpoint_every=5", "train.log_every=5", "train.eval_every=0",
            "train.figures=false"]


@pytest.fixture
def breaks(monkeypatch) -> None:
    monkeypatch.setitem(BOTTLENECKS, "breaks", BreaksAtStep)


def test_a_nan_kl_in_one_group_stops_the_run_naming_it(breaks, tmp_path: Path) -> None:
    cfg = xae.config.validate(xae.config.apply(xae.preset("vae"),
                                               xae.config.parse_overrides(BREAKING)))
    cfg.train.progress = False
    good = xae.train(xae.config.apply(cfg, {"train.steps": 10}), tmp_path / "good")
    cfg.train.steps = 40
    with pytest.raises(TrainingDiverged) as e:
        xae.train(cfg, tmp_path / "bad")
    msg = str(e.value)
    assert f"at step {BREAK_AT + 1}" in msg and "rate term 'rate/z2'" in msg
    assert "last good checkpoint (step 10)" in msg
    bad = tmp_path / "bad"
    state = torch.load(bad / "checkpoint" / "state.pt", weights_only=True)
    assert state["step"] == 10
    a = load_file(str(bad / "checkpoint" / "model.safetensors"))
    b = load_file(str(good / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the 10-step run's
    assert all(torch.isfinite(v).all() for v in a.values())
    assert [r["step"] for r in _lines(bad / "metrics.jsonl")] == [5, 10]


def test_the_cli_prints_the_divergence_as_an_error(breaks, tmp_path: Path, capsys) -> None:
    code = main(["train", "--steps", "40", "--no-progress", "--out", str(tmp_path / "run"),
                 "--set", *BREAKING])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("xae: error: training diverged") and "'rate/z2'" in err
    assert "Traceback" not in err and (tmp_path / "run" / "checkpoint").is_dir()
