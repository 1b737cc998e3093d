"""The prior as the explorer's page samples it (``xae.explore.priors``): the spec is the model's
own prior, exactly (the mixture's density is the prior's log_prob, the flow's graph is its
transform), and a prior the page cannot draw exactly is a bank that says why."""
from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import xae
from xae.explore.priors import page_prior

TINY = {"model.mlp.hidden": [32], "latent_dim": 2, "steps": 40, "train.seed": 1,
        "progress": False, "figures": False, "log_every": 20}
PRIORS = {  # run name → the prior's settings
    "mog": {"model.prior": "mog", "model.mog.components": 4},
    "vamp": {"model.prior": "vamp", "model.vamp.components": 10},
    "flow": {"model.prior": "flow", "model.flow.layers": 4, "model.flow.hidden": 32},
    "vq": {"model.bottleneck": "vq", "model.regularizer": "none", "model.prior": "codes",
           "model.vq.codebook_size": 16, "model.vq.code_dim": 2},  # a bank: discrete codes
}
_TRAINED: dict[str, Path] = {}  # once per session, also for test_explore_priors_browser


@pytest.fixture(scope="session")
def prior_runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny VAE runs on the digits with a mixture, a VampPrior and a flow prior, and a VQ run."""
    if not _TRAINED:
        base = tmp_path_factory.mktemp("explore-priors")
        for name, settings in PRIORS.items():
            _TRAINED[name] = xae.train(xae.preset("vae", **{**TINY, **settings}), base / name)
    return _TRAINED


@pytest.fixture(scope="session")
def prior_models(prior_runs):
    return {name: xae.load(path, device="cpu") for name, path in prior_runs.items()}


def mixture_log_prob(spec: dict, z: np.ndarray) -> np.ndarray:
    """log Σ_c w_c N(z; m_c, diag s_c²) from the page's spec, in float64."""
    w, m, s = (np.asarray(spec[k], dtype=np.float64) for k in ("weights", "means", "scales"))
    comp = -0.5 * (((z[:, None, :] - m) / s) ** 2 + 2 * np.log(s) + np.log(2 * np.pi)).sum(-1)
    top = comp.max(-1, keepdims=True)
    return (top + np.log((w * np.exp(comp - top)).sum(-1, keepdims=True)))[:, 0]


@pytest.mark.parametrize("name,components", [("mog", 4), ("vamp", 10)])
def test_a_mixture_spec_has_the_priors_density(prior_models, name, components):
    model = prior_models[name]
    spec = page_prior(model).spec
    assert spec["kind"] == "mixture" and len(spec["weights"]) == components
    assert np.array(spec["means"]).shape == np.array(spec["scales"]).shape == (components, 2)
    assert abs(sum(spec["weights"]) - 1) < 1e-6 and min(min(spec["scales"])) > 0
    z = np.random.default_rng(0).normal(scale=2.0, size=(64, 2))
    with torch.no_grad():
        want = model.prior.log_prob(torch.tensor(z, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(mixture_log_prob(spec, z), want, atol=1e-5, rtol=0)
    json.dumps(spec)  # runs.json carries it


def test_the_vampprior_components_are_the_encoders_at_its_pseudo_inputs(prior_models):
    model = prior_models["vamp"]
    spec = page_prior(model).spec
    with torch.no_grad():
        q = model.posterior_of(model.prior.pseudo_inputs)
    np.testing.assert_allclose(spec["weights"], 0.1, atol=1e-7)
    np.testing.assert_allclose(spec["means"], q.mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(spec["scales"], q.std.numpy(), atol=1e-6)


def test_the_flow_graph_is_the_flows_transform(prior_models):
    import onnxruntime as ort

    model = prior_models["flow"]
    made = page_prior(model)
    assert made.spec == {"kind": "flow"} and made.fresh
    assert made.to_json(3) == {"kind": "flow", "file": "run/3/prior.onnx"}
    session = ort.InferenceSession(made.graph, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["eps"]
    eps = np.random.default_rng(1).normal(size=(9, 2)).astype(np.float32)  # any batch size
    got = session.run(None, {"eps": eps})[0]
    with torch.no_grad():
        want = model.prior.transform(torch.from_numpy(eps)).numpy()
    assert not np.allclose(want, eps, atol=1e-3)  # trained: not the identity it starts as
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_runs_json_carries_the_sampler_and_the_site_serves_the_flow(prior_runs):
    from xae.explore import build_site
    from xae.explore.runs import load_run

    views = [load_run(prior_runs[k], max_points=200) for k in ("mog", "flow", "vq")]
    files = build_site(views, live=False)
    index = json.loads(files["runs.json"].read())
    samplers = [r["prior"]["sampler"] for r in index["runs"]]
    assert samplers[0]["kind"] == "mixture"
    assert samplers[1] == {"kind": "flow", "file": "run/1/prior.onnx"}
    assert samplers[2]["kind"] == "bank" and "discrete" in samplers[2]["why"]
    assert files["run/1/prior.onnx"].read() == views[1].page_prior.graph
    assert "run/0/prior.onnx" not in files and "run/2/prior.onnx" not in files
    assert "priors.js" in files
    assert all(len(r["prior"]["about"]) > 0 for r in index["runs"])


@pytest.mark.parametrize("preset", ["vae", "ae"])
def test_the_standard_normal_prior_of_a_flat_code_is_sampled_afresh(preset):
    model = xae.build(xae.preset(preset, latent_dim=3))
    assert page_prior(model).spec == {"kind": "normal"}


@pytest.mark.parametrize("case,words", [
    ("hierarchy", "hierarchy"), ("discrete", "discrete"), ("temperature", "temperature 0.5"),
    ("fitted", "25 Heun steps"), ("empty", "z = 0")])
def test_a_prior_the_page_cannot_draw_exactly_is_a_bank_that_says_why(case, words):
    preset, source, temperature = "vae", "own", 1.0
    settings: dict = {"model.mlp.hidden": [32], "latent_dim": 4}
    if case == "hierarchy":
        preset, settings = "ladder-vae", {"model.ladder.groups": [2, 2], "latent_dim": 4,
                                          "model.ladder.hidden": 16, "model.mlp.hidden": [32]}
    elif case == "discrete":
        settings.update(PRIORS["vq"])
    elif case == "empty":
        settings.update({"model.bottleneck": "none", "model.encoder": "none",
                         "model.regularizer": "none"})
    model = xae.build(xae.preset(preset, **settings))
    if case == "temperature":
        temperature = 0.5
    elif case == "fitted":  # a fitted diffusion prior, as xae.load attaches one
        source = "fitted"
        model.prior._fitted = (types.SimpleNamespace(config=types.SimpleNamespace(
            sample_steps=25)),)
    made = page_prior(model, source, temperature)
    assert made.spec["kind"] == "bank" and not made.fresh and made.graph is None
    assert words in made.spec["why"], made.spec
