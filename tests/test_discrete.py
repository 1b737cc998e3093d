"""Discrete bottlenecks inside the model: code metrics against hand counts, the KL and
negative ELBO of one-hot and categorical codes against closed forms, straight-through
gradients reaching the encoder, the trainer's step reaching the Gumbel temperature, the
config checks, and the fitted code prior driving `xae sample` and `xae eval`."""
from __future__ import annotations

import json
import math

import pytest
import torch

import xae
from xae.cli import main
from xae.codeprior import fit_code_prior
from xae.evaluate.codes import code_counts, usage_metrics
from xae.model import inference

SMALL = {"model.mlp.hidden": [32], "model.vq.code_dim": 3, "model.vq.codebook_size": 8,
         "model.gumbel.code_dim": 3, "model.gumbel.codebook_size": 8,
         "model.lfq.codebook_size": 8, "model.fsq.levels": [3, 4, 2], "model.rvq.stages": 2,
         "latent_dim": 6}
QUANTIZED = ["vq-vae", "vq-vae-ema", "rvq-vae", "fsq-ae", "lfq-ae", "dvae"]


def _model(name: str, **overrides) -> xae.Autoencoder:
    torch.manual_seed(0)
    return xae.build(xae.preset(name, **{**SMALL, **overrides}))


def _digits(n: int = 64) -> torch.Tensor:
    return xae.data.load(xae.preset("vae").data).train_x[:n]


def test_code_metrics_match_hand_counts():
    idx = torch.tensor([[0, 0], [1, 0], [0, 3]])  # K = 4: counts 4, 1, 0, 1
    counts = code_counts(idx, 4)
    assert counts.tolist() == [[4, 1, 0, 1]]
    m = usage_metrics(counts)
    p = torch.tensor([4, 1, 1], dtype=torch.float64) / 6
    assert m["code_usage"] == pytest.approx(0.75)
    assert m["code_perplexity"] == pytest.approx(float(torch.exp(-(p * p.log()).sum())))
    # two residual stages are counted apart: (N, P, S) with stage 0 using 1 code, stage 1 two
    staged = torch.tensor([[[2, 0], [2, 1]], [[2, 1], [2, 1]]])
    counts = code_counts(staged, 4, stages=2)
    assert counts.tolist() == [[0, 0, 4, 0], [1, 3, 0, 0]]
    m = usage_metrics(counts)
    assert m["code_usage"] == pytest.approx((1 / 4 + 2 / 4) / 2)
    h1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert m["code_perplexity"] == pytest.approx((1 + math.exp(h1)) / 2)


@pytest.mark.parametrize("name", QUANTIZED)
def test_the_distortion_alone_reaches_the_encoder_through_the_quantizer(name):
    model = _model(name)
    x = _digits()
    model(x)  # a first training pass (k-means initialisation of VQ codebooks)
    model.zero_grad(set_to_none=True)
    model(x).distortion.mean().backward()  # no aux loss, no rate: only the straight-through path
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all((g != 0).any() for g in grads)


@pytest.mark.parametrize("name", ["vq-vae", "rvq-vae", "fsq-ae", "lfq-ae"])
def test_a_one_hot_code_has_the_kl_of_the_uniform_prior(name):
    """A deterministic quantizer puts all of q on one code per position (and stage), so
    KL(q ‖ uniform) = P·S·log K exactly, and neg_elbo = distortion + that KL."""
    model = _model(name)
    x = _digits(200)
    model(x)
    res = xae.evaluate_model(model, x, hole_metrics=False).metrics
    q = model.bottleneck
    kl = q.positions * q.stages * math.log(q.codebook_size)
    assert res["rate"] == 0.0
    assert res["kl"] == pytest.approx(kl, rel=1e-6)
    assert res["neg_elbo"] == pytest.approx(res["distortion"] + kl, rel=1e-6)
    assert res["code_bits_per_image"] == pytest.approx(kl / math.log(2), rel=1e-6)
    assert 0 < res["code_usage"] <= 1 and 1 <= res["code_perplexity"] <= q.codebook_size


def test_the_gumbel_rate_is_the_kl_of_its_categorical_posterior():
    model = _model("dvae")
    x = _digits()
    torch.manual_seed(1)
    out = model(x, step=0)
    logits = out.posterior.logits.double()
    p = torch.softmax(logits, -1)
    kl = (p * (torch.log(p) + math.log(8))).sum(-1).sum(-1)  # Σ_positions Σ_k p log(p/(1/K))
    torch.testing.assert_close(out.rate.double(), kl, rtol=1e-5, atol=1e-5)


def test_the_trainer_step_sets_the_gumbel_temperature():
    model = _model("dvae", **{"model.gumbel.temperature.kind": "linear",
                              "model.gumbel.temperature.start": 5.0,
                              "model.gumbel.temperature.value": 0.05,
                              "model.gumbel.temperature.warmup": 100})
    x = _digits()
    with torch.no_grad():
        y = {}
        for step in (0, 100):
            torch.manual_seed(3)
            z = model(x, step=step).z.view(x.shape[0], model.bottleneck.positions, -1)
            # how far the code is from its nearest codebook row: 0 for a one-hot sample
            dist = torch.cdist(z.reshape(-1, z.shape[-1]), model.bottleneck.codebook)
            y[step] = float(dist.min(-1).values.mean())
    assert y[100] < 0.2 * y[0]  # τ = 0.05 at the end of the ramp: nearly one-hot codes


@pytest.mark.parametrize("overrides,match", [
    ({"model.bottleneck": "vq", "model.prior": "normal"}, "model.prior=codes"),
    ({"model.bottleneck": "gaussian", "model.prior": "codes", "model.regularizer": "kl"},
     "discrete bottleneck"),
    ({"model.bottleneck": "vq", "model.prior": "codes", "model.regularizer": "kl"},
     "posterior"),
    ({"model.bottleneck": "gumbel", "model.prior": "codes", "model.regularizer": "kl",
      "model.objective": "iwae"}, "gaussian"),
    ({"model.bottleneck": "rvq", "model.prior": "codes", "model.rvq.stage_quantizer":
      "gumbel"}, "model.rvq.stage_quantizer"),
    ({"model.bottleneck": "vq", "model.prior": "codes", "latent_dim": 16,
      "model.vq.code_dim": 5}, "multiple of the code size 5"),
    ({"model.bottleneck": "rvq", "model.prior": "codes", "latent_dim": 16,
      "model.vq.code_dim": 5}, "multiple of the code size 5"),  # the stages read model.vq
])
def test_inconsistent_discrete_configs_are_refused(overrides, match):
    with pytest.raises(xae.XaeError, match=match):
        xae.build(xae.preset("ae", **{"model.mlp.hidden": [32], **overrides}))


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("discrete") / "vq"
    cfg = xae.preset("vq-vae", **{**SMALL, "steps": 60, "progress": False, "figures": False,
                                  "log_every": 20, "model.vq.codebook_size": 16})
    xae.train(cfg, run)
    fit_code_prior(run, epochs=3, layers=1, dim=32, heads=2, lr=3e-3)
    return run


def test_training_logs_codebook_usage(fitted_run):
    lines = [json.loads(s) for s in (fitted_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [20, 40, 60]
    for r in lines:
        assert 0 < r["code_usage"] <= 1 and 1 <= r["code_perplexity"] <= 16
        assert r["code_restarts"] >= 0


def test_a_fitted_code_prior_drives_sampling_and_evaluation(fitted_run, tmp_path, capsys):
    model = xae.load(fitted_run)
    assert model.prior.ar is not None
    test_x = xae.data.load(model.config.data).test_x
    with inference(model):
        grid = model.encode(test_x).indices
    res = xae.evaluate_model(model, test_x, hole_metrics=False).metrics
    uniform = res["code_bits_per_image"]
    fitted = json.loads((fitted_run / "code_prior" / "metrics.json").read_text())
    assert res["code_prior_bits_per_image"] == pytest.approx(fitted["test_bits_per_image"],
                                                             rel=1e-4)
    assert res["code_prior_bits_per_image"] < uniform
    assert res["kl"] == pytest.approx(res["code_prior_bits_per_image"] * math.log(2), rel=1e-6)
    torch.manual_seed(0)
    grids = model.prior.sample_indices(500)
    assert grids.shape == (500, *grid.shape[1:])
    # samples follow the fitted prior, not the uniform one: they score better under it
    with torch.no_grad():
        assert float(-model.prior.log_prob_indices(grids).mean()) / math.log(2) < uniform
    out = tmp_path / "s.png"
    assert main(["sample", str(fitted_run), "-n", "8", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
    capsys.readouterr()
    assert main(["eval", str(fitted_run), "--no-images", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["code_prior_bits_per_image"] == pytest.approx(
        res["code_prior_bits_per_image"], rel=1e-6)
