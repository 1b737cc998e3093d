"""The IW likelihood's passes stay within their memory budget for models whose one draw is
large (a conv decoder, a ladder with a 124-d code), and the estimate shows a bar with an ETA."""
from __future__ import annotations

import math

import pytest
import torch

import xae
from xae.evaluate.likelihood import likelihood_report

SHAPE = (1, 28, 28)


def _model(preset: str) -> xae.Autoencoder:
    torch.manual_seed(0)
    return xae.build(xae.preset(preset, **{"data.name": "mnist"}), SHAPE).eval()


def _decoder_bytes_per_row(model: xae.Autoencoder) -> int:
    """What the decoder's layers alone make for one code (the test's own measurement)."""
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        total += output.numel() * output.element_size()

    leaves = [m for m in model.decoder.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    with torch.no_grad():
        model.decode_params(torch.zeros(1, model.latent_dim))
    for h in hooks:
        h.remove()
    return total


@pytest.mark.parametrize("preset", ["conv-vae", "ladder-vae"])
@pytest.mark.parametrize("pass_bytes", [4 * 2**20, 2**19])
def test_decoder_passes_stay_within_the_budget(preset: str, pass_bytes: int) -> None:
    model = _model(preset)
    x = torch.bernoulli(torch.full((30, *SHAPE), 0.3))
    rows: list[int] = []
    hook = model.decoder.register_forward_hook(lambda m, i, o: rows.append(o.shape[0]))
    k = 60  # 30 × 60 = 1800 draws: more than the smaller budget holds in one pass
    report = likelihood_report(model, x, k=k, batch_size=30, pass_bytes=pass_bytes)
    hook.remove()
    draws = [r for r in rows if r > 1]  # the one-row probe aside
    assert sum(draws) == 30 * k
    assert max(draws) * _decoder_bytes_per_row(model) <= pass_bytes, (max(draws), preset)
    assert torch.isfinite(report.log_likelihood).all() and report.log_likelihood.shape == (30,)


def test_the_estimate_leaves_the_random_state_alone_and_repeats() -> None:
    model = _model("ladder-vae")
    x = torch.bernoulli(torch.full((10, *SHAPE), 0.3))
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a = likelihood_report(model, x, k=20, pass_bytes=2**19).summary()
    assert torch.equal(torch.get_rng_state(), before)
    assert a == likelihood_report(model, x, k=20, pass_bytes=2**19).summary()
    assert math.isfinite(a["nll_iw"]) and a["gap"] >= 0


def test_the_bar_counts_every_draw_with_a_rate_and_an_eta(capsys) -> None:
    model = _model("vae")
    x = torch.bernoulli(torch.full((10, *SHAPE), 0.3))
    likelihood_report(model, x, k=50, progress=True)
    err = capsys.readouterr().err
    assert "log p(x), K=50" in err and "100%" in err and "500/500" in err
    assert "<" in err and "sample/s" in err  # tqdm's "elapsed<remaining, rate"


def test_a_bad_budget_is_refused() -> None:
    with pytest.raises(xae.XaeError, match="pass_bytes"):
        likelihood_report(_model("vae"), torch.zeros(2, *SHAPE), k=2, pass_bytes=0)
