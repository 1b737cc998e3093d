"""MSE, PSNR and SSIM against closed forms and a direct reference, and reconstruction_quality."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import xae
from xae.data import load
from xae.evaluate.images import (PSNR_MAX_DB, mse, psnr, reconstruction_quality, ssim,
                                 ssim_window, window_size)

C1, C2 = 0.01**2, 0.03**2


def _images(*shape: int, seed: int = 0, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(*shape, generator=g)


def _ssim_reference(x: np.ndarray, y: np.ndarray, side: int, sigma: float = 1.5) -> float:
    """Wang et al. (2004) eq. 13 written out window by window, for one (C, H, W) pair."""
    k = np.arange(side) - (side - 1) / 2
    g = np.exp(-k**2 / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - side + 1):
            for j in range(x.shape[2] - side + 1):
                px, py = x[c, i:i + side, j:j + side], y[c, i:i + side, j:j + side]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                values.append((2 * mx * my + C1) * (2 * cxy + C2)
                              / ((mx**2 + my**2 + C1) * (vx + vy + C2)))
    return float(np.mean(values))


def test_mse_and_psnr_of_a_constant_offset_match_the_closed_form():
    x = _images(3, 1, 6, 5, lo=0.2, hi=0.8)
    offsets = torch.tensor([0.1, 0.01, 0.05]).view(3, 1, 1, 1)
    y = x + offsets
    c = offsets.flatten().double()
    torch.testing.assert_close(mse(x, y), c**2, rtol=1e-5, atol=0)
    torch.testing.assert_close(psnr(x, y), -20 * torch.log10(c), rtol=1e-5, atol=0)
    assert psnr(x, y)[0].item() == pytest.approx(20.0, rel=1e-5)


def test_psnr_of_identical_images_is_the_documented_cap():
    x = _images(4, 1, 8, 8)
    assert torch.equal(psnr(x, x), torch.full((4,), PSNR_MAX_DB, dtype=torch.float64))
    assert torch.equal(mse(x, x), torch.zeros(4, dtype=torch.float64))


def test_mse_works_on_vectors_and_is_per_sample():
    x = torch.zeros(2, 4)
    y = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]])
    assert mse(x, y).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (3, 1, 8, 8), (2, 3, 12, 16)])
def test_ssim_of_identical_images_is_one(shape):
    x = _images(*shape)
    torch.testing.assert_close(ssim(x, x), torch.ones(shape[0], dtype=torch.float64))


def test_ssim_of_constant_images_matches_the_luminance_term():
    # no variance anywhere: SSIM = (2ab + C1) / (a² + b² + C1), the structure term is C2/C2
    a, b = 0.3, 0.7
    x, y = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    expected = (2 * a * b + C1) / (a**2 + b**2 + C1)
    assert ssim(x, y).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("shape", [(2, 1, 13, 12), (2, 2, 8, 8), (1, 1, 28, 28)])
def test_ssim_matches_the_window_by_window_formula(shape):
    x = _images(*shape, seed=1)
    y = (x + 0.2 * _images(*shape, seed=2)).clamp(0, 1)
    side = window_size(shape[2], shape[3])
    got = ssim(x, y)
    for b in range(shape[0]):
        ref = _ssim_reference(x[b].double().numpy(), y[b].double().numpy(), side)
        assert got[b].item() == pytest.approx(ref, rel=1e-9)
    assert (got < 1).all() and (got > -1).all()
    torch.testing.assert_close(ssim(y, x), got)  # symmetric


def test_ssim_window_is_the_normalized_gaussian_and_shrinks_for_small_images():
    w = ssim_window(11, 1.5)
    assert w.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(w, w.T)
    for k in range(1, 6):  # a Gaussian of σ = 1.5 around the centre, in each direction
        assert (w[5, 5 + k] / w[5, 5]).item() == pytest.approx(math.exp(-k**2 / (2 * 1.5**2)))
    assert window_size(28, 28) == 11
    assert window_size(8, 8) == 7  # the bundled digits
    assert window_size(10, 30) == 9


def test_image_metrics_reject_mismatched_shapes():
    with pytest.raises(xae.XaeError, match="same shape"):
        mse(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(xae.XaeError, match=r"\(B, C, H, W\)"):
        ssim(torch.zeros(2, 1, 4, 4, 1), torch.zeros(2, 1, 4, 4, 1))


def test_reconstruction_quality_on_images_equals_the_unbatched_metrics():
    cfg = xae.preset("vae", data="digits", **{"model.mlp.hidden": [32], "model.latent_dim": 2})
    torch.manual_seed(0)
    model = xae.build(cfg).train()
    x = load(cfg.data).test_x[:50]
    got = reconstruction_quality(model, x, batch_size=16)
    assert model.training  # restored after the eval-mode pass
    model.eval()
    with torch.no_grad():
        x_hat = model.reconstruct(x).clamp(0, 1)
    assert set(got) == {"mse", "psnr", "ssim"}
    # float32 matmuls round differently at another batch size: agree to float32 precision
    assert got["mse"] == pytest.approx(mse(x_hat, x).mean().item(), rel=1e-6)
    assert got["psnr"] == pytest.approx(psnr(x_hat, x).mean().item(), rel=1e-6)
    assert got["ssim"] == pytest.approx(ssim(x_hat, x).mean().item(), rel=1e-6)
    assert got["psnr"] > 0 and -1 < got["ssim"] < 1
    assert got["psnr"] != pytest.approx(-10 * math.log10(got["mse"]), rel=1e-6)  # per image


def test_reconstruction_quality_on_vectors_reports_mse_only():
    cfg = xae.preset("linear-vae", **{"data.n": 40})
    torch.manual_seed(0)
    model = xae.build(cfg)
    x = load(cfg.data).test_x
    got = reconstruction_quality(model, x, batch_size=7)
    with torch.no_grad():
        expected = mse(model.eval().reconstruct(x), x).mean().item()
    assert got == {"mse": pytest.approx(expected, rel=1e-9)}
