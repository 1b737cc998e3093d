"""``xae explore SWEEP_DIR``: a sweep folder's runs in the order of their swept values, failed
ones listed with their reason, runs of other data refused, and each map turned onto its
neighbour's by an orthogonal Procrustes fit that keeps every map point on its latent."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from xae.cli import main
from xae.errors import XaeError
from xae.explore import runtime
from xae.explore.runs import load_run
from xae.explore.sweep import aligned, load_sweep, procrustes, read_sweep
from xae.plane import plane_of

FAST = ["model.mlp.hidden=[32]", "train.log_every=20", "train.figures=false"]
# the grid's order, which is not the slider's: latent sizes 3 and 1, and lr 1e9 diverges
ORDER = ["latent_dim=1,lr=0.001", "latent_dim=1,lr=0.002", "latent_dim=1,lr=1e+09",
         "latent_dim=3,lr=0.001", "latent_dim=3,lr=0.002", "latent_dim=3,lr=1e+09"]
LOADED = [n for n in ORDER if "1e+09" not in n]


@pytest.fixture(scope="session")
def grid_sweep(tmp_path_factory) -> Path:
    """A real ``xae sweep`` (40 steps a run) over two keys, listed out of order; the two runs
    with lr 1e9 diverge and are recorded as failed."""
    out = tmp_path_factory.mktemp("explore-sweep") / "sweep"
    status = main(["sweep", "--grid", "model.latent_dim=3,1", "--grid", "train.lr=2e-3,1e9,1e-3",
                   "--steps", "40", "--jobs", "2", "--set", *FAST, "--out", str(out)])
    assert status == 1  # the failed runs fail the sweep
    return out


@pytest.fixture(scope="session")
def loaded(grid_sweep):
    sweep = read_sweep(grid_sweep)
    return sweep, load_sweep(sweep)


def _lift(plane, coords):
    """The latents a plane puts at its map points, as the page computes them."""
    return plane.mean + np.asarray(coords, dtype=np.float64) @ plane.basis


def _write_report(folder: Path, kind: str, keys: list[str], runs: list[dict]) -> Path:
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps({"kind": kind, "swept": keys, "runs": runs}))
    return folder


# ---- the members: order, failures, data -----------------------------------------------------

def test_members_follow_their_values_and_failed_runs_stay_listed(loaded, grid_sweep):
    sweep, views = loaded
    assert [m.name for m in sweep.members] == ORDER
    assert [v.name for v in views] == LOADED and [v.latent_dim for v in views] == [1, 1, 3, 3]
    for m in sweep.members:
        if "1e+09" in m.name:
            assert m.view is None
            log = grid_sweep / "logs" / f"{m.name}.log"
            assert m.failed == f"training failed (exit code 2); see {log}" and log.is_file()
        else:
            assert m.failed is None and m.view is not None
    for v in views:  # what the rate-distortion plot draws
        assert v.stats["source"] == "metrics.json"
        assert all(math.isfinite(v.stats[k]) for k in ("rate", "distortion", "neg_elbo"))


def test_values_order_numerically_then_as_a_tuple_in_the_sweeps_key_order(tmp_path):
    runs = [{"name": n, "path": n, "params": {"beta.value": b, "model.likelihood": lik},
             "status": "done"}
            for n, b, lik in [("t0", 2.0, "gaussian"), ("t1", 0.5, "bernoulli"),
                              ("t2", 10, "gaussian"), ("t3", 0.5, "gaussian")]]
    sweep = read_sweep(_write_report(tmp_path / "s", "optuna", ["beta.value",
                                                                "model.likelihood"], runs))
    # 10 after 2 (numbers, not text); a value that is not a number keeps its first listing's place
    assert [m.name for m in sweep.members] == ["t3", "t1", "t0", "t2"]
    none = r"no run of the sweep .* \[t3: '.*t3' is not a folder.* \| t1: "
    with pytest.raises(XaeError, match=none):
        load_sweep(sweep)  # none of the folders exists: nothing to show
    bad = _write_report(tmp_path / "b", "bayes", ["beta.value"], runs)
    with pytest.raises(XaeError, match=r"kind 'bayes'.*xae explore RUN \[RUN \.\.\.\]"):
        read_sweep(bad)


def test_a_member_without_its_weights_is_listed_as_failed(grid_sweep, tmp_path):
    sweep_dir = shutil.copytree(grid_sweep, tmp_path / "sweep")
    (sweep_dir / "latent_dim=3,lr=0.001" / "model.safetensors").unlink()
    sweep = read_sweep(sweep_dir)
    views = load_sweep(sweep)
    assert [v.name for v in views] == [n for n in LOADED if n != "latent_dim=3,lr=0.001"]
    broken = sweep.members[ORDER.index("latent_dim=3,lr=0.001")]
    assert broken.view is None and "has no model.safetensors" in broken.failed
    assert "\n" not in broken.failed


def test_runs_of_other_data_are_refused_naming_both(grid_sweep, tmp_path, xae_cli):
    if runtime.ort_dir() is None:  # --static: nothing is served, whatever happens
        pytest.fail(f"onnxruntime-web is missing: {runtime.HOW}")
    sweep_dir = shutil.copytree(grid_sweep, tmp_path / "sweep")
    config = sweep_dir / "latent_dim=3,lr=0.002" / "config.json"
    cfg = json.loads(config.read_text())
    cfg["data"]["test_fraction"] = 0.25
    config.write_text(json.dumps(cfg))
    p = xae_cli("explore", str(sweep_dir), "--static", str(tmp_path / "site"))
    assert p.returncode == 2 and p.stdout == "", p
    err = p.stderr
    assert err.startswith("xae: error: the runs latent_dim=1,lr=0.001 (data digits, "
                          "data.test_fraction=0.2) and latent_dim=3,lr=0.002 (data digits, "
                          "data.test_fraction=0.25)"), err
    assert "xae explore " in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "site").exists()


# ---- Procrustes alignment ---------------------------------------------------------------------

@pytest.mark.parametrize("reflect", [False, True])
def test_procrustes_recovers_a_known_orthogonal_map_and_shift(reflect):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 2)) * [3.0, 1.0]
    theta = 2.1
    r = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    r = r @ np.diag([1.0, -1.0]) if reflect else r
    t = np.array([4.0, -7.5])
    r_fit, t_fit = procrustes(a, a @ r.T + t)
    assert np.abs(r_fit - r).max() <= 1e-6 and np.abs(t_fit - t).max() <= 1e-6
    assert np.abs(r_fit @ r_fit.T - np.eye(2)).max() <= 1e-12  # no scaling


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_aligned_planes_map_every_point_to_the_same_latent(dim):
    rng = np.random.default_rng(dim)
    z = rng.normal(size=(300, dim)) * np.linspace(3.0, 0.5, dim) + 1.5
    plane = plane_of(z)
    coords = plane.project(z).astype(np.float32)
    theta = 0.7
    turn = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    flip = np.diag([-1.0, 1.0])
    target = (coords @ (flip @ turn).T + [2.0, -1.0] + rng.normal(size=coords.shape) * 0.01)
    new, turned = aligned(coords, plane, target.astype(np.float32))
    assert turned.aligned and turned.to_json()["aligned"] and not plane.to_json()["aligned"]
    assert new.dtype == np.float32 and new.shape == coords.shape
    # the page's z = mean + u·b1 + v·b2 is unchanged for every point, and project agrees
    assert np.abs(_lift(turned, new) - _lift(plane, coords)).max() <= 1e-5
    assert np.abs(turned.project(z) - new).max() <= 1e-5
    if dim == 1:  # only u's sign may change: no rotation into v
        assert not turned.basis[1].any() and not new[:, 1].any()
        assert np.allclose(turned.basis[0], -plane.basis[0])
    else:
        assert np.abs(new - target).max() <= 0.1  # the known map (and noise) recovered
        assert np.allclose(turned.basis @ turned.basis.T, np.eye(2))


def test_loaded_maps_are_turned_onto_their_neighbours(loaded):
    sweep, views = loaded
    plain = [load_run(v.path) for v in views]  # the same runs, not aligned
    assert not views[0].plane.aligned and np.array_equal(views[0].coords, plain[0].coords)
    assert all(v.plane.aligned for v in views[1:])
    for v, p in zip(views, plain):
        scale = np.abs(_lift(p.plane, p.coords)).max()
        assert np.abs(_lift(v.plane, v.coords) - _lift(p.plane, p.coords)).max() <= 1e-5 * scale
        if v.latent_dim == 1:
            assert not v.coords[:, 1].any()
    for previous, v, p in zip(views, views[1:], plain[1:]):
        before = np.linalg.norm(p.coords - previous.coords, axis=1)
        after = np.linalg.norm(v.coords - previous.coords, axis=1)
        assert (after**2).mean() <= (before**2).mean() + 1e-6
        assert after.mean() <= before.mean() + 1e-6


# ---- the command line and runs.json ---------------------------------------------------------

def test_the_static_site_lists_every_member_in_slider_order(grid_sweep, tmp_path, capsys):
    if runtime.ort_dir() is None:
        pytest.fail(f"onnxruntime-web is missing: {runtime.HOW}")
    site = tmp_path / "site"
    assert main(["explore", str(grid_sweep), "--static", str(site)]) == 0
    out, err = capsys.readouterr()
    assert f"(sweep {grid_sweep.name}: 4 runs, 2 failed)" in out
    assert err.count("listed as failed: training failed (exit code 2)") == 2
    index = json.loads((site / "runs.json").read_text())
    entry = index["sweep"]
    assert entry["folder"] == grid_sweep.name and entry["kind"] == "grid"
    assert entry["keys"] == ["model.latent_dim", "train.lr"]
    assert [m["name"] for m in entry["members"]] == ORDER
    assert [m["run"] for m in entry["members"]] == [0, 1, None, 2, 3, None]
    assert entry["members"][0]["params"] == {"model.latent_dim": 1, "train.lr": 0.001}
    assert [m["failed"] is None for m in entry["members"]] == ["1e+09" not in n for n in ORDER]
    assert [r["name"] for r in index["runs"]] == LOADED
    assert [r["plane"]["aligned"] for r in index["runs"]] == [False, True, True, True]
    assert all({"rate", "distortion"} <= set(r["stats"]) for r in index["runs"])


def test_a_sweep_given_with_other_runs_is_refused(grid_sweep, capsys):
    assert main(["explore", str(grid_sweep), str(grid_sweep / LOADED[0])]) == 2
    err = capsys.readouterr().err
    assert "is a sweep folder" in err and "give it alone" in err
