"""Gumbel-softmax quantization against its definition: samples sharpen to one-hot as τ falls,
their argmax is distributed as softmax(logits) (the Gumbel-max trick), τ follows its
schedule, hard mode is exactly one-hot forward with gradients backward, evaluation draws exact one-hot
samples, and the categorical posterior's KL to the uniform prior is log K − H."""
from __future__ import annotations

import math

import pytest
import torch

from xae.bottlenecks.gumbel import GumbelSoftmax
from xae.config import ScheduleConfig
from xae.distributions import Categorical
from xae.errors import XaeError


def constant(tau: float) -> ScheduleConfig:
    return ScheduleConfig(kind="constant", value=tau)


def test_samples_approach_one_hot_as_the_temperature_falls():
    torch.manual_seed(0)
    logits = torch.randn(4000, 6)
    means = []
    for tau in [10.0, 1.0, 0.1, 0.01]:
        q = GumbelSoftmax(None, 4, codebook_size=6, code_dim=4, temperature=constant(tau))
        y = q.one_hot(logits)
        torch.testing.assert_close(y.sum(-1), torch.ones(4000))
        assert (y >= 0).all()
        means.append(y.max(-1).values.mean().item())
    assert all(a < b for a, b in zip(means, means[1:])), means
    assert means[0] < 0.3 and means[-1] > 0.99, means


def test_the_argmax_of_the_samples_is_distributed_as_softmax_of_the_logits():
    torch.manual_seed(1)
    k, n = 5, 40_000
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5])
    q = GumbelSoftmax(None, 2, codebook_size=k, code_dim=2, temperature=constant(0.7))
    out = q.quantize(logits.expand(n, k).contiguous())
    counts = torch.bincount(out.indices, minlength=k).double()
    expected = n * torch.softmax(logits.double(), -1)
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 18.47, chi2  # the 99.9% quantile of χ² with 4 degrees of freedom
    assert (counts / n - expected / n).abs().max() < 0.01
    # the argmax does not depend on τ: the same noise at another τ gives the same indices
    torch.manual_seed(1)
    again = GumbelSoftmax(None, 2, codebook_size=k, code_dim=2, temperature=constant(5.0))
    torch.manual_seed(2)
    a = q.quantize(logits.expand(100, k).contiguous()).indices
    torch.manual_seed(2)
    assert torch.equal(again.quantize(logits.expand(100, k).contiguous()).indices, a)


def test_the_temperature_follows_its_schedule_over_steps():
    sched = ScheduleConfig(kind="linear", start=2.0, value=0.5, warmup=100)
    q = GumbelSoftmax(None, 4, codebook_size=8, code_dim=4, temperature=sched)
    assert q.temperature_at(0) == 2.0
    assert q.temperature_at(50) == pytest.approx(1.25)
    assert q.temperature_at(100) == 0.5
    assert q.temperature_at(10_000) == 0.5
    assert q.temperature_at(None) == 0.5  # outside training: the final value
    # the sample at a step is softmax((ℓ + g)/τ(step)) for the step's τ
    logits = torch.randn(16, 8)
    for step, tau in [(0, 2.0), (100, 0.5)]:
        torch.manual_seed(7)
        y = q.one_hot(logits, step)
        torch.manual_seed(7)
        g = -torch.empty_like(logits).exponential_().log()
        torch.testing.assert_close(y, torch.softmax((logits + g) / tau, -1))
    # the default schedule is the config's: cosine from 1 to 1/16 over 2000 steps
    d = GumbelSoftmax(None, 4, codebook_size=8, code_dim=4)
    assert d.temperature_at(0) == 1.0 and d.temperature_at(2000) == pytest.approx(1 / 16)


def test_hard_samples_are_exactly_one_hot_with_gradients_to_the_logits():
    torch.manual_seed(2)
    q = GumbelSoftmax(None, 3, codebook_size=7, code_dim=3, temperature=constant(1.0),
                      hard=True)
    logits = torch.randn(64, 7, requires_grad=True)
    y = q.one_hot(logits)
    assert set(y.detach().unique().tolist()) == {0.0, 1.0}
    assert torch.equal(y.detach().sum(-1), torch.ones(64))
    torch.manual_seed(3)
    out = q.quantize(logits)
    assert torch.equal(out.codes.detach(), q.codebook.detach()[out.indices])  # exact rows
    w = torch.randn(64, 3)
    (out.codes * w).sum().backward()
    assert logits.grad is not None and (logits.grad.abs().sum(-1) > 0).all()
    assert q.codebook.grad.abs().sum() > 0


def test_soft_codes_are_the_mixture_of_codebook_rows():
    torch.manual_seed(4)
    q = GumbelSoftmax(None, 4, codebook_size=5, code_dim=4, temperature=constant(2.0))
    logits = torch.randn(10, 5)
    torch.manual_seed(5)
    out = q.quantize(logits)
    torch.manual_seed(5)
    y = q.one_hot(logits)
    torch.testing.assert_close(out.codes, y @ q.codebook)
    assert torch.equal(out.indices, y.argmax(-1))
    assert torch.equal(out.aux, torch.zeros(10)) and out.logits is logits


def test_evaluation_draws_exact_one_hot_samples_of_the_posterior():
    torch.manual_seed(6)
    q = GumbelSoftmax(None, 4, codebook_size=9, code_dim=4, temperature=constant(1.0)).eval()
    logits = torch.randn(1, 9).expand(40_000, 9)
    a = q.quantize(logits)
    assert torch.equal(a.codes, q.codebook.detach()[a.indices])  # hard codes, no relaxation
    freq = torch.bincount(a.indices, minlength=9).double() / 40_000
    torch.testing.assert_close(freq, torch.softmax(logits[0].double(), -1), atol=0.01, rtol=0)
    torch.manual_seed(1)
    b = q.quantize(logits[:50])
    torch.manual_seed(1)
    assert torch.equal(q.quantize(logits[:50]).indices, b.indices)  # seeded: reproducible
    torch.testing.assert_close(q.indices_to_codes(b.indices), b.codes)


def test_as_a_bottleneck_it_returns_a_categorical_posterior():
    torch.manual_seed(8)
    q = GumbelSoftmax(in_features=10, latent_dim=6, codebook_size=4, code_dim=3)  # P = 2
    assert q.has_posterior and q.discrete and q.bits_per_position == 2
    out = q(torch.randn(5, 10), step=0)
    assert out.z.shape == (5, 6) and out.indices.shape == (5, 2)
    assert torch.equal(out.aux_loss, torch.zeros(5))
    assert isinstance(out.posterior, Categorical) and out.posterior.logits.shape == (5, 2, 4)
    q.eval()
    out = q(torch.randn(5, 10))
    torch.testing.assert_close(q.indices_to_z(out.indices), out.z)
    assert q.codebook.shape == (4, 3)


def test_the_kl_to_the_uniform_prior_is_log_k_minus_the_entropy():
    torch.manual_seed(9)
    logits = torch.randn(3, 2, 6, dtype=torch.float64)
    p = logits.exp() / logits.exp().sum(-1, keepdim=True)
    h = -(p * p.log()).sum(-1)
    post = Categorical(logits)
    torch.testing.assert_close(post.entropy(), h)
    torch.testing.assert_close(post.kl_uniform(), math.log(6) - h)
    assert (post.kl_uniform() > 0).all()
    uniform = Categorical(torch.full((3, 2, 6), 0.3))
    torch.testing.assert_close(uniform.kl_uniform(), torch.zeros(3, 2))


@pytest.mark.parametrize("temperature", [
    ScheduleConfig(kind="constant", value=0.0),
    ScheduleConfig(kind="linear", start=-1.0, value=0.5),
    ScheduleConfig(kind="cosine", start=1.0, value=0.0),
    ScheduleConfig(kind="staged", start=0.0, stages=[[10, 1.0]]),
    ScheduleConfig(kind="staged", stages=[[0, 1.0], [5, -0.1]]),
    ScheduleConfig(kind="nope", value=1.0),
    ScheduleConfig(kind="constant", value=float("nan")),
    0.0, -2.0, "hot", {"kind": "constant", "value": 1.0, "bogus": 1},
])
def test_a_bad_temperature_is_an_error(temperature):
    with pytest.raises(XaeError, match="model.gumbel.temperature"):
        GumbelSoftmax(None, 4, codebook_size=8, code_dim=4, temperature=temperature)


def test_good_temperatures_and_other_bad_settings():
    # a constant schedule ignores its start; a staged one from step 0 ignores it too
    GumbelSoftmax(None, 4, codebook_size=8, code_dim=4, temperature=ScheduleConfig(value=0.5))
    GumbelSoftmax(None, 4, codebook_size=8, code_dim=4,
                  temperature=ScheduleConfig(kind="staged", stages=[[0, 1.0], [9, 0.1]]))
    q = GumbelSoftmax(None, 4, codebook_size=8, code_dim=4, temperature={"value": 0.25})
    assert q.temperature_at(None) == 0.25
    with pytest.raises(TypeError, match="levels"):  # another quantizer's setting is an error
        GumbelSoftmax(None, 4, codebook_size=8, code_dim=4, levels=[3])
    with pytest.raises(XaeError, match="model.gumbel.codebook_size"):
        GumbelSoftmax(None, 4, codebook_size=1, code_dim=4)
    with pytest.raises(XaeError, match="model.gumbel.code_dim"):
        GumbelSoftmax(None, 4, codebook_size=8, code_dim=0)
    with pytest.raises(XaeError, match="model.gumbel.hard"):
        GumbelSoftmax(None, 4, codebook_size=8, code_dim=4, hard="yes")
    with pytest.raises(XaeError, match="logits"):
        GumbelSoftmax(None, 4, codebook_size=8, code_dim=4).quantize(torch.randn(3, 4))
