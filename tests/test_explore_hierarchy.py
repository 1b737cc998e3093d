"""A hierarchy in the explorer: the map is the top group's, and the page completes each latent
it decodes with the groups below, drawn down the hierarchy's prior (``descend``, the graph
``descend.onnx``) or taken from the picked image's posterior (a toggle). ``descend`` with
N(0, I) noise draws exactly what ``sample_z`` draws; the page's completions are torch's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import xae
from xae.explore.hierarchy import _Descend, descend_graph, top_dim
from xae.explore.runs import load_run
from conftest import open_page, serving
from test_explore_draw import _click_point

TOPDOWN = {"model.bottleneck": "topdown", "model.topdown.groups": [2, 3], "latent_dim": 5}
LADDER = {"model.bottleneck": "ladder", "model.ladder.groups": [2, 3], "model.ladder.hidden": 16,
          "latent_dim": 5}
HVAE = {"data.name": "digits", "data.binarize": "none", "model.hvae.channels": 8,
        "model.hvae.groups": [1, 2], "model.hvae.z_channels": 2, "model.latent_dim": 72}


def _model(kind):
    torch.manual_seed(0)
    if kind == "hvae":
        return xae.build(xae.preset("hvae", **HVAE)).eval()
    return xae.build(xae.preset("vae", **{"model.mlp.hidden": [32], **kind})).eval()


def _sizes(model):
    b = model.bottleneck
    return list(b.sizes) if hasattr(b, "sizes") else list(model.decoder.plan.sizes)


@pytest.mark.parametrize("kind", [TOPDOWN, LADDER, "hvae"], ids=["topdown", "ladder", "hvae"])
def test_descend_with_normal_noise_draws_what_sample_z_draws(kind):
    model = _model(kind)
    sizes = _sizes(model)
    assert sizes[0] == top_dim(model) and sum(sizes) == model.latent_dim
    with torch.no_grad():
        torch.manual_seed(5)
        want = model.sample_z(6)
        torch.manual_seed(5)  # the same random numbers, in the same order: top, then each group
        top = model.prior.sample(6)
        noise = torch.cat([torch.randn(6, d) for d in sizes[1:]], -1)
        got = model.bottleneck.descend(top, noise)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", [TOPDOWN, "hvae"], ids=["topdown", "hvae"])
def test_the_descend_graph_is_the_bottleneck_in_torch(kind, tmp_path):
    import onnxruntime as ort

    model = _model(kind)
    path = tmp_path / "descend.onnx"
    path.write_bytes(descend_graph(model))
    t = torch.randn(9, model.latent_dim, generator=torch.Generator().manual_seed(1))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: t.numpy()})[0]
    with torch.no_grad():
        want = _Descend(model)(t).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.fixture(scope="module")
def hier_view(tmp_path_factory):
    cfg = xae.preset("vae", **{"model.mlp.hidden": [32], **TOPDOWN, "steps": 40,
                               "train.seed": 1, "progress": False, "figures": False,
                               "log_every": 20})
    return load_run(xae.train(cfg, tmp_path_factory.mktemp("hier") / "topdown"))


@pytest.fixture(scope="module")
def hier_page(browser, hier_view):
    with serving([hier_view]) as server:
        page = open_page(browser, server.url)
        yield page
        page.close()


def _complete(page, top):
    return page.evaluate("async (top) => Array.from(await xae.panels[0].complete("
                         "Float32Array.from(top), 1))", list(map(float, top)))


def test_the_map_is_the_top_groups_and_the_page_completes_it_as_torch_does(hier_page, hier_view):
    page, view, model = hier_page, hier_view, hier_view.model
    with torch.no_grad():
        means = model.latent_mean(view.test_x).double().numpy()
    np.testing.assert_allclose(view.coords, view.plane.project(means[:, :2]), atol=1e-5)
    assert page.evaluate("xae.panels[0].dim") == 2 and page.is_visible(".panel .hier")
    assert "hierarchy of 2 groups" in page.inner_text(".plane-note")
    top = np.array([0.3, -0.7])
    # drawn from the prior below the top: descend with the page's noise
    noise = np.array(page.evaluate("Array.from(xae.panels[0].noise)"))
    with torch.no_grad():
        want = model.bottleneck.descend(torch.tensor(top[None], dtype=torch.float32),
                                        torch.tensor(noise[None], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(_complete(page, top), want, atol=1e-5)
    page.click(".panel .redraw")
    assert not np.allclose(page.evaluate("Array.from(xae.panels[0].noise)"), noise)
    # from the picked image's posterior: its lower groups, whatever the top
    assert page.is_disabled(".panel .lower-posterior")
    i = _click_point(page, 0, 11)
    e = page.evaluate("xae.panels[0].ellipse")
    with torch.no_grad():
        q = model.encode(view.test_x[i:i + 1]).groups[0].posterior
    np.testing.assert_allclose(e["cov"], np.diag(q.var[0].double().numpy()), rtol=1e-4,
                               atol=1e-9)  # the top group's q: the plane is the latent itself
    page.check(".panel .lower-posterior")
    np.testing.assert_allclose(_complete(page, top), np.r_[top, means[i, 2:]], atol=1e-5)
    assert f"test point {i}" in page.inner_text(".panel .hier-note")
    page.focus(".panel .map-overlay")
    page.keyboard.press("Escape")  # the picked point is dropped, and the toggle with it
    assert page.is_disabled(".panel .lower-posterior") and page.is_checked(".panel .lower-prior")
