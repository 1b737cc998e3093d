"""Residual VQ against its definition: each stage quantizes what the previous ones left, the
code is the sum of the stage codes, fewer stages give the partial sums, and quantizer
dropout keeps a random number of stages per vector in training only."""
from __future__ import annotations

import pytest
import torch

from xae.bottlenecks import BOTTLENECKS
from xae.bottlenecks.residual import ResidualVQ
from xae.bottlenecks.vq import VQ
from xae.errors import XaeError


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


OWN = ("stages", "stage_quantizer", "stage_dropout")  # residual VQ's settings; the rest: VQ's


def _rvq(in_features=None, latent_dim=4, **kw):
    kw = {"stages": 4, "stage_quantizer": VQ, "codebook_size": 16, "code_dim": 4,
          "kmeans_init": False, "restart_every": 0, **kw}
    own = {k: kw.pop(k) for k in OWN if k in kw}
    return ResidualVQ(in_features, latent_dim, kw, **own)


def _fitted(n=2000, **kw):
    """Stages fitted by k-means on their residuals in one training call, then in eval."""
    rvq = _rvq(kmeans_init=True, stage_dropout=False, **kw)
    z = torch.randn(n, 4)
    rvq.quantize(z)
    return rvq.eval(), z


def test_stages_are_built_without_input_maps_on_d_vectors():
    rvq = _rvq(in_features=10, latent_dim=12, stages=3)
    assert rvq.stages == 3 and len(rvq.quantizers) == 3
    assert rvq.codebook_size == 16 and rvq.code_dim == 4 and rvq.positions == 3
    for q in rvq.quantizers:
        assert isinstance(q, VQ) and q.proj is None and q.latent_dim == 4
    assert rvq.bits_per_position == 3 * 4
    assert len({id(q.codebook) for q in rvq.quantizers}) == 3  # separate codebooks


def test_each_stage_quantizes_the_residual_of_the_previous_ones():
    rvq, z = _fitted()
    q = rvq.quantize(z)
    assert q.indices.shape == (2000, 4)
    residual, total = z, torch.zeros_like(z)
    errors = [z.norm(dim=-1).mean()]
    for s, stage in enumerate(rvq.quantizers):
        out = stage.quantize(residual)
        assert torch.equal(out.indices, q.indices[:, s])
        total = total + out.codes
        residual = z - total
        errors.append(residual.norm(dim=-1).mean())
    torch.testing.assert_close(q.codes, total)
    # every stage lowers the mean reconstruction error, by a real margin
    assert all(b < 0.95 * a for a, b in zip(errors, errors[1:])), errors


def test_fewer_stages_give_the_partial_sums_and_indices_decode_them():
    rvq, z = _fitted(n=500)
    full = rvq.quantize(z)
    partial = torch.zeros_like(z)
    aux = torch.zeros(500)
    for n in range(1, 5):
        q = rvq.quantize(z, stages=n)
        assert q.indices.shape == (500, n)
        assert torch.equal(q.indices, full.indices[:, :n])
        stage = rvq.quantizers[n - 1].quantize(z - partial)
        partial = partial + stage.codes
        aux = aux + stage.aux
        torch.testing.assert_close(q.codes, partial)
        torch.testing.assert_close(q.aux, aux)
        torch.testing.assert_close(rvq.indices_to_codes(q.indices), partial)
    torch.testing.assert_close(rvq.indices_to_codes(full.indices.view(50, 10, 4)),
                               full.codes.view(50, 10, 4))
    with pytest.raises(XaeError, match="stages"):
        rvq.quantize(z, stages=5)
    with pytest.raises(XaeError, match="stage axis"):
        rvq.indices_to_codes(torch.zeros(3, 5, dtype=torch.long))


def test_codes_pass_the_gradient_straight_through():
    rvq = _rvq()
    z = torch.randn(64, 4, requires_grad=True)
    w = torch.randn(64, 4)
    (rvq.quantize(z).codes * w).sum().backward()
    torch.testing.assert_close(z.grad, w)


def test_every_stage_has_its_commitment_and_codebook_terms():
    rvq = _rvq(stages=3, commitment=0.25, stage_dropout=False)
    rvq.eval()
    z = torch.randn(30, 4)
    q = rvq.quantize(z)
    expect, residual = torch.zeros(30), z
    for s, stage in enumerate(rvq.quantizers):
        c = stage.codebook.detach()[q.indices[:, s]]
        expect = expect + 1.25 * (residual - c).pow(2).sum(-1)
        residual = residual - c
    torch.testing.assert_close(q.aux, expect)


def test_as_a_bottleneck_indices_are_batch_by_position_by_stage():
    rvq = _rvq(in_features=10, latent_dim=12, stages=3)
    h = torch.randn(5, 10, requires_grad=True)
    out = rvq(h)
    assert out.z.shape == (5, 12) and out.indices.shape == (5, 3, 3)
    assert out.aux_loss.shape == (5,)
    (out.z.square().sum() + out.aux_loss.sum()).backward()
    assert h.grad.abs().sum() > 0 and rvq.proj.weight.grad.abs().sum() > 0
    assert all(q.codebook.grad is not None for q in rvq.quantizers)
    rvq.eval()
    out = rvq(h)
    torch.testing.assert_close(rvq.indices_to_z(out.indices), out.z.detach())


def test_quantizer_dropout_keeps_a_random_number_of_stages_in_training_only():
    rvq = _rvq()  # no k-means, no restarts, no EMA: training only counts code usage
    z = torch.randn(400, 4)
    q = rvq.quantize(z)  # training mode
    rvq.eval()
    sums = [rvq.quantize(z, stages=n) for n in range(1, 5)]
    gaps = torch.stack([(q.codes - p.codes).abs().amax(-1) for p in sums], 1)  # (N, 4)
    kept = gaps.argmin(1) + 1
    assert (gaps.min(1).values < 1e-6).all()  # every vector got one of its partial sums
    assert set(kept.tolist()) == {1, 2, 3, 4}
    for n in range(1, 5):  # ~ U{1..4}
        assert 60 < (kept == n).sum() < 140
    aux = torch.stack([p.aux for p in sums], 1).gather(1, (kept - 1)[:, None]).squeeze(1)
    torch.testing.assert_close(q.aux, aux)
    assert torch.equal(q.indices, sums[-1].indices)
    torch.testing.assert_close(rvq.quantize(z).codes, sums[-1].codes)  # eval: all stages


def test_dropped_vectors_feed_no_codebook_statistics():
    rvq = _rvq(stages=2, codebook_size=4)
    z = torch.randn(6, 4)
    torch.manual_seed(3)
    kept = torch.randint(1, 3, (6,))
    torch.manual_seed(3)
    q = rvq.quantize(z)
    used = torch.zeros(4, dtype=torch.bool)
    used[q.indices[kept > 1, 1]] = True
    assert torch.equal(rvq.quantizers[1].unused == 0, used)
    assert not torch.equal(used, torch.bincount(q.indices[:, 1], minlength=4) > 0)
    assert torch.equal(rvq.quantizers[0].unused == 0,
                       torch.bincount(q.indices[:, 0], minlength=4) > 0)


def test_no_dropout_when_turned_off():
    rvq = _rvq(stage_dropout=False)
    z = torch.randn(100, 4)
    q = rvq.quantize(z)
    rvq.eval()
    torch.testing.assert_close(q.codes, rvq.quantize(z).codes)


@pytest.mark.parametrize("name,keys,cls", [("fsq", {"levels": [5, 5, 5, 5]}, "FSQ"),
                                           ("lfq", {"codebook_size": 16}, "LFQ")])
def test_other_quantizers_as_stages(name, keys, cls):
    if name not in BOTTLENECKS:
        pytest.skip(f"{name} is not in the bottleneck table")
    rvq = ResidualVQ(None, 8, keys, stages=2, stage_quantizer=name)
    assert all(type(q).__name__ == cls for q in rvq.quantizers) and rvq.code_dim == 4
    assert rvq.codebook_size == BOTTLENECKS[name](None, 4, **keys).codebook_size
    rvq.eval()
    z = torch.randn(20, 4) * 0.5
    q = rvq.quantize(z)
    assert q.indices.shape == (20, 2)
    torch.testing.assert_close(rvq.indices_to_codes(q.indices), q.codes)
    first = rvq.quantizers[0].quantize(z).codes
    torch.testing.assert_close(q.codes - first, rvq.quantizers[1].quantize(z - first).codes)


def test_stage_quantizer_looked_up_by_name(monkeypatch):
    monkeypatch.setitem(BOTTLENECKS, "vq", VQ)
    rvq = ResidualVQ(None, 8, {"codebook_size": 8, "code_dim": 4}, stages=2, stage_quantizer="vq")
    assert all(isinstance(q, VQ) and q.codebook_size == 8 for q in rvq.quantizers)


@pytest.mark.parametrize("name", ["nope", "gaussian", "rvq", "gumbel", 3])
def test_bad_stage_quantizer_lists_the_choices(monkeypatch, name):
    monkeypatch.setitem(BOTTLENECKS, "vq", VQ)
    monkeypatch.setitem(BOTTLENECKS, "rvq", ResidualVQ)
    with pytest.raises(XaeError, match="model.rvq.stage_quantizer") as err:
        ResidualVQ(None, 4, {"code_dim": 4}, stage_quantizer=name)
    choices = str(err.value).split("use one of ")[1].split(", ")
    assert {"fsq", "vq"} <= set(choices)
    assert not {"rvq", "gaussian", "gumbel", "deterministic"} & set(choices)


@pytest.mark.parametrize("kw,key", [({"stages": 0}, "model.rvq.stages"),
                                    ({"stage_dropout": "no"}, "model.rvq.stage_dropout"),
                                    ({"codebook_size": -2}, "model.vq.codebook_size")])
def test_bad_config_names_the_key(kw, key):
    with pytest.raises(XaeError, match=key):
        _rvq(**kw)


def test_a_stage_setting_of_another_quantizer_is_an_error():
    with pytest.raises(TypeError, match="levels"):
        _rvq(levels=[8, 5])


def test_latent_dim_must_fit_the_stage_code_size():
    with pytest.raises(XaeError, match="model.latent_dim"):
        _rvq(latent_dim=6)
