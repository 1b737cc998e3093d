"""The explorer's posterior view and drawing pad in real Chromium: a clicked test point's
ellipse is its q(z|x) projected onto the map's plane as numpy computes it, a plain AE shows a
single point and says why, and what is drawn with the mouse or by touch, or dropped or pasted,
is encoded in the page (encoder.onnx) to the torch encoder's latent within 1e-4, placed on the
map, and scored by the server like `xae score`."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xae.explore.scoring import Scorer
from conftest import open_page


@pytest.fixture
def page(browser, explore_server):
    p = open_page(browser, explore_server.url)
    yield p
    p.close()


def _show(page, run):
    """Show run ``run`` alone (the page shows one run at a time unless side by side; with one
    run there is no menu)."""
    if page.evaluate("xae.panels.length") > 1:
        page.select_option("#run-select", str(run))


def _click_point(page, run, i):
    """Click test point ``i`` of run ``run``; returns the index the page picked (the nearest)."""
    _show(page, run)
    frame = page.evaluate(f"xae.panels[{run}].frames.posterior")
    x, y = page.evaluate(f"xae.panels[{run}].toScreen(xae.panels[{run}].points[3 * {i}], "
                         f"xae.panels[{run}].points[3 * {i} + 1])")
    box = page.locator(f".panel[data-run='{run}'] .map-overlay").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function(f"xae.panels[{run}].frames.posterior > {frame}")
    return page.evaluate(f"xae.panels[{run}].ellipse.index")


@pytest.mark.parametrize("run", [0, 2])  # a 2-d latent (the plane itself), a 5-d one (PCA)
def test_a_clicked_point_shows_its_posterior_ellipse_as_computed_in_python(page, explore_views,
                                                                          run):
    view = explore_views[run]
    i = _click_point(page, run, 17)
    e = page.evaluate(f"(() => {{ const e = xae.panels[{run}].ellipse; return {{centre: e.centre, "
                      f"cov: e.cov, radii: e.radii, angle: e.angle, z: Array.from(e.z), "
                      f"dots: e.dots}}; }})()")
    d = view.latent_dim
    mean, std = view.posterior[i, :d].astype(np.float64), view.posterior[i, d:].astype(np.float64)
    with torch.no_grad():  # the posterior the page got is the model's
        q = view.model.encode(view.test_x[i:i + 1]).posterior
    np.testing.assert_allclose(mean, q.mean[0].double().numpy(), atol=1e-5)
    np.testing.assert_allclose(std, q.std[0].double().numpy(), rtol=1e-5)
    b = view.plane.basis
    cov = b @ np.diag(std**2) @ b.T
    np.testing.assert_allclose(e["centre"], view.plane.project(mean[None])[0], atol=1e-4)
    np.testing.assert_allclose(e["cov"], cov, rtol=1e-4, atol=1e-9)
    lam, vec = np.linalg.eigh(cov)  # ascending
    np.testing.assert_allclose(e["radii"], np.sqrt(lam[::-1]), rtol=1e-4)
    major = np.array([np.cos(e["angle"]), np.sin(e["angle"])])
    assert abs(abs(major @ vec[:, 1]) - 1) < 1e-4
    # the solid 1σ contour passes through mean ± r1·(major axis) on the canvas
    tip = np.array(e["centre"]) + e["radii"][0] * major
    sx, sy = page.evaluate(f"xae.panels[{run}].toScreen({tip[0]}, {tip[1]})")
    found = page.evaluate(f"""(() => {{
        const c = document.querySelector(".panel[data-run='{run}'] .map-overlay");
        const r = window.devicePixelRatio || 1, ctx = c.getContext('2d');
        const px = ctx.getImageData(Math.round({sx} * r) - 3, Math.round({sy} * r) - 3, 7, 7).data;
        for (let k = 0; k < px.length; k += 4)
          if (px[k + 3] > 128 && px[k] > 200 && px[k + 1] > 80 && px[k + 1] < 160 && px[k + 2] < 90)
            return true;
        return false; }})()""")
    assert found, f"no orange 1σ contour at ({sx:.1f}, {sy:.1f}), mean + r1 · the major axis"
    # the draws: the first decoded latent is the mean, the others differ from it and each other
    z = np.array(e["z"]).reshape(-1, d)
    np.testing.assert_allclose(z[0], mean, atol=1e-6)
    assert len(z) == 9 and len({tuple(r) for r in z}) == 9
    np.testing.assert_allclose(e["dots"], view.plane.project(z[1:]), atol=1e-4)
    assert page.is_visible(f".panel[data-run='{run}'] .post-strip")


def test_a_plain_autoencoder_shows_a_single_point_and_says_why(page, explore_views):
    i = _click_point(page, 1, 5)
    e = page.evaluate("xae.panels[1].ellipse")
    assert "radii" not in e
    np.testing.assert_allclose(e["centre"], explore_views[1].coords[i], atol=1e-6)
    note = page.inner_text(".panel[data-run='1'] .post-note")
    assert "single point" in note and "plain autoencoder" in note
    page.keyboard.press("Escape")  # drops the pins and the posterior view
    assert page.evaluate("xae.panels[1].ellipse") is None


def _draw(page, run, strokes):
    panel = f".panel[data-run='{run}']"
    page.click(f"{panel} .draw summary")
    box = page.locator(f"{panel} .pad").bounding_box()
    frames = page.evaluate(f"xae.panels[{run}].frames.scored")
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()
    page.wait_for_function(f"xae.panels[{run}].frames.scored > {frames} && "
                           f"!xae.panels[{run}].padBusy && !xae.panels[{run}].padPending")


SEVEN = [[(40, 40), (120, 40), (70, 130)]]


@pytest.mark.parametrize("run", [0, 2])
def test_a_drawn_digit_is_encoded_in_the_page_as_the_torch_encoder_does(page, explore_views,
                                                                       run):
    view = explore_views[run]
    _show(page, run)
    _draw(page, run, SEVEN)
    got = page.evaluate(f"(() => {{ const d = xae.panels[{run}].drawn; return {{x: Array.from(d.x), "
                        f"z: Array.from(d.z), u: d.u, v: d.v, score: d.score}}; }})()")
    x = torch.tensor(got["x"], dtype=torch.float32).view(1, *view.data_shape)
    assert 0.05 < x.mean() < 0.6  # the stroke is in the input, shrunk to the run's size
    with torch.no_grad():
        want = view.model.latent_mean(x)[0].double().numpy()
    np.testing.assert_allclose(got["z"], want, atol=1e-4)
    np.testing.assert_allclose([got["u"], got["v"]], view.plane.project(want[None])[0], atol=1e-4)
    expect = Scorer(view.model, view.test_x)(x[0].numpy())
    assert got["score"]["neg_elbo"] == pytest.approx(expect["neg_elbo"], rel=1e-5)
    assert got["score"]["percentile"] == pytest.approx(expect["percentile"])
    facts = page.inner_text(f".panel[data-run='{run}'] .draw-facts")
    assert "−ELBO" in facts and "anomaly score (nll" in facts and "test points" in facts


def test_a_plain_autoencoder_scores_drawn_input_by_reconstruction_without_elbo(page):
    _show(page, 1)
    _draw(page, 1, SEVEN)
    score = page.evaluate("xae.panels[1].drawn.score")
    assert score["neg_elbo"] is None and score["score"] == "recon" and score["no_elbo"]
    assert "−ELBO: none" in page.inner_text(".panel[data-run='1'] .draw-facts")


def test_touch_draws_on_the_pad(browser, explore_server):
    """A tap (Playwright's touchscreen) and a finger's stroke (touch events through the
    DevTools protocol) draw on the pad and are encoded."""
    page = open_page(browser, explore_server.url, has_touch=True)
    try:
        page.click(".panel[data-run='0'] .draw summary")
        box = page.locator(".panel[data-run='0'] .pad").bounding_box()
        page.touchscreen.tap(box["x"] + 80, box["y"] + 80)
        page.wait_for_function("xae.panels[0].frames.drawn > 0 && !xae.panels[0].padBusy")
        white = """([x, y]) => { const c = document.querySelector(".panel[data-run='0'] .pad");
            const r = window.devicePixelRatio || 1;
            return c.getContext('2d').getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data[0]; }"""
        assert page.evaluate(white, [80, 80]) == 255 and page.evaluate(white, [30, 130]) == 0
        cdp = page.context.new_cdp_session(page)
        pts = [(30 + 10 * k, 130 - 5 * k) for k in range(8)]
        frames = page.evaluate("xae.panels[0].frames.drawn")
        for kind, (x, y) in [("touchStart", pts[0]), *[("touchMove", p) for p in pts[1:]]]:
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
                {"x": box["x"] + x, "y": box["y"] + y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        page.wait_for_function(f"xae.panels[0].frames.drawn > {frames} && !xae.panels[0].padBusy"
                               " && !xae.panels[0].padPending")
        assert page.evaluate(white, [30, 130]) == 255 and page.evaluate(white, [65, 112]) == 255
    finally:
        page.close()


_FILE = """async ([name, type, w, h, colour]) => {
    let blob;
    if (type.startsWith('image/')) {
      const c = Object.assign(document.createElement('canvas'), { width: w, height: h });
      const ctx = c.getContext('2d');
      ctx.fillStyle = '#000'; ctx.fillRect(0, 0, w, h);
      ctx.fillStyle = colour; ctx.fillRect(w / 4, h / 4, w / 2, h / 2);
      blob = await new Promise((ok) => c.toBlob(ok, 'image/png'));
    } else {
      blob = new Blob(['not an image'], { type });
    }
    const dt = new DataTransfer();
    dt.items.add(new File([blob], name, { type }));
    return dt;
}"""


def _drop(page, run, name, type_, w=8, h=8, colour="#fff"):
    dt = page.evaluate_handle(_FILE, [name, type_, w, h, colour])
    page.dispatch_event(f".panel[data-run='{run}'] .pad", "drop", {"dataTransfer": dt})


def test_dropped_and_pasted_images_are_encoded_and_other_files_refused(page, explore_views):
    page.click(".panel[data-run='0'] .draw summary")
    note = ".panel[data-run='0'] .draw-note"
    _drop(page, 0, "square.png", "image/png", 8, 8)  # the run's own size, grey
    page.wait_for_function("xae.panels[0].frames.drawn === 1 && !xae.panels[0].padBusy")
    assert "used as it is" in page.inner_text(note)
    x = np.array(page.evaluate("Array.from(xae.panels[0].drawn.x)")).reshape(8, 8)
    assert x[3:5, 3:5].min() > 0.9 and x[0].max() < 0.1  # the square, where it was
    _drop(page, 0, "wide.png", "image/png", 32, 16, "#f00")
    page.wait_for_function("xae.panels[0].frames.drawn === 2 && !xae.panels[0].padBusy")
    text = page.inner_text(note)
    assert "resized from 32×16 to the run's 8×8" in text and "black bars" in text
    assert "converted to grey" in text
    _drop(page, 0, "notes.txt", "text/plain")
    page.wait_for_function("xae.panels[0].frames.refused === 1")
    assert "notes.txt is not an image (text/plain)" in page.inner_text(note)
    assert page.evaluate("xae.panels[0].frames.drawn") == 2  # nothing encoded
    page.evaluate(f"""async () => {{
        const dt = await ({_FILE})(['pasted.png', 'image/png', 8, 8, '#fff']);
        document.dispatchEvent(new ClipboardEvent('paste', {{ clipboardData: dt }})); }}""")
    page.wait_for_function("xae.panels[0].frames.drawn === 3 && !xae.panels[0].padBusy")
    assert "pasted.png" in page.inner_text(note)


def test_hovering_a_point_with_ctrl_held_shows_its_posterior(page):
    _show(page, 0)
    x, y = page.evaluate("xae.panels[0].toScreen(xae.panels[0].points[3 * 40], "
                         "xae.panels[0].points[3 * 40 + 1])")
    box = page.locator(".panel[data-run='0'] .map-overlay").bounding_box()
    page.mouse.move(box["x"] + x + 40, box["y"] + y + 40)
    page.mouse.move(box["x"] + x, box["y"] + y)  # without the key: a decode, no posterior
    assert page.evaluate("xae.panels[0].frames.posterior") == 0
    near = page.evaluate(f"xae.panels[0].nearest({x + 0.5}, {y})")  # before the map may zoom
    page.keyboard.down("Control")
    page.mouse.move(box["x"] + x + 0.5, box["y"] + y)
    page.keyboard.up("Control")
    page.wait_for_function("xae.panels[0].frames.posterior === 1")
    assert near >= 0 and page.evaluate("xae.panels[0].ellipse.index") == near
    assert page.evaluate("xae.panels[0].pins.length") == 0  # nothing pinned
