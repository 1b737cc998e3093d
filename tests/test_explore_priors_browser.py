"""The page's prior samplers in a real browser (Debian's Chromium, driven by Playwright): a
fresh prior draws new latents per click, the page's flow graph is the flow in torch, the
page's mixture draws have the mixture's moments, and a bank says it is a fixed bank."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import test_explore_priors
from conftest import open_page, serving

prior_runs = test_explore_priors.prior_runs  # the fixture: its runs are trained once a session

RUNS = ("mog", "flow", "vq")  # panels 0, 1, 2
Z_BOUND = 5.0  # |estimate − truth| ≤ 5 standard errors: P(a false failure) ≈ 6e-7 per entry


@pytest.fixture(scope="session")
def prior_views(prior_runs):
    from xae.explore.runs import load_run

    return [load_run(prior_runs[k]) for k in RUNS]


@pytest.fixture(scope="session")
def prior_server(prior_views):
    """``xae explore`` on the MoG, flow and VQ runs."""
    with serving(prior_views) as server:
        yield server


@pytest.fixture
def page(browser, prior_server):
    p = open_page(browser, prior_server.url)
    yield p
    p.close()


def _click_sample(page, run, times):
    page.select_option("#run-select", str(run))
    page.click(f".panel[data-run='{run}'] .sample")
    page.wait_for_function(f"xae.panels[{run}].frames.samples === {times}")
    z = np.array(page.evaluate(f"Array.from(xae.panels[{run}].lastSamples)"))
    heading = page.inner_text(f".panel[data-run='{run}'] .samples h3")
    return z.reshape(16, -1), heading


def _draws(page, expr, n, dim):
    """n latents drawn in the page by ``expr`` (a Promise of a PriorSampler), (n, dim)."""
    flat = page.evaluate(f"({expr}).then((s) => s.sample({n})).then(Array.from)")
    return np.array(flat).reshape(n, dim)


def _assert_moments(z, mean, cov):
    """The sample mean and covariance of ``z`` (n, D) within Z_BOUND standard errors of
    ``mean`` and ``cov`` (the standard errors estimated from the draws, by the CLT)."""
    n = len(z)
    c = z - mean
    se_mean = c.std(0) / np.sqrt(n)
    assert (np.abs(c.mean(0)) <= Z_BOUND * se_mean).all(), (c.mean(0), se_mean)
    products = c[:, :, None] * c[:, None, :]  # (n, D, D): the terms of the covariance
    se_cov = products.std(0) / np.sqrt(n)
    assert (np.abs(products.mean(0) - cov) <= Z_BOUND * se_cov).all(), (products.mean(0), cov)


def _mixture_moments(spec):
    w, m, s = (np.asarray(spec[k], dtype=np.float64) for k in ("weights", "means", "scales"))
    mean = w @ m
    second = np.einsum("c,ci,cj->ij", w, m, m) + np.diag(w @ s**2)
    return mean, second - np.outer(mean, mean)


@pytest.mark.parametrize("run", [0, 1])
def test_each_click_of_a_fresh_prior_draws_new_latents(page, prior_views, run):
    first, heading = _click_sample(page, run, 1)
    second, _ = _click_sample(page, run, 2)
    assert page.evaluate(f"xae.panels[{run}].prior.fresh")
    assert np.isfinite(first).all() and first.shape == (16, 2)
    assert not np.isin(first, second).any()  # no value repeats: all drawn anew
    assert heading == f"fresh samples from {prior_views[run].prior_about}"


def test_the_pages_flow_graph_is_the_flow_in_torch(page, prior_views):
    eps = np.random.default_rng(2).normal(size=(50, 2)).astype(np.float32)
    got = page.evaluate("([eps, k]) => xae.panels[1].prior.transform(Float32Array.from(eps), k)"
                        ".then(Array.from)", [eps.ravel().tolist(), len(eps)])
    with torch.no_grad():
        want = prior_views[1].model.prior.transform(torch.from_numpy(eps)).numpy()
    assert np.abs(np.array(got).reshape(want.shape) - want).max() < 1e-4


def test_the_pages_mixture_draws_have_the_mixtures_moments(page, prior_views):
    """4000 draws of the MoG run's sampler, and of a lopsided mixture (weights 0.7, 0.2, 0.1,
    means far apart: drawing components uniformly would miss its mean by ~20 standard errors)."""
    spec = prior_views[0].page_prior.spec
    _assert_moments(_draws(page, "Promise.resolve(xae.panels[0].prior)", 4000, 2),
                    *_mixture_moments(spec))
    lopsided = {"kind": "mixture", "weights": [0.7, 0.2, 0.1],
                "means": [[0, 0, 0], [3, -1, 0.5], [-2, 4, 1]],
                "scales": [[1, 0.5, 2], [0.3, 0.3, 0.3], [1, 1, 0.1]]}
    _assert_moments(_draws(page, f"PriorSampler.create({json.dumps(lopsided)}, 3, null)", 4000, 3),
                    *_mixture_moments(lopsided))


def test_the_pages_standard_normal_draws_are_standard_normal(page):
    _assert_moments(_draws(page, "PriorSampler.create({kind: 'normal'}, 3, null)", 4000, 3),
                    np.zeros(3), np.eye(3))


def test_a_bank_prior_says_it_is_a_fixed_bank_and_draws_its_rows(page, prior_views):
    z, heading = _click_sample(page, 2, 1)
    view = prior_views[2]
    assert not page.evaluate("xae.panels[2].prior.fresh")
    assert heading == (f"samples from a fixed bank of {len(view.prior)} draws from "
                       f"{view.prior_about}, made when the explorer started: "
                       f"{view.page_prior.spec['why']}")
    assert "fixed bank" in heading
    bank = {tuple(r) for r in view.prior.astype(np.float32).tolist()}
    assert all(tuple(r) in bank for r in z.astype(np.float32).tolist())
