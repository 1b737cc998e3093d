"""The IWAE objective (Burda et al. 2016) against closed forms on a linear-Gaussian model."""
from __future__ import annotations

import json
import math

import pytest
import torch
from test_evaluate import LOGVAR_SHIFT, MEAN_SHIFT, _perturbed
from test_math import _linear_vae, _ppca

import xae
from xae.objectives import effective_sample_size


def _iwae(k: int, exact_posterior: bool = False) -> tuple[xae.Autoencoder, torch.Tensor, torch.Tensor]:
    w, mu, x, exact = _ppca()
    shifts = {} if exact_posterior else {"mean_shift": MEAN_SHIFT, "logvar_shift": LOGVAR_SHIFT}
    return _linear_vae(w, mu, objective="iwae", **{"model.iwae.samples": k}, **shifts), x, exact


def test_iwae_with_k1_equals_the_elbo_in_expectation():
    _, _, exact, kl = _perturbed()
    model, x, _ = _iwae(1)
    torch.manual_seed(0)
    losses = torch.stack([model(x[:100]).loss.detach() for _ in range(400)])
    elbo = (exact[:100] - kl).mean().item()
    assert abs(-losses.mean().item() - elbo) < 4 * losses.std().item() / math.sqrt(400)


def test_iwae_bound_tightens_with_k_towards_the_exact_log_likelihood():
    _, _, exact, kl = _perturbed()
    bounds = []
    for k in (1, 10, 200):
        model, x, _ = _iwae(k)
        torch.manual_seed(k)
        bounds.append(-torch.stack([model(x[:100]).loss.detach() for _ in range(20)]).mean().item())
    target = exact[:100].mean().item()
    assert bounds[0] < bounds[1] < bounds[2] <= target + 0.01
    assert target - bounds[2] < 0.15 and bounds[0] == pytest.approx(target - kl, abs=0.1)


def test_ess_is_k_for_the_exact_posterior_and_within_1_and_k_otherwise():
    model, x, exact = _iwae(8, exact_posterior=True)
    out = model(x[:50])
    torch.testing.assert_close(out.ess, torch.full((50,), 8.0, dtype=out.ess.dtype))
    torch.testing.assert_close(-out.loss, exact[:50].mean(), atol=1e-9, rtol=0)
    model, x, _ = _iwae(8)
    ess = model(x[:50]).ess
    assert ((ess >= 1) & (ess <= 8)).all() and ess.mean() < 7.9
    log_w = torch.tensor([[0.0], [-1e4]])  # one weight carries everything
    assert effective_sample_size(log_w).item() == pytest.approx(1.0)


def test_iwae_trains_and_evaluates(tmp_path):
    cfg = xae.preset("vae", objective="iwae", steps=20, progress=False, figures=False,
                     log_every=5, **{"model.iwae.samples": 4, "model.mlp.hidden": [32]})
    run = xae.train(cfg, tmp_path / "run")
    model = xae.load(run)
    result = xae.evaluate_model(model, torch.rand(40, 1, 8, 8))
    assert 1 <= result["ess"] <= 4 and math.isfinite(result["loss"])
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 4 and all(1 <= rec["ess"] <= 4 for rec in logged)


def test_the_elbo_logs_no_ess(tmp_path):
    cfg = xae.preset("vae", steps=4, progress=False, figures=False, log_every=2,
                     **{"model.mlp.hidden": [8]})
    run = xae.train(cfg, tmp_path / "run")
    assert all("ess" not in json.loads(line)
               for line in (run / "metrics.jsonl").read_text().splitlines())


@pytest.mark.parametrize("overrides,match", [
    ({"bottleneck": "deterministic", "regularizer": "none"}, "needs model.bottleneck=gaussian"),
    ({"model.kl.free_bits": 0.5}, "free bits"),
    ({"model.iwae.samples": 0}, "model.iwae.samples"),
])
def test_iwae_bad_configs(overrides, match):
    with pytest.raises(xae.XaeError, match=match):
        xae.build(xae.preset("vae", objective="iwae", **overrides))
