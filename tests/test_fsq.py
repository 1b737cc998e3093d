"""Finite scalar quantization against its definition: every code round-trips through its
index, codes sit on the level grid, rounding passes gradients straight through."""
from __future__ import annotations

import json
import math

import pytest
import torch

import xae
from xae.bottlenecks import FSQ


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [3, 4], [2]])
def test_every_index_round_trips_through_its_code(levels):
    fsq = FSQ(4, len(levels), levels=levels)
    n = math.prod(levels)
    assert fsq.codebook_size == n
    idx = torch.arange(n)
    codes = fsq.indices_to_codes(idx)
    assert codes.shape == (n, len(levels))
    assert torch.equal(fsq.codes_to_indices(codes), idx)
    assert len({tuple(c) for c in codes.tolist()}) == n  # all distinct
    assert codes.min() >= -1 and codes.max() <= 1
    # each dimension takes exactly its L_i values, evenly spaced
    for i, L in enumerate(levels):
        values = codes[:, i].unique()
        assert len(values) == L
        torch.testing.assert_close(values.diff(), torch.full((L - 1,), values.diff()[0].item()))


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [3, 4], [2, 3]])
def test_quantized_codes_are_grid_codes_even_for_huge_inputs(levels):
    fsq = FSQ(4, len(levels), levels=levels)
    z = torch.randn(50_000, len(levels))
    z[:10] *= 1e6
    codes = fsq.round(z)
    idx = fsq.codes_to_indices(codes)
    assert idx.min() >= 0 and idx.max() < fsq.codebook_size
    torch.testing.assert_close(fsq.indices_to_codes(idx), codes)
    assert len(idx.unique()) == fsq.codebook_size  # wide inputs reach every code


def test_rounding_passes_the_gradient_straight_through():
    fsq = FSQ(4, 4, levels=[8, 5, 5, 5])
    z = torch.randn(64, 4, requires_grad=True)
    w = torch.randn(64, 4)
    (fsq.round(z) * w).sum().backward()
    zz = z.detach().requires_grad_(True)
    (fsq.bound(zz) / fsq.width * w).sum().backward()  # the same without the rounding
    torch.testing.assert_close(z.grad, zz.grad)
    assert (z.grad != 0).all()


def test_an_fsq_autoencoder_trains_end_to_end(tmp_path):
    cfg = xae.preset("ae", bottleneck="fsq", prior="codes", latent_dim=8, steps=60,
                     progress=False, figures=False, log_every=20)
    run = xae.train(cfg, tmp_path / "run")
    model = xae.load(run)
    x = torch.rand(10, 1, 8, 8)
    out = model.encode(x)
    assert out.indices.shape == (10, 2) and out.indices.dtype == torch.long
    torch.testing.assert_close(model.bottleneck.indices_to_codes(out.indices).flatten(1), out.z)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"loss"' in lines[0]
    first, last = json.loads(lines[0])["loss"], json.loads(lines[-1])["loss"]
    assert last < first
    model.zero_grad()
    model(x).loss.backward()
    assert model.encoder.net[1].weight.grad.abs().sum() > 0  # the encoder learns through FSQ


@pytest.mark.parametrize("overrides,match", [
    ({"latent_dim": 6}, "multiple of the code size 4"),
    ({"model.fsq.levels": [8, 1]}, "model.fsq.levels"),
    ({"model.fsq.levels": []}, "model.fsq.levels"),
])
def test_fsq_bad_configs(overrides, match):
    with pytest.raises(xae.XaeError, match=match):
        xae.build(xae.preset("ae", bottleneck="fsq", prior="codes", **overrides))
