"""The PatchGAN critic (model.critic=patchgan): the discriminator's layout, the adaptive
generator weight and the hinge loss against closed forms, the start step, no gradient
across the two optimizers, a real training run with its resume, and clear errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import xae
from xae.cli import main
from xae.critics.patchgan import PatchGAN, adaptive_weight, discriminator_loss, min_side

SMALL = {"model.critic": "patchgan", "model.patchgan.layers": 1, "model.patchgan.width": 8,
         "model.patchgan.start": 0, "model.mlp.hidden": [32]}  # 8×8 digits: one layer fits


def test_the_discriminator_has_the_layout_of_the_released_code() -> None:
    d = PatchGAN((1, 28, 28)).disc  # 3 layers of width 64, batch norm
    convs = [m for m in d.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == \
        [(1, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 1), (512, 1, 1)]
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    n = 16 * (64 + 64 * 128 + 128 * 256 + 256 * 512 + 512) + 64 + 1 + 2 * (128 + 256 + 512)
    assert sum(p.numel() for p in d.parameters()) == n
    assert d(torch.rand(2, 1, 28, 28)).shape == (2, 1, 1, 1)  # 28 → 14 → 7 → 3 → 2 → 1
    assert abs(convs[1].weight.std().item() - 0.02) < 0.002
    assert min_side(3) == 24 and min_side(1) == 6  # 24 → 12 → 6 → 3 → 1


def test_the_adaptive_weight_is_the_ratio_of_gradient_norms() -> None:
    torch.manual_seed(0)
    w = torch.randn(2, 3, requires_grad=True)
    a, b, c = torch.randn(3), torch.randn(3), 0.7
    nll, g = (w @ a).pow(2).sum(), c * (w @ b).sum()
    want = 2 * (w @ a).norm() * a.norm() / (c * math.sqrt(2) * b.norm() + 1e-4)
    torch.testing.assert_close(adaptive_weight(nll, g, w), want.detach())
    assert adaptive_weight(nll, 0 * g, w).item() == 1e4  # clamped


def test_the_discriminator_losses_are_their_closed_forms() -> None:
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    hinge = 0.5 * ((0 + 0.5 + 2.0) / 3 + (0 + 1.0 + 2.5) / 3)
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(hinge)
    vanilla = 0.5 * (sum(math.log1p(math.exp(-r)) for r in real.tolist()) / 3
                     + sum(math.log1p(math.exp(f)) for f in fake.tolist()) / 3)
    assert discriminator_loss(real, fake, "vanilla").item() == pytest.approx(vanilla)


def _model(**extra) -> xae.Autoencoder:
    torch.manual_seed(0)
    return xae.build(xae.preset("vae", **{**SMALL, **extra}))


def test_the_generator_term_weighs_in_from_the_start_step_and_in_training_only() -> None:
    m = _model(**{"model.patchgan.start": 5})
    x = xae.data.load(m.config.data).train_x[:16]
    before, after = m(x, step=4), m(x, step=5)
    assert before.terms["generator"].weight.item() == 0 and not before.losses
    assert after.terms["generator"].weight.item() > 0 and set(after.losses) == {"discriminator"}
    # the model's loss reaches the decoder through the term, not the discriminator's weights
    after.loss.backward()
    assert all(p.grad is None for p in m.critic.disc.parameters())
    m.zero_grad()
    after.losses["discriminator"].backward()
    assert all(p.grad is None for p in m.decoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.critic.disc.parameters())
    m.eval()
    with torch.no_grad():
        judged = m(x, step=10)
    assert judged.terms["generator"].weight.item() == 0 and not judged.losses


def test_a_patchgan_run_logs_both_optimizers_and_resumes_exactly(tmp_path: Path) -> None:
    sets = ["model.critic=patchgan", "model.patchgan.layers=1", "model.patchgan.width=8",
            "model.patchgan.start=10", "model.mlp.hidden=[32]", "train.log_every=10",
            "train.checkpoint_every=20", "train.figures=false", "train.eval_every=0"]

    def run(out: Path, steps: int, *more: str) -> list[dict]:
        assert main(["train", "--steps", str(steps), "--out", str(out), "--no-progress",
                     *more, "--set", *sets]) == 0
        return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]

    log = run(tmp_path / "one", 60)
    assert "discriminator_loss" not in log[0] and log[0]["generator_weight"] == 0
    assert all("discriminator_loss" in r and r["generator_weight"] > 0 for r in log[1:])
    assert log[-1]["distortion"] < log[0]["distortion"]
    run(tmp_path / "two", 40)
    assert main(["train", "--resume", str(tmp_path / "two"), "--no-progress", "--set",
                 "train.steps=60"]) == 0
    resumed = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text()
               .splitlines()]
    drop = ("samples_per_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in drop} for r in log]
    a = load_file(tmp_path / "one" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys() and any("critic.disc" in k for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_settings_that_cannot_apply_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(xae.XaeError, match=r"model.patchgan.layers=3 needs images of at "
                                           r"least 24×24; these are 8×8 \(model.patchgan"
                                           r".layers=1 fits\)"):
        _model(**{"model.patchgan.layers": 3})
    with pytest.raises(xae.XaeError, match="model.objective=elbo"):
        _model(**{"model.objective": "iwae"})
    with pytest.raises(xae.XaeError, match="does not name one"):
        m = _model()
        xae.Autoencoder(encoder=m.encoder, bottleneck=m.bottleneck,
                        decoder=torch.nn.Sequential(torch.nn.Linear(16, 64),
                                                    torch.nn.Unflatten(1, (1, 8, 8))),
                        likelihood=m.likelihood, prior=m.prior, regularizer=m.regularizer,
                        objective=m.objective, critic=m.critic, data_shape=(1, 8, 8),
                        latent_dim=16)
    assert main(["train", "--steps", "1", "--out", str(tmp_path / "run"), "--set",
                 "model.critic=patchgan"]) == 2  # 3 layers on the 8×8 digits
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["kl-ae", "vq-gan"])
def test_the_latent_diffusion_presets_put_the_pieces_together(name: str) -> None:
    from xae.optim import OptimizerSpec, build_optimizers
    cfg = xae.preset(name)
    torch.manual_seed(0)
    m = xae.build(cfg, (1, 28, 28))  # Fashion-MNIST's shape: the files are not needed here
    assert m.latent_shape == (4, 7, 7) and m.likelihood.description.startswith("ST-LPIPS")
    x = torch.rand(2, 1, 28, 28)
    out = m(x, step=cfg.model.patchgan.start)
    rate = {"kl-ae": {"rate"}, "vq-gan": {"quantizer_loss"}}[name]
    assert set(out.terms) == {"distortion", "generator"} | rate
    assert out.terms["generator"].weight.item() > 0 and set(out.losses) == {"discriminator"}
    opts = build_optimizers(m, OptimizerSpec(cfg.train.lr, (cfg.train.beta1,
                                                            cfg.train.beta2)))
    assert {k: o.defaults["betas"] for k, o in opts.items()} == \
        {"model": (0.5, 0.9), "discriminator": (0.5, 0.9)}
    if name == "kl-ae":
        assert cfg.beta.value == 1e-6 and cfg.beta.kind == "constant"
