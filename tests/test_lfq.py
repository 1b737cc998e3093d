"""Lookup-free quantization against its definition: the entropy terms against the explicit
softmax over the distances to all 2^d codes, indices as binary numbers, the straight-through
gradient, the aux loss as the documented combination, and bad codebook sizes."""
from __future__ import annotations

import math

import pytest
import torch

from xae.bottlenecks.lfq import LFQ
from xae.errors import XaeError


def all_codes(d: int) -> torch.Tensor:
    """The 2^d codes in index order, built by hand: code k has +1 where bit i of k is set."""
    return torch.tensor([[1.0 if (k >> i) & 1 else -1.0 for i in range(d)]
                         for k in range(2 ** d)], dtype=torch.float64)


def brute_force(z: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample entropies, the batch marginal and its entropy from the explicit softmax
    q(k|z) = softmax_k(−‖z − c_k‖²/τ) over all 2^d codes."""
    codes = all_codes(z.shape[1])
    dist = ((z[:, None, :] - codes[None]) ** 2).sum(-1)  # (N, 2^d)
    q = torch.softmax(-dist / tau, -1)
    per_sample = -torch.special.xlogy(q, q).sum(-1)
    marginal = q.mean(0)
    return per_sample, marginal, -torch.special.xlogy(marginal, marginal).sum()


@pytest.mark.parametrize("d,n,tau", [(3, 4, 1.0), (3, 4, 0.3), (4, 6, 2.0), (5, 7, 1.0),
                                     (1, 3, 1.0)])
def test_entropy_terms_match_the_explicit_softmax_over_all_codes(d, n, tau):
    torch.manual_seed(d * 100 + n)
    lfq = LFQ(None, d, codebook_size=2 ** d, entropy_temperature=tau)
    z = 0.5 * torch.randn(n, d, dtype=torch.float64)
    per_sample, marginal, codebook = brute_force(z, tau)
    got_per_sample, got_codebook = lfq.entropy_terms(z)
    assert got_per_sample.shape == (n,) and got_codebook.shape == ()
    torch.testing.assert_close(got_per_sample, per_sample)
    torch.testing.assert_close(got_codebook, codebook)
    torch.testing.assert_close(lfq.code_probs(z), marginal)  # in index order
    # the exact codebook entropy lies below the per-bit factorised upper bound
    p_bit = torch.sigmoid(4 * z / tau).mean(0)
    bound = -(p_bit * p_bit.log() + (1 - p_bit) * (1 - p_bit).log()).sum()
    assert codebook <= bound + 1e-12


def test_exact_marginal_for_a_larger_codebook_without_an_n_by_k_matrix_matches_brute_force():
    torch.manual_seed(1)
    d, tau = 11, 1.0
    lfq = LFQ(None, d, codebook_size=2 ** d, entropy_temperature=tau)
    z = 0.3 * torch.randn(5, d, dtype=torch.float64)
    per_sample, marginal, codebook = brute_force(z, tau)
    torch.testing.assert_close(lfq.code_probs(z), marginal)
    torch.testing.assert_close(lfq.entropy_terms(z)[1], codebook)


def test_entropy_extremes_confident_codes_covering_the_codebook():
    d = 4
    lfq = LFQ(None, d, codebook_size=2 ** d)  # τ = 0.01: assignments are hard at |z| = 1
    z = all_codes(d)  # each code once
    per_sample, codebook = lfq.entropy_terms(z)
    assert per_sample.abs().max() < 1e-12  # each vector sits on its code
    torch.testing.assert_close(codebook, torch.tensor(d * math.log(2), dtype=torch.float64))
    _, collapsed = lfq.entropy_terms(z[:1].repeat(8, 1))  # one code used
    assert collapsed.abs() < 1e-12
    # on the boundary z = 0 every code is equally likely: per-sample entropy d log 2
    torch.testing.assert_close(lfq.per_sample_entropy(torch.zeros(1, d)),
                               torch.tensor([d * math.log(2)]))


@pytest.mark.parametrize("d", [1, 3, 10])
def test_every_index_round_trips_through_its_code(d):
    lfq = LFQ(None, d, codebook_size=2 ** d)
    assert lfq.codebook_size == 2 ** d and lfq.code_dim == d and lfq.bits_per_position == d
    idx = torch.arange(2 ** d)
    codes = lfq.indices_to_codes(idx)
    assert codes.shape == (2 ** d, d)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}
    assert len({tuple(c) for c in codes.tolist()}) == 2 ** d
    out = lfq.quantize(codes)
    assert torch.equal(out.indices, idx)
    assert torch.equal(out.codes, codes)
    assert torch.equal(lfq.codes_to_indices(codes), idx)
    if d == 3:
        assert torch.equal(codes.double(), all_codes(3))  # bit i is dimension i


def test_codes_are_signs_with_the_tie_at_zero_going_to_plus_one():
    lfq = LFQ(None, 3, codebook_size=8)
    out = lfq.quantize(torch.tensor([[0.3, -2.0, 0.0], [-0.0, -1e-9, 5.0]]))
    assert torch.equal(out.codes, torch.tensor([[1.0, -1.0, 1.0], [1.0, -1.0, 1.0]]))
    assert out.indices.tolist() == [1 + 4, 1 + 4]
    # index = Σ bit_i 2^i
    assert lfq.indices_to_codes(torch.tensor(6)).tolist() == [-1.0, 1.0, 1.0]


def test_the_gradient_passes_straight_through_the_sign():
    lfq = LFQ(None, 4, codebook_size=16)
    z = torch.randn(32, 4, requires_grad=True)
    w = torch.randn(32, 4)
    (grad,) = torch.autograd.grad((lfq.quantize(z).codes * w).sum(), z)
    torch.testing.assert_close(grad, w)
    # and the aux loss reaches the input too
    (grad_aux,) = torch.autograd.grad(lfq.quantize(z).aux.sum(), z)
    assert torch.isfinite(grad_aux).all() and grad_aux.abs().sum() > 0


@pytest.mark.parametrize("tau", [0.5, 0.01])
def test_aux_is_the_documented_combination(tau):
    torch.manual_seed(3)
    d, n, beta, w, gamma = 3, 4, 0.7, 0.3, 1.5
    lfq = LFQ(None, d, codebook_size=8, entropy_weight=w, diversity_weight=gamma,
              commitment=beta, entropy_temperature=tau)
    z = torch.randn(n, d, dtype=torch.float64)
    per_sample, _, codebook = brute_force(z, tau)
    commit = ((z - torch.where(z >= 0, 1.0, -1.0).double()) ** 2).sum(-1)
    expected = beta * commit + w * (per_sample - gamma * codebook)
    out = lfq.quantize(z)
    assert out.aux.shape == (n,)
    torch.testing.assert_close(out.aux, expected)
    # aux.mean() is the per-token MAGVIT-v2 loss plus the mean commitment
    torch.testing.assert_close(out.aux.mean(), beta * commit.mean()
                               + w * (per_sample.mean() - gamma * codebook))
    # no entropy weight: the commitment alone
    plain = LFQ(None, d, codebook_size=8, entropy_weight=0.0, commitment=beta)
    torch.testing.assert_close(plain.quantize(z).aux, beta * commit)


def test_as_a_bottleneck_positions_sum_into_the_per_sample_aux():
    torch.manual_seed(0)
    lfq = LFQ(in_features=5, latent_dim=6, codebook_size=8)  # P = 2 positions of 3 bits
    h = torch.randn(4, 5)
    out = lfq(h)
    assert out.z.shape == (4, 6) and out.indices.shape == (4, 2) and out.aux_loss.shape == (4,)
    assert out.posterior is None
    assert set(out.z.unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(lfq.indices_to_z(out.indices), out.z)
    q = lfq.quantize(lfq.proj(h).view(8, 3))
    torch.testing.assert_close(out.aux_loss, q.aux.view(4, 2).sum(1))
    out.aux_loss.mean().backward()
    assert lfq.proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [1000, 3, 1, 0, -8, 2 ** 25, 8.0, True, "1024"])
def test_a_bad_codebook_size_is_an_error_naming_the_key(size):
    with pytest.raises(XaeError, match="model.lfq.codebook_size"):
        LFQ(None, 30, codebook_size=size)


def test_other_bad_settings_are_errors():
    with pytest.raises(XaeError, match="model.latent_dim"):
        LFQ(None, 7, codebook_size=8)  # 7 is not a multiple of 3 bits
    with pytest.raises(XaeError, match="entropy_weight"):
        LFQ(None, 3, codebook_size=8, entropy_weight=-1.0)
    with pytest.raises(XaeError, match="commitment"):
        LFQ(None, 3, codebook_size=8, commitment=float("nan"))
    with pytest.raises(XaeError, match="entropy_temperature"):
        LFQ(None, 3, codebook_size=8, entropy_temperature=0.0)
    with pytest.raises(XaeError, match="without an input map"):
        LFQ(None, 3, codebook_size=8)(torch.randn(2, 3))
    with pytest.raises(TypeError, match="levels"):  # another quantizer's setting
        LFQ(None, 3, codebook_size=8, levels=[8, 5])
