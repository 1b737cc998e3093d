"""Issue 4's presets end to end on the bundled digits: each trains, reloads, draws its figures
and passes the whole evaluation (`xae eval`'s report, the IW likelihood where a posterior
exists, the hole metrics), with the rate and the KL reported for what they are."""
from __future__ import annotations

import json
import math

import pytest
from conftest import TINY, run_xae

import xae
from xae.data import load as load_data
from xae.evaluate.report import full_report

PRESETS = ["iwae", "mog-vae", "vamp-vae", "flow-prior-vae", "wae-mmd", "info-vae", "beta-tcvae",
           "dip-vae-i", "dip-vae-ii", "annealed-vae"]


@pytest.fixture(scope="module")
def digits():
    return load_data(xae.preset("vae").data)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_and_evaluates(name, digits, tmp_path):
    cfg = xae.preset(name, latent_dim=2, steps=40, progress=False, log_every=10,
                     **{"train.checkpoint_every": 40})
    run = xae.train(cfg, tmp_path / name, data=digits)
    figures = {p.name for p in (run / "figures").iterdir()}
    assert {"samples.png", "latent_map.png", "reconstructions.png"} <= figures
    model = xae.load(run)
    rep = full_report(model, digits, k=8 if model.stochastic else None, images=True)
    m = rep.metrics
    assert all(math.isfinite(v) for v in m.values() if isinstance(v, float))
    assert m["holes_mmd"] == m["holes_mmd"] and "psnr" in m
    if model.stochastic:
        assert "holes.png" in figures and 0 <= m["holes_fraction"] <= 1
        assert m["nll_iw"] <= m["neg_elbo_k"] + 1e-6  # the IW bound is the tighter one
        kl = m["rate"] if model.regularizer.is_kl else m["kl"]
        assert m["neg_elbo"] == pytest.approx(m["distortion"] + kl)
    else:  # the WAE's rate is an MMD, not a KL: no ELBO to report
        assert "neg_elbo" not in m and "kl" not in m and rep.skipped["likelihood"]
    assert ("kl" in m) == (model.stochastic and not model.regularizer.is_kl)


@pytest.mark.parametrize("name", ["vamp-vae", "wae-mmd"])
def test_xae_eval_on_the_command_line(name, tmp_path):
    out = tmp_path / name
    p = run_xae("train", "--preset", name, "--steps", "20", "--set", *TINY,
                "train.figures=false", "--out", str(out))
    assert p.returncode == 0, p.stderr
    k = ["--k", "5"] if name == "vamp-vae" else []  # the WAE's code has no posterior
    p = run_xae("eval", str(out), "--json", *k, "--no-images")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert ("nll_iw" in got) == (name == "vamp-vae") and "holes_mmd" in got
    assert json.loads((out / "eval.json").read_text())["test"]["holes_mmd"] == got["holes_mmd"]
