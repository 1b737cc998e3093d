"""The explorer's attribute slider: the server sends each run's directions (the difference of
the groups' mean test latents), and in a real browser moving the slider changes the decoded
image by exactly amount · direction, and amount 0 gives back the original."""
from __future__ import annotations

import json
import urllib.request

import numpy as np
import torch

from xae.edits.measures import slant
from xae.data import load


def test_runs_json_holds_the_mean_difference_directions(explore_server, explore_views):
    with urllib.request.urlopen(explore_server.url + "runs.json") as r:
        runs = json.loads(r.read())["runs"]
    view = explore_views[0]
    attrs = {a["name"]: a for a in runs[0]["attributes"]}
    assert list(attrs) == ["thickness", "slant", *[f"class={k}" for k in range(10)]]
    x = load(view.model.config.data).test_x
    with torch.no_grad():
        z = view.model.latent_mean(x).double().numpy()
    s = slant(x)
    lo, hi = np.quantile(s, [1 / 3, 2 / 3])
    want = z[s >= hi].mean(0) - z[s <= lo].mean(0)
    np.testing.assert_allclose(attrs["slant"]["direction"], want, rtol=1e-5, atol=1e-6)
    assert abs(attrs["slant"]["length"] - np.linalg.norm(want)) < 1e-5
    assert runs[0]["attributes_missing"] is None


def test_the_slider_moves_the_cursors_latent_along_the_direction(browser, explore_server,
                                                                 explore_views):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(explore_server.url)
    page.wait_for_function("window.xae && (window.xae.ready || window.xae.error)", timeout=30_000)
    assert page.evaluate("xae.error") is None
    panel = ".panel[data-run='0']"

    def pixels():
        return np.array(page.evaluate(f"""() => {{
            const c = document.querySelector("{panel} .decoded");
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
        }}""")).reshape(192, 192, 4)[::24, ::24, 0]  # one screen pixel per 8×8 cell

    def settle(action):
        frame = page.evaluate("xae.panels[0].frames.hover")
        action()
        page.wait_for_function(f"xae.panels[0].frames.hover > {frame} && !xae.panels[0].busy")

    def slide(amount):
        page.eval_on_selector(f"{panel} .attr-amount", "(el, a) => { el.value = a; "
                              "el.dispatchEvent(new Event('input')); }", str(amount))

    box = page.locator(f"{panel} .map-overlay").bounding_box()
    settle(lambda: page.mouse.move(box["x"] + 240, box["y"] + 240))
    original = pixels()
    page.select_option(f"{panel} .attr-select", label="class=0")
    settle(lambda: slide(2))
    moved = pixels()
    assert (moved != original).any()
    u, v = page.evaluate("[xae.panels[0].cursor.u, xae.panels[0].cursor.v]")
    d = page.evaluate("xae.index.runs[0].attributes.find(a => a.name === 'class=0').direction")
    with torch.no_grad():
        x = explore_views[0].model.decode(torch.tensor([[u + 2 * d[0], v + 2 * d[1]]],
                                                       dtype=torch.float32))[0, 0]
    assert np.abs(moved - np.round(x.clamp(0, 1).numpy() * 255)).max() <= 1
    settle(lambda: slide(0))
    np.testing.assert_array_equal(pixels(), original)
    assert page.inner_text(f"{panel} .attr-value") == "0"
    page.close()
