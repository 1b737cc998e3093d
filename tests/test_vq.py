"""VQ against its definition: nearest codes by brute force, the aux loss by hand, the EMA
step in closed form, k-means and dead-code restarts on data built to test them, and a
state_dict round trip that continues identically."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from xae.bottlenecks.vq import LAPLACE_EPS, VQ, kmeans, nearest
from xae.errors import XaeError


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def _vq(k=8, d=4, **kw):
    kw.setdefault("kmeans_init", False)
    kw.setdefault("restart_every", 0)
    return VQ(None, d, codebook_size=k, code_dim=d, **kw)


def _gap(a, b):
    """Distance from each row of a to the nearest row of b, exactly (cdist's matmul path
    loses ~1e-4 on vectors that coincide)."""
    return (a[:, None] - b[None]).norm(dim=-1).min(1).values


def _clusters(k, d, per, spread=0.01, sep=10.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * sep
    x = centres.repeat_interleave(per, 0) + spread * torch.randn(k * per, d, generator=g)
    return centres, x


def test_straight_through_gradient_is_the_identity():
    vq = _vq()
    z = torch.randn(50, 4, requires_grad=True)
    w = torch.randn(50, 4)
    q = vq.quantize(z)
    (q.codes * w).sum().backward()
    torch.testing.assert_close(z.grad, w)  # d codes / dz = I
    torch.testing.assert_close(q.codes, vq.codebook[q.indices].detach())


def test_as_a_bottleneck_gradients_reach_the_projection_and_the_input():
    vq = VQ(6, 8, codebook_size=16, code_dim=4, kmeans_init=False)
    h = torch.randn(3, 6, requires_grad=True)
    out = vq(h)
    assert out.z.shape == (3, 8) and out.indices.shape == (3, 2) and out.aux_loss.shape == (3,)
    (out.z.square().sum() + out.aux_loss.sum()).backward()
    assert h.grad.abs().sum() > 0 and vq.proj.weight.grad.abs().sum() > 0
    assert vq.codebook.grad.abs().sum() > 0  # the codebook loss trains the codebook
    torch.testing.assert_close(vq.indices_to_z(out.indices), out.z.detach())


@pytest.mark.parametrize("chunk_floats", [1 << 22, 640])  # 640 // 64 = 10 rows per chunk
def test_nearest_matches_brute_force(chunk_floats):
    g = torch.Generator().manual_seed(1)
    x, c = torch.randn(1003, 5, generator=g, dtype=torch.float64), torch.randn(
        64, 5, generator=g, dtype=torch.float64)
    assert torch.equal(nearest(x, c, chunk_floats), torch.cdist(x, c).argmin(1))


@pytest.mark.parametrize("cosine", [False, True])
def test_quantize_picks_the_nearest_code_with_chunking_forced(cosine):
    vq = _vq(k=32, d=6, cosine=cosine)
    vq.chunk_floats = 32 * 7  # 7 rows per chunk, 1000 rows
    z = torch.randn(1000, 6) * 3
    q = vq.quantize(z)
    zz, table = (F.normalize(z, dim=-1), F.normalize(vq.codebook.detach(), dim=-1)) \
        if cosine else (z, vq.codebook.detach())
    dist = torch.cdist(zz, table)
    torch.testing.assert_close(dist.gather(1, q.indices[:, None]).squeeze(1), dist.min(1).values)
    assert (q.indices == dist.argmin(1)).float().mean() > 0.99
    if cosine:
        torch.testing.assert_close(q.codes.norm(dim=-1), torch.ones(1000))
        torch.testing.assert_close(vq.indices_to_codes(q.indices), q.codes.detach())


@pytest.mark.parametrize("ema", [False, True])
def test_aux_is_commitment_plus_codebook_term_summed_over_dimensions(ema):
    vq = _vq(k=4, d=3, commitment=0.3, ema=ema)
    vq.eval()
    z = torch.randn(20, 3)
    q = vq.quantize(z)
    c = vq.codebook.detach()[q.indices]
    sq = ((z - c) ** 2).sum(-1)
    torch.testing.assert_close(q.aux, 0.3 * sq if ema else 1.3 * sq)


def test_aux_gradients_split_between_encoder_and_codebook():
    vq = _vq(k=4, d=3, commitment=0.3)
    z = torch.randn(20, 3, requires_grad=True)
    q = vq.quantize(z)
    q.aux.sum().backward()
    c = vq.codebook.detach()[q.indices]
    torch.testing.assert_close(z.grad, 0.3 * 2 * (z.detach() - c))
    expect = torch.zeros(4, 3).index_add_(0, q.indices, 2 * (c - z.detach()))
    torch.testing.assert_close(vq.codebook.grad, expect)


def _ema_expect(vq0, z, idx, decay):
    k = vq0.codebook_size
    n = torch.bincount(idx, minlength=k).float()
    s = torch.zeros(k, z.shape[1]).index_add_(0, idx, z)
    size = decay * vq0.ema_size + (1 - decay) * n
    total = decay * vq0.ema_sum + (1 - decay) * s
    smooth = (size + LAPLACE_EPS) / (size.sum() + k * LAPLACE_EPS) * size.sum()
    return size, total, total / smooth[:, None], n, s


@pytest.mark.parametrize("decay", [0.9, 1e-7])
def test_ema_step_is_the_closed_form_moving_average(decay):
    vq = _vq(k=6, d=3, ema=True, ema_decay=decay)
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    z = torch.randn(300, 3)
    idx = vq.quantize(z).indices  # training mode: one EMA step
    ref = _vq(k=6, d=3, ema=True)
    ref.load_state_dict(before)
    size, total, code, n, s = _ema_expect(ref, z, idx, decay)
    torch.testing.assert_close(vq.ema_size, size)
    torch.testing.assert_close(vq.ema_sum, total)
    torch.testing.assert_close(vq.codebook, code)
    used = n > 0
    assert used.sum() >= 3
    if decay < 1e-3:  # no memory: each used code is its cluster's mean, up to the smoothing
        mean = s[used] / n[used, None]
        shrink = n[used] / ((n[used] + LAPLACE_EPS) / (300 + 6 * LAPLACE_EPS) * 300)
        torch.testing.assert_close(vq.codebook[used], mean * shrink[:, None])
        torch.testing.assert_close(vq.codebook[used], mean, atol=1e-4, rtol=1e-4)


def test_eval_mode_changes_nothing():
    vq = _vq(ema=True, kmeans_init=True, restart_every=1)
    vq.eval()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq.quantize(torch.randn(40, 4))
    for k, v in vq.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("ema,cosine", [(False, False), (True, False), (False, True)])
def test_kmeans_init_puts_every_code_on_a_cluster(ema, cosine):
    torch.manual_seed(0)
    centres, x = _clusters(8, 5, 50)
    vq = _vq(k=8, d=5, kmeans_init=True, ema=ema, cosine=cosine)
    assert not vq.initialized
    vq.quantize(x)
    assert vq.initialized
    ref = F.normalize(centres, dim=-1) if cosine else centres
    table = vq.indices_to_codes(torch.arange(8))
    assert torch.cdist(table, ref).min(1).values.max() < 0.05
    if ema:  # the EMA statistics agree with the codebook
        torch.testing.assert_close(vq.ema_sum / vq.ema_size[:, None], vq.codebook)


def test_kmeans_with_fewer_vectors_than_codes():
    torch.manual_seed(0)
    centres, x = _clusters(3, 4, 2, spread=0.0)
    c, counts = kmeans(x, 16)
    assert c.shape == (16, 4) and counts.sum() == 6
    assert torch.cdist(c, centres).min(1).values.max() < 1.0  # all near the data


def test_kmeans_init_runs_once_and_only_in_training():
    _, x = _clusters(4, 3, 20)
    vq = _vq(k=4, d=3, kmeans_init=True)
    vq.eval()
    vq.quantize(x)
    assert not vq.initialized
    vq.train()
    vq.quantize(x)
    first = vq.codebook.detach().clone()
    vq.quantize(x * 3 + 7)  # a different batch: no new k-means
    assert torch.equal(vq.codebook.detach(), first)


@pytest.mark.parametrize("ema,cosine", [(False, False), (True, False), (False, True)])
def test_a_dead_code_is_restarted_onto_a_batch_vector(ema, cosine):
    torch.manual_seed(0)
    centres, x = _clusters(4, 3, 25, sep=1.0)
    vq = _vq(k=5, d=3, restart_every=3, ema=ema, cosine=cosine)
    with torch.no_grad():
        vq.codebook[:4] = centres
        vq.codebook[4] = -1e3 * F.normalize(centres.sum(0), dim=0)  # far from all data
        if ema:
            vq.ema_sum.copy_(vq.codebook)
    for step in range(1, 3):
        vq.quantize(x)
        assert vq.unused[4] == step and vq.restarts == 0
    batch = x * 1.5
    q = vq.quantize(batch, mask=None)
    assert 4 not in q.indices.tolist()  # this call still used the old codes
    assert vq.restarts == 1 and vq.unused[4] == 0
    seeds = F.normalize(batch, dim=-1) if cosine else batch
    assert _gap(vq.codebook.detach()[4:], seeds).item() < 1e-6
    if ema:
        assert vq.ema_size[4] == 1 and torch.equal(vq.ema_sum[4], vq.codebook[4])


def test_restarts_keep_the_graph_usable():
    vq = _vq(k=5, d=3, restart_every=1, cosine=True)
    z = torch.randn(2, 3, requires_grad=True)
    q = vq.quantize(z)  # at most 2 codes used: the others are restarted in place
    assert vq.restarts >= 3
    (q.codes.sum() + q.aux.sum()).backward()
    assert z.grad is not None and vq.codebook.grad is not None


def test_no_restart_when_restart_every_is_zero():
    vq = _vq(k=5, d=3, restart_every=0)
    with torch.no_grad():
        vq.codebook[4] = 1e3
    far = vq.codebook.detach()[4].clone()
    for _ in range(10):
        vq.quantize(torch.randn(30, 3))
    assert vq.restarts == 0 and vq.unused[4] == 10
    assert torch.equal(vq.codebook.detach()[4], far)


def test_masked_vectors_feed_no_statistics():
    vq = _vq(k=2, d=2, ema=True, ema_decay=0.5, restart_every=2)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        vq.ema_sum.copy_(vq.codebook)
    z = torch.tensor([[0.1, 0.0], [-0.1, 0.0], [10.0, 9.0]])
    mask = torch.tensor([True, True, False])
    q = vq.quantize(z, mask=mask)
    assert q.indices.tolist() == [0, 0, 1] and q.aux[2] > 0  # aux still for every vector
    assert vq.unused.tolist() == [0, 1]
    torch.testing.assert_close(vq.ema_size, torch.tensor([1.5, 0.5]))
    torch.testing.assert_close(vq.ema_sum[1], torch.tensor([5.0, 5.0]))  # decay only
    vq.quantize(z, mask=mask)  # code 1 unused twice → restarted from the masked-in vectors
    assert vq.restarts == 1
    assert _gap(vq.codebook[1:], z[:2]).item() < 1e-6


def test_indices_to_codes_returns_codebook_rows():
    vq = _vq(k=8, d=4)
    idx = torch.randint(8, (3, 5))
    codes = vq.indices_to_codes(idx)
    assert codes.shape == (3, 5, 4)
    assert torch.equal(codes, vq.codebook.detach()[idx])


@pytest.mark.parametrize("ema", [False, True])
def test_state_dict_round_trip_continues_identically(ema):
    torch.manual_seed(0)
    kw = dict(k=16, d=4, ema=ema, kmeans_init=True, restart_every=2)
    a = _vq(**kw)
    for _ in range(3):
        a.quantize(torch.randn(64, 4))
    blob = st_save({k: v.detach().contiguous() for k, v in a.state_dict().items()})
    torch.manual_seed(123)
    b = _vq(**kw)
    b.load_state_dict(st_load(blob))
    assert b.initialized and b.restarts == a.restarts
    z = torch.randn(64, 4) * 5 + 3  # no k-means re-init after the reload
    outs = []
    for m in (a, b):
        torch.manual_seed(7)
        outs.append([m.quantize(z), m.quantize(z), m.state_dict()])
    for qa, qb in zip(outs[0][:2], outs[1][:2]):
        assert torch.equal(qa.indices, qb.indices) and torch.equal(qa.codes, qb.codes)
        assert torch.equal(qa.aux, qb.aux)
    for k, v in outs[0][2].items():
        assert torch.equal(v, outs[1][2][k]), k


@pytest.mark.parametrize("key,value", [
    ("codebook_size", 0), ("codebook_size", 2.5), ("ema_decay", 1.0), ("ema_decay", 0.0),
    ("commitment", -0.1), ("restart_every", -1), ("restart_every", 1.5), ("ema", "yes"),
    ("cosine", 1), ("code_dim", 0)])
def test_bad_config_names_the_key(key, value):
    with pytest.raises(XaeError, match=f"model.vq.{key}"):
        VQ(None, 16, **{key: value})


def test_latent_dim_must_be_a_multiple_of_code_dim():
    with pytest.raises(XaeError, match="model.latent_dim"):
        VQ(4, 10, code_dim=4)
