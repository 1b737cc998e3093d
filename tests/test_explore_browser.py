"""The explorer in a real browser (Debian's Chromium, driven by Playwright): the page loads
with onnxruntime-web, draws one point per test image, decodes under the cursor to the server's
(torch) decode within 1e-4, pins and interpolates, samples the prior, switches between runs,
and a static export works from a plain file server."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import xae
from xae.explore import write_static
from conftest import open_page


@pytest.fixture
def page(browser, explore_server):
    p = open_page(browser, explore_server.url)
    yield p
    p.close()


def _overlay(page, run):
    return page.locator(f".panel[data-run='{run}'] .map-overlay")


def _pixels(page, run, selector=".decoded"):
    return page.evaluate("""([run, sel]) => {
        const c = document.querySelector(`.panel[data-run='${run}'] ${sel}`);
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }""", [run, selector])


def _move_and_wait(page, run, x, y):
    frame = page.evaluate(f"xae.panels[{run}].frames.hover")
    box = _overlay(page, run).bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_function(f"xae.panels[{run}].frames.hover > {frame} && "
                           f"!xae.panels[{run}].busy")


def test_the_page_loads_with_one_point_per_test_image(page, explore_views):
    assert page.evaluate("xae.via") == "browser"  # onnxruntime-web, not the server
    n_test = len(xae.data.load(explore_views[0].model.config.data).test_x)
    for i in range(3):
        assert page.evaluate(f"xae.panels[{i}].n") == n_test
        assert page.evaluate(f"xae.panels[{i}].pointsDrawn") == n_test
    text = page.inner_text(".panel[data-run='2'] .plane-note")
    assert "5 dimensions" in text and "principal components" in text
    assert page.inner_text(".panel[data-run='0'] .plane-note").startswith("The latent has 2")
    stats = page.inner_text(".panel[data-run='0'] .stats")
    assert "vae" in stats and f"{explore_views[0].stats['rate']:.3f}" in stats
    assert "not evaluated" in stats


def test_a_plain_autoencoder_shows_no_elbo_and_says_what_its_prior_button_draws(
        page, explore_views):
    """The AE's panel (run 1) says it has no ELBO, rather than repeating its distortion, and
    that its "prior" is one it was never trained towards; the VAE's panel shows its −ELBO."""
    ae = page.text_content(".panel[data-run='1'] .stats")
    assert "none: a point-mass code" in ae
    assert f"{explore_views[1].stats['distortion']:.3f}" in ae
    assert "never trained towards" in ae
    vae = page.text_content(".panel[data-run='0'] .stats")
    assert f"−ELBO{explore_views[0].stats['neg_elbo']:.3f}" in vae.replace(" ", "")
    assert "never trained towards" not in vae


def test_the_browsers_decode_equals_the_servers(page, explore_views):
    for i, view in enumerate(explore_views):
        rows = np.random.default_rng(i).normal(scale=2.0, size=(6, view.latent_dim)).tolist()
        browser_x = np.array(page.evaluate("([i, r]) => xae.decode(i, r, 'page')", [i, rows]))
        server_x = np.array(page.evaluate("([i, r]) => xae.decode(i, r, 'server')", [i, rows]))
        with torch.no_grad():
            torch_x = view.model.decode(torch.tensor(rows, dtype=torch.float32)).numpy().ravel()
        assert browser_x.shape == server_x.shape == torch_x.shape
        assert np.abs(browser_x - server_x).max() < 1e-4
        np.testing.assert_allclose(server_x, torch_x, atol=1e-6)


def test_hovering_decodes_the_point_under_the_cursor(page, explore_views):
    _move_and_wait(page, 0, 60, 80)
    first = _pixels(page, 0)
    _move_and_wait(page, 0, 400, 380)
    second = _pixels(page, 0)
    assert first != second
    # the image drawn is the decode of the plane point under the cursor
    u, v = page.evaluate("xae.panels[0].toData(400, 380)")
    with torch.no_grad():
        x = explore_views[0].model.decode(torch.tensor([[u, v]], dtype=torch.float32))[0, 0]
    img = np.array(second).reshape(192, 192, 4)[::24, ::24, 0]  # one screen pixel per cell
    assert np.abs(img - np.round(x.clamp(0, 1).numpy() * 255)).max() <= 1
    lat = page.evaluate("xae.latencies")
    assert len(lat) >= 2 and all(0 <= t < 5000 for t in lat)


def test_the_principal_plane_decodes_its_own_latents(page, explore_views):
    """For the 5-d run, the page's cursor latent is mean + u·b1 + v·b2."""
    view = explore_views[2]
    page.select_option("#run-select", "2")
    _move_and_wait(page, 2, 300, 150)
    z = page.evaluate("(() => { const p = xae.panels[2], [u, v] = p.toData(300, 150);"
                      " return [u, v]; })()")
    want = view.plane.mean + np.array(z) @ view.plane.basis
    where = page.inner_text(".panel[data-run='2'] .where")
    shown = [float(s) for s in where.split("[")[1].split("]")[0].split(", ")]
    np.testing.assert_allclose(shown, want, atol=0.006)


def test_two_pins_draw_an_interpolation_strip(page):
    assert page.is_hidden(".panel[data-run='0'] .strips")
    box = _overlay(page, 0).bounding_box()
    page.mouse.click(box["x"] + 80, box["y"] + 90)
    page.mouse.click(box["x"] + 390, box["y"] + 400)
    page.wait_for_function("xae.panels[0].frames.strip === 1")
    assert page.is_visible(".panel[data-run='0'] .strip-linear")
    assert page.is_visible(".panel[data-run='0'] .strip-slerp")  # a Gaussian latent
    linear = np.array(_pixels(page, 0, ".strip-linear")).reshape(-1, 4)[:, 0]
    slerp = np.array(_pixels(page, 0, ".strip-slerp")).reshape(-1, 4)[:, 0]
    assert linear.std() > 0 and slerp.std() > 0 and (linear != slerp).any()
    # the plain AE's latent is not Gaussian: only the linear strip
    page.select_option("#run-select", "1")
    box = _overlay(page, 1).bounding_box()
    page.mouse.click(box["x"] + 80, box["y"] + 90)
    page.mouse.click(box["x"] + 390, box["y"] + 400)
    page.wait_for_function("xae.panels[1].frames.strip === 1")
    assert page.is_visible(".panel[data-run='1'] .strip-linear")
    assert page.is_hidden(".panel[data-run='1'] .strip-slerp")


def test_the_prior_button_draws_a_grid_of_samples(page):
    page.click(".panel[data-run='0'] .sample")
    page.wait_for_function("xae.panels[0].frames.samples === 1")
    grid = np.array(_pixels(page, 0, ".sample-grid")).reshape(-1, 4)[:, 0]
    assert page.is_visible(".panel[data-run='0'] .sample-grid") and grid.std() > 0


def test_the_run_switch_and_side_by_side(page):
    visible = lambda: [page.is_visible(f".panel[data-run='{i}']") for i in range(3)]  # noqa: E731
    assert page.is_visible("#run-select") and visible() == [True, False, False]
    page.select_option("#run-select", "2")
    assert visible() == [False, False, True]
    page.check("#side-by-side")
    assert visible() == [True, True, True]
    boxes = [page.locator(f".panel[data-run='{i}']").bounding_box() for i in range(2)]
    assert boxes[1]["x"] > boxes[0]["x"] + boxes[0]["width"] - 1  # side by side, not stacked
    # two runs fit a 1400 × 900 screen, each decoded image beside its map, not under it
    page.set_viewport_size({"width": 1400, "height": 900})
    for i in range(2):
        panel = page.locator(f".panel[data-run='{i}']").bounding_box()
        mapbox = page.locator(f".panel[data-run='{i}'] .map-overlay").bounding_box()
        image = page.locator(f".panel[data-run='{i}'] .decoded").bounding_box()
        wide = page.evaluate(f"""Array.from(document.querySelectorAll(".panel[data-run='{i}'] *"))
            .filter((e) => e.getBoundingClientRect().width > 700)
            .map((e) => e.className + ':' + e.tagName + ':' + e.getBoundingClientRect().width)""")
        assert panel["x"] + panel["width"] <= 1400 and image["y"] + image["height"] <= 900, wide
        assert image["x"] >= mapbox["x"] + mapbox["width"] and image["y"] < mapbox["y"] + 10
    page.uncheck("#side-by-side")
    assert visible() == [False, False, True]
    _move_and_wait(page, 2, 100, 100)  # the switched-to run decodes under the cursor


def test_zoom_and_pan_move_the_view(page):
    before = page.evaluate("({...xae.panels[0].view})")
    box = _overlay(page, 0).bounding_box()
    page.mouse.move(box["x"] + 240, box["y"] + 240)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"xae.panels[0].view.scale > {before['scale']}")
    page.mouse.down()
    page.mouse.move(box["x"] + 300, box["y"] + 240, steps=5)
    page.mouse.up()
    after = page.evaluate("({...xae.panels[0].view})")
    assert after["ox"] < before["ox"] and page.evaluate("xae.panels[0].pins.length") == 0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_static_export_loads_from_a_plain_file_server(browser, explore_views, tmp_path):
    site = write_static(explore_views[:2], tmp_path / "site")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1", "--directory", str(site)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        page = open_page(browser, f"http://127.0.0.1:{port}/")
        assert page.evaluate("xae.via") == "browser" and page.evaluate("xae.server") is None
        assert page.evaluate("xae.panels.length") == 2
        _move_and_wait(page, 0, 200, 200)
        rows = [[0.5, -0.25]]
        got = np.array(page.evaluate("(r) => xae.decode(0, r)", rows))
        with torch.no_grad():
            want = explore_views[0].model.decode(torch.tensor(rows)).numpy().ravel()
        assert np.abs(got - want).max() < 1e-4
        # drawn input is encoded in the page without a server; its scores say they need one
        page.click(".panel[data-run='0'] .draw summary")
        box = page.locator(".panel[data-run='0'] .pad").bounding_box()
        page.mouse.click(box["x"] + 80, box["y"] + 80)
        page.wait_for_function("xae.panels[0].frames.drawn > 0 && !xae.panels[0].padBusy")
        x = torch.tensor(page.evaluate("Array.from(xae.panels[0].drawn.x)")).view(1, 1, 8, 8)
        with torch.no_grad():
            want = explore_views[0].model.latent_mean(x)[0].numpy()
        np.testing.assert_allclose(page.evaluate("Array.from(xae.panels[0].drawn.z)"), want,
                                   atol=1e-4)
        assert "this static copy has no server" in page.inner_text(
            ".panel[data-run='0'] .draw-facts")
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_screenshot_button_saves_the_map_and_the_decoded_image(page, tmp_path):
    """The PNG holds the map as drawn (points under the overlay's cursor and pins) with the
    decoded image beside it, pixel for pixel."""
    from PIL import Image

    _move_and_wait(page, 0, 150, 120)
    with page.expect_download() as info:
        page.click(".panel[data-run='0'] .screenshot")
    path = tmp_path / "view.png"
    info.value.save_as(path)
    assert info.value.suggested_filename.endswith(".png")
    shot = np.asarray(Image.open(path).convert("RGBA"))
    size = page.evaluate("[xae.panels[0].canvas.points.width, xae.panels[0].canvas.points."
                         "height, xae.panels[0].canvas.decoded.width]")
    w, h, cell = size
    assert shot.shape[1] > w + cell - 1 and shot.shape[0] == h
    decoded = np.array(_pixels(page, 0)).reshape(cell, cell, 4)
    np.testing.assert_array_equal(shot[:cell, shot.shape[1] - cell:], decoded)
    points = np.array(_pixels(page, 0, ".map-points")).reshape(h, w, 4)
    overlay = np.array(_pixels(page, 0, ".map-overlay")).reshape(h, w, 4)
    bare = overlay[..., 3] == 0  # where nothing is drawn over the points
    assert bare.mean() > 0.9 and (points[bare][:, :3] < 250).any()
    np.testing.assert_array_equal(shot[:h, :w][bare][:, :3], points[bare][:, :3])


def test_the_keyboard_moves_decodes_and_pins(page):
    """With the map focused: arrows move a cursor that decodes where it stands, Enter pins,
    two pins draw the strip, `a` goes back to pin A, Backspace drops the newest pin and
    Escape drops them all."""
    page.focus(".panel[data-run='0'] .map-overlay")

    def press(key, frames="hover"):
        before = page.evaluate(f"xae.panels[0].frames.{frames}")
        page.keyboard.press(key)
        page.wait_for_function(f"xae.panels[0].frames.{frames} > {before} && "
                               "!xae.panels[0].busy")

    press("ArrowRight")
    press("Shift+ArrowUp")
    at = page.evaluate("xae.panels[0].keyCursor")
    assert at == [240 + 8, 240 - 32]
    cursor = page.evaluate("[xae.panels[0].cursor.u, xae.panels[0].cursor.v]")
    assert cursor == pytest.approx(page.evaluate(f"xae.panels[0].toData({at[0]}, {at[1]})"))
    page.keyboard.press("Enter")
    press("ArrowDown")
    press("Enter", "strip")  # the second pin draws the interpolation strip
    pins = page.evaluate("xae.panels[0].pins.map((p) => [p.u, p.v])")
    assert len(pins) == 2 and pins[0] == pytest.approx(cursor)
    assert page.is_visible(".panel[data-run='0'] .strips")
    press("a")
    assert page.evaluate("[xae.panels[0].cursor.u, xae.panels[0].cursor.v]") == \
        pytest.approx(pins[0])
    page.keyboard.press("Backspace")
    assert page.evaluate("xae.panels[0].pins.length") == 1
    assert not page.is_visible(".panel[data-run='0'] .strips")
    page.keyboard.press("Escape")
    assert page.evaluate("xae.panels[0].pins.length") == 0


def test_linked_cursors_decode_one_latent_in_every_run_of_its_size(page):
    """Side by side with linked cursors, the point under the cursor in the VAE's map (2-d) is
    decoded by the AE (2-d) too, at that very latent, and marked on its map; the 5-d run does
    not follow. Unlinked, the AE stays where it was."""
    page.check("#side-by-side")
    page.check("#link-cursors")
    before = page.evaluate("xae.panels.map((p) => p.frames.hover)")
    # the VAE's screen point whose latent lies at the centre of the AE's view (both 2-d runs
    # draw their latent plane as it is), so the mark falls inside the AE's map
    x, y = page.evaluate("xae.panels[0].toScreen(...xae.panels[1].toData(240, 200))")
    assert 0 <= x < 480 and 0 <= y < 480
    _move_and_wait(page, 0, x, y)
    page.wait_for_function(f"xae.panels[1].frames.hover > {before[1]} && !xae.panels[1].busy")
    z0 = page.evaluate("Array.from(xae.panels[0].lastZ)")
    assert page.evaluate("Array.from(xae.panels[1].lastZ)") == pytest.approx(z0, abs=1e-6)
    assert page.evaluate("xae.panels[2].frames.hover") == before[2]
    ae = np.array(_pixels(page, 1)).reshape(-1, 4)[:, :3]
    assert ae.std() > 0  # the AE's image is drawn, no longer black
    mark = np.array(_pixels(page, 1, ".map-overlay")).reshape(480, 480, 4)[..., 3]
    assert mark[190:211, 230:251].any() and not mark[:150].any()  # around (240, 200) only
    page.uncheck("#link-cursors")
    frames = page.evaluate("xae.panels[1].frames.hover")
    _move_and_wait(page, 0, 200, 200)
    assert page.evaluate("xae.panels[1].frames.hover") == frames
