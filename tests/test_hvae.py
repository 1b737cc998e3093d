"""The top-down ResNet VAE (preset hvae): spatial groups at several scales walked down the
decoder's own path, the residual normal posterior, K-sample draws, the safeguards, and the
whole CLI on a tiny model of the digits."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import xae
from xae.cli import main
from xae.distributions import DiagonalGaussian
from xae.explore.runs import load_run
from xae.nets.hvae import plan
from xae.runfiles import EVAL
from xae.train.loop import SKIPS_IN_ROW, TrainingDiverged

# digits are 8×8: scales 2×2 (top) and 4×4, one group of 2 channels at the top, two below
TINY = {"data.name": "digits", "data.binarize": "none", "model.hvae.channels": 8,
        "model.hvae.groups": [1, 2], "model.hvae.z_channels": 2, "model.latent_dim": 72}
CLI = ["data.name=digits", "data.binarize=none", "model.hvae.channels=8",
       "model.hvae.groups=[1,2]", "model.hvae.z_channels=2", "model.latent_dim=72"]


def _model(seed: int = 0, **extra) -> xae.Autoencoder:
    torch.manual_seed(seed)
    return xae.build(xae.preset("hvae", **{**TINY, **extra}))


def _x(n: int = 6) -> torch.Tensor:
    return xae.data.load(xae.preset("hvae", **TINY).data).train_x[:n]


def test_the_groups_sit_at_their_scales_and_sum_to_the_code() -> None:
    p = plan((1, 28, 28), 32, [1, 2, 2], 4, 1)
    assert p.grids == ((4, 4), (7, 7), (14, 14))
    assert p.sizes == [64, 196, 196, 784, 784] and p.latent_dim == 2024
    assert xae.preset("hvae").model.latent_dim == 2024  # the preset fits MNIST
    m = _model()
    out = m(_x(), beta=1.0)
    assert [g.name for g in out.groups] == ["z1", "z2", "z3"]
    assert [g.z.shape[1] for g in out.groups] == [8, 32, 32]
    assert set(out.terms) == {"distortion", "rate/z1", "rate/z2", "rate/z3"}


def test_one_walk_gives_the_codes_and_what_the_decoder_makes_of_them() -> None:
    m = _model().eval()
    with torch.no_grad():
        out = m.encode(_x())
        torch.testing.assert_close(out.theta, m.decode_params(out.z))


def test_each_group_kl_is_the_closed_form_against_the_prior_its_path_computed() -> None:
    m = _model()
    out = m(_x(), beta=1.0)
    for g in out.groups:
        q, p = g.posterior, g.prior
        if p is None:  # the top group: N(0, I), the model's prior piece
            p = DiagonalGaussian(torch.zeros_like(q.mean), torch.zeros_like(q.logvar))
        kl = 0.5 * (p.logvar - q.logvar + (q.logvar.exp() + (q.mean - p.mean) ** 2)
                    / p.logvar.exp() - 1).sum(-1)
        torch.testing.assert_close(out.terms[f"rate/{g.name}"].value, kl)


def test_the_posterior_is_residual_to_the_prior() -> None:
    """With each head's output at zero, q(z_l | x, z_<l) is p(z_l | z_<l) below the top (a
    KL of exactly 0), while the top group stays N(0, I) against N(0, I) too."""
    m = _model()
    with torch.no_grad():
        for head in m.bottleneck.heads:
            head[-1].weight.zero_()
            head[-1].bias.zero_()
        for prior in m.decoder.priors:  # priors that are not N(0, I)
            prior[-1].bias.uniform_(-1, 1)
    out = m(_x(), beta=1.0)
    for g in out.groups[1:]:
        torch.testing.assert_close(g.posterior.mean, g.prior.mean)
        torch.testing.assert_close(g.posterior.logvar, g.prior.logvar)
        assert g.prior.mean.abs().max() > 0.1
        assert out.terms[f"rate/{g.name}"].value.abs().max() < 1e-5


def test_k_draws_walk_k_paths_per_datum() -> None:
    """K draws per datum are K independent walks: the same as one walk over the data
    repeated K times with the same noise, folded to (K, B)."""
    m, x, k = _model(), _x(5), 3
    torch.manual_seed(1)
    d = m.draw(x, k)
    torch.manual_seed(1)
    out = m(x.repeat(k, 1, 1, 1), beta=1.0)
    assert d.distortion.shape == d.rate.shape == (k, 5)
    torch.testing.assert_close(d.distortion.flatten(), out.terms["distortion"].value)
    log_q = sum(g.posterior.log_prob(g.z) for g in out.groups)
    log_p = m.prior.log_prob(out.groups[0].z) + sum(g.prior.log_prob(g.z)
                                                    for g in out.groups[1:])
    torch.testing.assert_close(d.rate.flatten(), log_q - log_p)


def test_levels_and_temperatures_go_down_the_same_path() -> None:
    m, x = _model().eval(), _x(4)
    h = m.features(x)
    with torch.no_grad():
        torch.testing.assert_close(m.bottleneck.posterior_then_prior(h, 3, m.prior),
                                   m.latent_mean(x))
        torch.manual_seed(0)
        a = m.bottleneck.posterior_then_prior(h, 1, m.prior)
        torch.manual_seed(1)
        b = m.bottleneck.posterior_then_prior(h, 1, m.prior)
    assert torch.equal(a[:, :8], b[:, :8]) and not torch.equal(a[:, 8:], b[:, 8:])
    cold = m.sample_z(2000, temperature=0.1)[:, :8]  # the top group: N(0, 0.1² I)
    assert cold.std().item() == pytest.approx(0.1, rel=0.1)
    with pytest.raises(xae.XaeError, match="temperature"):
        m.sample(2, temperature=0.0)


def test_pieces_and_sizes_that_do_not_fit_are_clear_errors() -> None:
    with pytest.raises(xae.XaeError, match=r"model.latent_dim .* = 72 .* got 70"):
        _model(**{"model.latent_dim": 70})
    with pytest.raises(xae.XaeError, match="model.encoder=hvae and model.decoder=hvae"):
        _model(**{"model.encoder": "mlp", "model.decoder": "mlp"})
    with pytest.raises(xae.XaeError, match="reach 1×1"):
        _model(**{"model.hvae.groups": [1, 1, 1, 1]})
    with pytest.raises(xae.XaeError, match="even H and W"):
        plan((1, 7, 8), 8, [1], 2, 1)


def _train(out: Path, steps: int, *extra: str) -> list[dict]:
    assert main(["train", "--preset", "hvae", "--steps", str(steps), "--out", str(out),
                 "--no-progress", "--set", "train.log_every=10", "train.figures=false",
                 "train.eval_every=0", "beta.warmup=20", *CLI, *extra]) == 0
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("hvae") / "run"
    return out, _train(out, 80)


def test_hvae_trains_evaluates_samples_exports_and_shows(run, capsys, tmp_path) -> None:
    path, log = run
    assert log[-1]["distortion"] < log[0]["distortion"]
    assert {"rate/z1", "rate/z2", "rate/z3", "skipped"} <= set(log[0])
    capsys.readouterr()
    assert main(["eval", str(path), "--no-progress", "--json", "--k", "20",
                 "--no-images"]) == 0
    t = json.loads((path / EVAL).read_text())["test"]
    assert {"rate/z1", "rate/z3", "active_units/z1", "active_units/z3"} <= set(t)
    assert math.isfinite(t["nll_iw"]) and t["nll_iw"] <= t["neg_elbo"] + 3 * t["nll_iw_se"]
    assert main(["sample", str(path), "-n", "4", "--temperature", "0.7",
                 "-o", str(tmp_path / "s.png")]) == 0
    assert main(["reconstruct", str(path), "-n", "4", "-o", str(tmp_path / "r.png")]) == 0
    assert main(["export", str(path), "--out", str(tmp_path / "onnx")]) == 0
    meta = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert meta["latent_dim"] == 72 and max(meta["max_abs_diff"].values()) < 1e-4
    view = load_run(path)
    assert view.decode(view.prior[:3]).shape == (3, 1, 8, 8)


def test_skipped_updates_leave_the_weights_and_too_many_stop_the_run(tmp_path) -> None:
    """An update whose gradient norm exceeds train.skip_grad_norm is not applied; a run whose
    every update is skipped stops with the setting named instead of not learning."""
    out = tmp_path / "skip"
    log = _train(out, 20, "train.skip_grad_norm=1e-6", "train.checkpoint_every=20")
    assert all(r["skipped"] == 1.0 for r in log)
    fresh, trained = _model(), xae.load(out)
    for (name, a), b in zip(fresh.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(TrainingDiverged, match=r"train.skip_grad_norm \(1e-06\)"):
        xae.train(xae.preset("hvae", **{**TINY, "train.steps": SKIPS_IN_ROW + 5,
                                        "train.skip_grad_norm": 1e-6, "train.progress": False,
                                        "train.figures": False, "train.eval_every": 0}),
                  tmp_path / "stop")


def test_a_lower_unit_that_only_follows_its_prior_is_not_active() -> None:
    """Below the top, q = p (zeroed heads) with priors that vary with z1: the posterior means
    vary over the data, but no lower unit carries anything (a KL of 0), so none is active;
    the top group, read directly, is."""
    from xae.evaluate.diagnostics import active_unit_counts, active_units, rate_distortion
    m = _model()
    with torch.no_grad():
        for head in m.bottleneck.heads[1:]:
            head[-1].weight.zero_()
            head[-1].bias.zero_()
        m.bottleneck.heads[0][-1].weight.normal_(0, 30)  # a top group that varies
        for prior in m.decoder.priors:
            prior[-1].weight.normal_(0, 1)
    rd = rate_distortion(m, _x(200))
    assert rd.terms["rate/z2"].abs().max() < 1e-4 and rd.terms["rate/z3"].abs().max() < 1e-4
    assert active_units(rd.means)[8:].sum() > 0  # the means alone would count them
    counts = active_unit_counts(rd)
    assert counts["active_units/z2"] == counts["active_units/z3"] == 0
    assert counts["active_units/z1"] > 0 and counts["active_units"] == counts["active_units/z1"]


def test_hvae_trains_under_torchrun(tmp_path) -> None:
    """The bottleneck walks the decoder's path inside DDP's wrapper: two gloo processes train
    the same model, and the loss falls."""
    from conftest import torchrun_xae
    code, out, err = torchrun_xae(
        "train", "--preset", "hvae", "--steps", "40", "--no-progress", "--out",
        str(tmp_path / "ddp"), "--set", "train.log_every=10", "train.figures=false",
        "train.eval_every=0", "beta.warmup=20", *CLI)
    assert code == 0, err
    log = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text()
           .splitlines()]
    assert [r["step"] for r in log] == [10, 20, 30, 40]
    assert log[-1]["distortion"] < log[0]["distortion"]
