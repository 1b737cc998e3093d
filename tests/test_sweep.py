"""``xae sweep`` end to end on the bundled digits: a β grid, any-key grids, failures, Optuna."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest
from conftest import TINY, run_xae

from xae.cli import main
from xae.sweep.grid import parse_grid, run_name, split_values

FAST = [*TINY, "train.figures=false"]  # the sweep draws its own figures; the runs need none
REPORT = {"sweep.json", "table.md", "table.csv", "rate_distortion.png", "latent_maps.png"}


def sweep(out: Path, *args: str) -> object:
    """The sweep as a user runs it: ``python -m xae sweep ...`` in a subprocess."""
    return run_xae("sweep", *args, "--steps", "40", "--set", *FAST, "--out", str(out))


def sweep_here(capsys, out: Path, *args: str, steps: str = "40") -> tuple[int, str, str]:
    """The same command through ``xae.cli.main`` in this process (its children are still
    real ``xae train`` processes); saves a Python start. Returns (status, stdout, stderr)."""
    capsys.readouterr()
    status = main(["sweep", *args, "--steps", steps, "--set", *FAST, "--out", str(out)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def beta_sweep(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("sweep") / "beta"
    p = sweep(out, "--beta", "0.25,4")
    assert p.returncode == 0, p.stderr
    return out, p


def test_beta_sweep_writes_its_folder(beta_sweep) -> None:
    out, p = beta_sweep
    names = {q.name for q in out.iterdir()}
    assert names == REPORT | {"beta=0.25", "beta=4"}  # no logs/, no temporary files
    for run in ("beta=0.25", "beta=4"):
        files = {q.name for q in (out / run).iterdir()}
        assert {"metrics.json", "config.json", "train.log"} <= files
    for png in ("rate_distortion.png", "latent_maps.png"):
        assert mpimg.imread(out / png).std() > 0
    record = json.loads((out / "sweep.json").read_text())
    assert record["swept"] == ["beta.value"] and record["runs_failed"] == 0
    runs = {r["name"]: r for r in record["runs"]}
    assert runs["beta=4"]["params"] == {"beta.value": 4.0}
    assert runs["beta=4"]["status"] == "done" and runs["beta=4"]["step"] == 40
    # a heavier KL weight buys a lower rate
    assert runs["beta=4"]["test"]["rate"] < runs["beta=0.25"]["test"]["rate"]
    assert record["best"] in runs
    table = (out / "table.md").read_text()
    assert "| beta.value |" in table and "neg_elbo" in table and "active_units" in table
    assert (out / "table.csv").read_text().startswith("run,beta.value,status,neg_elbo")
    assert "| beta=0.25 |" in p.stdout and f"sweep written to {out}" in p.stdout


def test_a_full_folder_is_refused_then_resumed(beta_sweep, capsys) -> None:
    out, _ = beta_sweep
    before = (out / "sweep.json").stat().st_mtime_ns
    status, _, err = sweep_here(capsys, out, "--beta", "0.25,4")
    assert status == 2 and "pass --resume" in err
    assert (out / "sweep.json").stat().st_mtime_ns == before
    status, text, err = sweep_here(capsys, out, "--beta", "0.25,4", "--resume")
    assert status == 0, err
    assert text.count(": reused in") == 2  # nothing trained again
    status, _, err = sweep_here(capsys, out, "--beta", "0.25,4", "--resume", steps="41")
    assert status == 2 and "train.steps differ" in err


def test_a_grid_over_any_key(tmp_path: Path, capsys) -> None:
    out = tmp_path / "dims"
    status, _, err = sweep_here(capsys, out, "--grid", "model.latent_dim=2,3")
    assert status == 0, err
    assert REPORT | {"latent_dim=2", "latent_dim=3"} == {q.name for q in out.iterdir()}
    cfg = json.loads((out / "latent_dim=3" / "config.json").read_text())
    assert cfg["model"]["latent_dim"] == 3 and cfg["train"]["steps"] == 40
    record = json.loads((out / "sweep.json").read_text())
    assert record["swept"] == ["model.latent_dim"]
    assert [r["params"]["model.latent_dim"] for r in record["runs"]] == [2, 3]


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lr"
    status, _, err = sweep_here(capsys, out, "--grid", "train.lr=1e-3,1e9")  # 1e9 diverges
    assert status == 1
    assert "1 of 2 runs failed" in err and "lr=1e+09" in err
    assert "training diverged" in err  # the tail of the child's log
    assert (out / "lr=0.001" / "metrics.json").is_file()
    assert (out / "logs" / "lr=1e+09.log").is_file()  # the run left no folder, its log stays
    record = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["done", "failed"]
    assert record["runs_failed"] == 1 and record["best"] == "lr=0.001"
    assert "| failed |" in (out / "table.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--grid", "model.latent_dm=2,3"], "did you mean 'model.latent_dim'"),
    (["--grid", "model.latent_dim=2,x"], "expects an integer"),
    (["--grid", "model.likelihood=bernoulli,gausian"], "did you mean 'gaussian'"),
    (["--grid", "latent_dim=0,2"], "must be a positive integer"),
    (["--beta", "1,1.0"], "lists the value 1.0 twice"),
    (["--beta", "1,2", "--set", "beta.value=3"], "both fixed with --set and swept"),
    (["--beta", "1,2", "--optuna"], "drop --beta/--grid"),
    (["--optuna", "--space", "model.likelihood=0:1"], "a range LO:HI needs a numeric key"),
    ([], "nothing to sweep"),
])
def test_bad_sweeps_exit_2_and_write_nothing(tmp_path: Path, capsys, args: list[str],
                                             message: str) -> None:
    out = tmp_path / "never"
    assert main(["sweep", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xae: error: ") and message in err
    assert not out.exists()


def test_without_optuna_the_error_says_what_to_install(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` fail
    out = tmp_path / "never"
    assert main(["sweep", "--optuna", "--space", "beta.value=0.1:10", "--out", str(out)]) == 2
    assert "pip install 'xae[sweep]'" in capsys.readouterr().err
    assert not out.exists()


def test_optuna_search(tmp_path: Path, capsys) -> None:
    pytest.importorskip("optuna")
    out = tmp_path / "optuna"
    status, _, err = sweep_here(capsys, out, "--optuna", "--trials", "2", "--space",
                                "beta.value=0.1:10:log", "--seed", "1")
    assert status == 0, err
    trials = sorted(q.name for q in out.iterdir() if q.name.startswith("trial-"))
    assert len(trials) == 2 and all((out / t / "metrics.json").is_file() for t in trials)
    assert REPORT | {"optuna.json"} <= {q.name for q in out.iterdir()}
    summary = json.loads((out / "optuna.json").read_text())
    assert summary["direction"] == "minimize" and summary["metric"] == "neg_elbo"
    assert 0.1 <= summary["best_params"]["beta.value"] <= 10
    assert summary["best_run"] in trials and len(summary["trials"]) == 2
    record = json.loads((out / "sweep.json").read_text())
    assert record["kind"] == "optuna" and record["best"] == summary["best_run"]


def test_grid_parsing() -> None:
    assert split_values("[64],[128, 64]") == ["[64]", "[128, 64]"]
    assert parse_grid("0.1,1", ["latent_dim=2,3"]) == {"beta.value": ["0.1", "1"],
                                                       "model.latent_dim": ["2", "3"]}
    assert run_name({"beta.value": 0.5, "model.hidden": [64, 32]}) == "beta=0.5,hidden=64-32"
    assert run_name({"model.lr": 1.0, "train.lr": 2.0}) == "model.lr=1,train.lr=2"
