"""The first consumers of the open core, end to end on the CLI: FactorVAE (a discriminator
with its own optimizer), a conv VAE with a spatial code, and a two-group top-down VAE."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import xae
from xae.cli import main
from xae.distributions import DiagonalGaussian
from xae.explore.runs import load_run
from xae.optim import MODEL, OptimizerSpec, build_optimizers, owners
from xae.outputs import BottleneckOutput
from xae.regularizers.factor import FactorTC
from xae.runfiles import EVAL
from xae.train.checkpoint import load_state

STEPS = ["--no-progress", "--set", "train.log_every=10", "train.checkpoint_every=20",
         "train.figures=false", "train.eval_every=0"]
FACTOR = ["model.factor.hidden=[64,64]", "model.mlp.hidden=[64]"]
CONV = ["model.conv_map.channels=[16,32]", "model.latent_dim=16"]  # digits: a 4×2×2 map
TOPDOWN = ["model.bottleneck=topdown", "model.topdown.groups=[4,4]", "model.latent_dim=8",
           "model.topdown.hidden=32", "model.mlp.hidden=[64]"]


def _train(out: Path, preset: str, steps: int, *extra: str) -> list[dict]:
    assert main(["train", "--preset", preset, "--steps", str(steps), "--out", str(out),
                 *STEPS, *extra]) == 0
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _eval(run: Path, capsys, *args: str) -> dict:
    """The report `xae eval` writes to RUN/eval.json (test metrics, notes, …); ``--json``
    prints its test metrics."""
    capsys.readouterr()
    assert main(["eval", str(run), "--no-progress", "--json", *args]) == 0
    rep = json.loads((run / EVAL).read_text())
    assert json.loads(capsys.readouterr().out) == rep["test"]
    return rep


# ---------------------------------------------------------------------------- FactorVAE

@pytest.fixture(scope="module")
def factor_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("factor") / "run"
    return out, _train(out, "factor-vae", 80, *FACTOR)


def test_factor_vae_trains_two_optimizers_and_logs_its_terms(factor_run) -> None:
    run, log = factor_run
    assert {"kl", "tc", "discriminator_loss", "rate", "distortion"} <= set(log[0])
    assert log[-1]["loss"] < log[0]["loss"] - 1.0  # the model learned
    assert all(math.isfinite(r["discriminator_loss"]) for r in log)
    state = load_state(run)
    assert set(state["optimizers"]) == {MODEL, "discriminator"}
    # the discriminator's own Adam stepped every parameter at every step, on real gradients
    # (whether it can tell q(z) from q̄(z): test_the_discriminator_estimates_the_total_…)
    moments = state["optimizers"]["discriminator"]["state"].values()
    assert moments and all(int(m["step"]) == 80 and m["exp_avg"].abs().sum() > 0
                           for m in moments)
    model = xae.load(run)
    groups = state["optimizers"]["discriminator"]["param_groups"]
    n_disc = sum(p.numel() for p in model.regularizer.discriminator.parameters())
    assert sum(len(g["params"]) for g in groups) == len(
        list(model.regularizer.discriminator.parameters())) and n_disc > 0
    assert [g["betas"] for g in groups] == [(0.5, 0.9)] * len(groups)


def test_the_discriminator_estimates_the_total_correlation() -> None:
    """Stepped on its own loss by the optimizer it declares, the discriminator tells codes
    with correlation ρ = 0.9 from their dimension-permuted copies, and the TC term it gives
    the model approaches the true TC = −½ log(1 − ρ²) ≈ 0.83 nats. (A short training run on
    digits does not show this: its codes carry almost no total correlation for it to find.)"""
    torch.manual_seed(0)
    rho = 0.9
    reg = FactorTC(hidden=[32, 32], lr=1e-3)
    model = xae.build(xae.preset("vae", latent_dim=2))  # a 2-d code and its N(0, I) prior
    reg.bind(model)
    opts = build_optimizers(reg, OptimizerSpec(1e-3))
    assert set(opts) == {"discriminator"}

    def rate(n: int):
        u = torch.randn(n, 2)
        z = torch.stack([u[:, 0], rho * u[:, 0] + math.sqrt(1 - rho ** 2) * u[:, 1]], 1)
        return reg(BottleneckOutput(z=z, posterior=DiagonalGaussian(z, torch.zeros_like(z))),
                   model.prior)

    reg.train()
    for step in range(500):
        loss = rate(256).losses["discriminator"]
        opts["discriminator"].zero_grad()
        loss.backward()
        opts["discriminator"].step()
    assert loss < math.log(2) - 0.1  # well off chance level
    reg.eval()
    r = rate(20_000)
    assert r.losses == {}  # in eval mode the discriminator does not learn
    assert r.terms["tc"].value.mean().item() == pytest.approx(-0.5 * math.log(1 - rho ** 2),
                                                              rel=0.2)


def test_the_model_loss_sends_no_gradient_into_the_discriminator() -> None:
    cfg = xae.preset("factor-vae", **{"model.factor.hidden": [16], "model.mlp.hidden": [32]})
    model = xae.build(cfg)
    out = model(torch.rand(32, 1, 8, 8).round(), step=0)
    disc = [n for n, o in owners(model).items() if o == "discriminator"]
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(out.loss, [params[n] for n in disc], allow_unused=True)
    assert all(g is None or not g.abs().sum() for g in grads)
    enc = torch.autograd.grad(out.terms["tc"].value.sum(), model.encoder.net[1].weight)[0]
    assert enc.abs().sum() > 0  # but the TC estimate does pull on the encoder
    rest = [p for n, p in params.items() if n not in disc]
    grads = torch.autograd.grad(out.losses["discriminator"], rest, allow_unused=True)
    assert all(g is None for g in grads)  # and its own loss moves only the discriminator


def test_factor_vae_resumes_bit_exactly(tmp_path: Path) -> None:
    full = _train(tmp_path / "full", "factor-vae", 40, *FACTOR)
    _train(tmp_path / "part", "factor-vae", 20, *FACTOR)
    assert main(["train", "--resume", str(tmp_path / "part"), "--no-progress", "--set",
                 "train.steps=40"]) == 0
    resumed = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text()
               .splitlines()]
    drop = ("samples_per_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in drop} for r in full]
    a, b = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("full", "part"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_factor_vae_eval_shows_its_terms_and_how_they_were_computed(factor_run, capsys) -> None:
    run, _ = factor_run
    rep = _eval(run, capsys, "--k", "10", "--no-images")
    assert {"kl", "tc", "neg_elbo", "nll_iw"} <= set(rep["test"])
    assert "tc: TC, density ratio of a discriminator (Kim & Mnih 2018)" in rep["notes"]
    assert "kl: KL, analytic" in rep["notes"]


def test_free_bits_are_an_error_where_no_kl_can_take_them() -> None:
    for preset in ("info-vae", "beta-tcvae", "wae-mmd"):
        with pytest.raises(xae.XaeError, match="kl.free_bits"):
            xae.build(xae.preset(preset, **{"model.kl.free_bits": 0.5}))


# ---------------------------------------------------------------------------- conv VAE

@pytest.fixture(scope="module")
def conv_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("conv") / "run"
    return out, _train(out, "conv-vae", 60, *CONV)


def test_conv_vae_has_a_spatial_code_and_no_dense_layer(conv_run) -> None:
    run, log = conv_run
    assert log[-1]["loss"] < log[0]["loss"]
    model = xae.load(run)
    assert model.latent_shape == (4, 2, 2) and model.latent_dim == 16
    assert not any(isinstance(m, torch.nn.Linear) for m in (*model.encoder.modules(),
                                                          *model.decoder.modules()))
    # the bottleneck acts per position: one position's code depends on its features alone
    h = model.encoder(torch.rand(2, 1, 8, 8))
    h2 = h.clone()
    h2[:, :, 0, 0] += 1.0
    q1, q2 = model.bottleneck(h).posterior.mean, model.bottleneck(h2).posterior.mean
    changed = (q1 - q2).abs().view(2, 2, 2, 4).sum((0, 3)) > 0  # (h, w) positions
    assert changed.tolist() == [[True, False], [False, False]]


def test_conv_vae_evaluates_samples_exports_and_shows(conv_run, capsys, tmp_path) -> None:
    run, _ = conv_run
    rep = _eval(run, capsys, "--k", "20", "--no-images")
    assert math.isfinite(rep["test"]["nll_iw"]) and rep["test"]["nll_iw"] <= \
        rep["test"]["neg_elbo"] + 3 * rep["test"]["nll_iw_se"] + 1e-6
    assert main(["sample", str(run), "-n", "8", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["export", str(run), "--out", str(tmp_path / "onnx")]) == 0
    meta = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert meta["latent_dim"] == 16 and max(meta["max_abs_diff"].values()) < 1e-4
    view = load_run(run)
    assert view.prior.shape[1] == 16 and view.coords.shape[1] == 2
    assert view.decode(view.prior[:3]).shape == (3, 1, 8, 8)


def test_a_spatial_code_must_fill_the_map() -> None:
    with pytest.raises(xae.XaeError, match="multiple of 4"):
        xae.build(xae.preset("conv-vae", **{"model.conv_map.channels": [16, 32],
                                             "model.latent_dim": 10}))


# ---------------------------------------------------------------------------- top-down

def test_a_two_group_top_down_vae_on_the_cli(tmp_path: Path, capsys) -> None:
    log = _train(tmp_path / "run", "vae", 60, *TOPDOWN)
    assert {"rate/z1", "rate/z2"} <= set(log[0]) and log[-1]["loss"] < log[0]["loss"]
    for r in log:
        assert r["rate"] == pytest.approx(r["rate/z1"] + r["rate/z2"], rel=1e-5)
    rep = _eval(tmp_path / "run", capsys, "--k", "20", "--no-images")
    t = rep["test"]
    assert {"rate/z1", "rate/z2", "nll_iw", "holes_mmd"} <= set(t) and "holes_fraction" not in t
    assert t["neg_elbo"] == pytest.approx(t["distortion"] + t["rate"], rel=1e-6)
    assert main(["sample", str(tmp_path / "run"), "-n", "4", "-o", str(tmp_path / "s.png")]) == 0
    assert main(["reconstruct", str(tmp_path / "run"), "-n", "4",
                 "-o", str(tmp_path / "r.png")]) == 0
    assert load_run(tmp_path / "run").prior.shape[1] == 8
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "onnx")]) == 0
    meta = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert max(meta["max_abs_diff"].values()) < 1e-4  # the encoder walks down the groups


def test_a_spatial_code_reports_its_channels_and_the_rate_per_pixel(conv_run) -> None:
    run, _ = conv_run
    model = xae.load(run)
    x = xae.data.load(model.config.data).test_x[:200]
    m = xae.evaluate_model(model, x).metrics
    means = model.latent_mean(x).detach().double().view(200, 2, 2, 4)  # channel-last
    for c in range(4):
        assert m[f"latent_mean/c{c}"] == pytest.approx(float(means[..., c].mean()), abs=1e-6)
        assert m[f"latent_std/c{c}"] == pytest.approx(float(means[..., c].std()), rel=1e-5)
    assert m["latent_abs_max"] == pytest.approx(float(means.abs().max()), rel=1e-6)
    assert m["rate_bits_per_pixel"] == pytest.approx(m["rate"] / (64 * math.log(2)), rel=1e-9)
