"""A sweep in the explorer, in real Chromium: the slider moves through every member in the
order of β (a failed one shown as failed, saying why), the rate–distortion plot rings the run
shown, and the walk-through steps through the page and ends by switching to the β = 0 run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import xae
from xae.explore.sweep import load_sweep, read_sweep
from conftest import open_page, serving


@pytest.fixture(scope="module")
def beta_sweep(tmp_path_factory) -> Path:
    """A sweep folder over β = 4, 0, 1 as `xae sweep` reports it, the β = 1 run failed (its
    runs trained here, in this process: tests/test_explore_sweep.py runs a real sweep)."""
    out = tmp_path_factory.mktemp("beta-sweep") / "sweep"
    runs = []
    for beta in (4, 0, 1):
        name = f"beta={beta}"
        if beta != 1:
            cfg = xae.preset("vae", **{"model.mlp.hidden": [32], "latent_dim": 2, "steps": 40,
                                       "beta.value": beta, "train.seed": 1, "progress": False,
                                       "figures": False, "log_every": 20})
            xae.train(cfg, out / name)
        runs.append({"name": name, "params": {"beta.value": beta}, "path": name,
                     **({"status": "failed", "returncode": 1, "log": f"logs/{name}.log"}
                        if beta == 1 else {"status": "done"})})
    (out / "sweep.json").write_text(json.dumps({"kind": "grid", "swept": ["beta.value"],
                                                "runs": runs}))
    return out


@pytest.fixture(scope="module")
def sweep_page(browser, beta_sweep):
    sweep = read_sweep(beta_sweep)
    views = load_sweep(sweep)
    with serving(views, sweep) as server:
        page = open_page(browser, server.url)
        yield page, sweep, views
        page.close()


def test_the_slider_moves_through_every_member_in_order(sweep_page):
    page, sweep, views = sweep_page
    betas = [m.params["beta.value"] for m in sweep.members]
    assert betas == [0, 1, 4]
    assert [v.plane.aligned for v in views] == [False, True]
    page.focus("#sweep-slider")
    page.evaluate("xae.sweep.select(0)")
    for k, m in enumerate(sweep.members):
        if k:
            page.keyboard.press("ArrowRight")  # the slider's own keyboard step
        assert page.evaluate("xae.sweep.current") == k
        assert page.input_value("#sweep-slider") == str(k)
        assert page.inner_text("#sweep-value").startswith(f"β = {betas[k]:g}")
        shown = page.evaluate("xae.shown() && xae.shown().run.name")
        if m.failed is None:
            assert shown == m.name and not page.is_visible("#failed-member")
        else:
            assert shown is None and page.is_visible("#failed-member")
            assert "training failed (exit code 1); see " in page.inner_text(
                "#failed-member .failed-why")
    assert "turned (rotated or mirrored" in page.inner_text(".panel[data-run='1'] .plane-note")
    assert "1 failed" in page.inner_text("#sweep-note")


def test_the_rate_distortion_plot_rings_the_run_shown_and_clicks_select(sweep_page):
    page, sweep, views = sweep_page
    pts = page.evaluate("xae.sweep.plot.pts.map((p) => [p.k, p.rate, p.distortion, p.x, p.y])")
    assert [p[0] for p in pts] == [0, 2]  # the failed member has no point
    for (k, rate, dist, _, _), view in zip(pts, views):
        assert rate == pytest.approx(view.stats["rate"]) and dist == pytest.approx(view.stats["distortion"])
    # higher β: less rate and more distortion, so the β = 4 point is left of and above β = 0's
    (_, r0, d0, x0, y0), (_, r4, d4, x4, y4) = pts
    assert (r4 < r0) == (x4 < x0) and (d4 > d0) == (y4 < y0)
    box = page.locator("#rd-plot").bounding_box()
    page.mouse.click(box["x"] + x4, box["y"] + y4)
    assert page.evaluate("xae.sweep.current") == 2
    ring = page.evaluate(f"""(() => {{ const c = document.getElementById('rd-plot');
        const r = window.devicePixelRatio || 1;
        return Array.from(c.getContext('2d').getImageData(Math.round({x4} * r), Math.round({y4} * r), 1, 1).data); }})()""")
    assert ring[0] > 200 and 90 < ring[1] < 150 and ring[2] < 90  # the current point's orange


def test_the_walk_through_ends_by_switching_to_the_beta_zero_run(sweep_page):
    page, sweep, views = sweep_page
    page.evaluate("xae.sweep.select(2)")  # β = 4
    page.click("#tour-start")
    titles = []
    steps = page.evaluate("xae.tour.steps.length")
    for k in range(steps):
        page.wait_for_function(f"xae.tour.step === {k}")
        titles.append(page.inner_text("#tour-title"))
        focus = page.evaluate("xae.tour.focus && xae.tour.focus.className")
        if k < steps - 1:
            assert focus and "tour-focus" in focus, (k, focus)  # the part the step talks about
            page.click("#tour .tour-next")
    assert titles[0] == "Encode" and titles[-1] == "What happens at β = 0?"
    p = "xae.shown()"
    assert page.evaluate(f"{p}.frames.posterior") >= 1 and page.evaluate(f"{p}.frames.samples") >= 1
    point = page.evaluate("xae.tour.point")
    assert point == page.evaluate(f"{p}.ellipse.index")
    page.click("#tour .tour-extra button")
    page.wait_for_function("xae.tour.answered && xae.shown().frames.posterior >= 1 && "
                           "xae.shown().ellipse !== undefined && xae.shown().ellipse !== null")
    assert page.evaluate("xae.sweep.current") == 0
    assert page.evaluate(f"{p}.run.name") == views[0].name
    assert page.evaluate(f"{p}.ellipse.index") == point  # the same image, now at β = 0
    page.click("#tour .tour-close")
    assert not page.is_visible("#tour")


def test_without_a_beta_zero_run_the_walk_through_says_how_to_get_one(browser, explore_server):
    page = open_page(browser, explore_server.url)
    try:
        page.click("#tour-start")
        last = page.evaluate("xae.tour.steps.length") - 1
        page.evaluate(f"xae.tour.go({last})")
        page.wait_for_function(f"xae.tour.step === {last}")
        assert "no β = 0 run" in page.inner_text("#tour .tour-extra")
        assert "xae sweep --beta 0" in page.inner_text("#tour .tour-extra")
    finally:
        page.close()
