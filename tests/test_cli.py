"""The command-line tool end to end on the bundled digits: train, eval, sample, reconstruct, info."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import pytest
from conftest import TINY, run_xae
from safetensors.torch import load_file

RUN_FILES = {"config.json", "model.safetensors", "checkpoint", "metrics.jsonl", "metrics.json",
             "held_out.jsonl", "best.safetensors"}
FIGURES = {"reconstructions.png", "samples.png", "latent_map.png", "curves.png", "holes.png",
           "traversals.png"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "vae"
    p = run_xae("train", "--preset", "vae", "--steps", "60", "--seed", "3",
                "--set", *TINY, "model.latent_dim=2", "train.eval_every=20", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert f"run written to {out}" in p.stdout
    return out


def test_train_writes_a_complete_run_folder(run_dir: Path) -> None:
    names = {p.name for p in run_dir.iterdir()}
    assert RUN_FILES <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert {p.name for p in (run_dir / "figures").iterdir()} == FIGURES
    for png in (run_dir / "figures").iterdir():
        assert mpimg.imread(png).std() > 0
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["preset"] == "vae" and cfg["model"]["latent_dim"] == 2
    assert cfg["model"]["mlp"]["hidden"] == [64] and cfg["train"]["seed"] == 3
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(5, 61, 5))
    for key in ("step", "epoch", "loss", "distortion", "rate", "beta", "lr", "samples_per_s"):
        assert key in lines[0]
    assert lines[-1]["loss"] < lines[0]["loss"]  # it learned something
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["step"] == 60
    test = metrics["test"]
    assert test["neg_elbo"] == pytest.approx(test["distortion"] + test["rate"])
    weights = load_file(str(run_dir / "model.safetensors"))
    assert "bottleneck.proj.weight" in weights


def test_every_file_of_a_run_is_readable_by_all(run_dir: Path) -> None:
    """safetensors writes its files 0600; a run's files are 0644 like any other (umask 022)."""
    modes = {str(p.relative_to(run_dir)): p.stat().st_mode & 0o777
             for p in run_dir.rglob("*") if p.is_file()}
    assert modes["model.safetensors"] == modes["checkpoint/model.safetensors"] == 0o644
    assert set(modes.values()) == {0o644}, modes


def test_held_out_evaluations_are_logged_and_the_best_weights_kept(run_dir: Path) -> None:
    rows = [json.loads(x) for x in (run_dir / "held_out.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40, 60]
    assert {r["split"] for r in rows} == {"validation"}
    best = min(rows, key=lambda r: r["loss"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best"]["step"] == best["step"]
    assert metrics["best"]["loss"] == pytest.approx(best["loss"])
    stored = load_file(str(run_dir / "best.safetensors"))
    assert stored.keys() == load_file(str(run_dir / "model.safetensors")).keys()


def test_eval_reproduces_the_final_metrics(run_dir: Path) -> None:
    p = run_xae("eval", str(run_dir), "--json", "--k", "20")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    final = json.loads((run_dir / "metrics.json").read_text())["test"]
    # the ELBO is stochastic (one z per x), so agree to sampling noise, not bitwise
    assert got["distortion"] == pytest.approx(final["distortion"], rel=0.05)
    assert got["rate"] == pytest.approx(final["rate"], rel=1e-6)  # the analytic KL is exact
    assert got["active_units"] == final["active_units"]
    assert -got["nll_iw"] >= -got["neg_elbo"] - 0.5  # the IW bound is at least the ELBO
    assert got["gap"] > 0 and got["k"] == 20


def test_sample_and_reconstruct_write_pngs(run_dir: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.png"
    p = run_xae("sample", str(run_dir), "-n", "16", "-o", str(grid))
    assert p.returncode == 0, p.stderr
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and mpimg.imread(grid).std() > 0
    rec = tmp_path / "rec.png"
    p = run_xae("reconstruct", str(run_dir), "-n", "8", "-o", str(rec))
    assert p.returncode == 0, p.stderr
    assert mpimg.imread(rec).std() > 0


def test_the_saved_config_records_the_data_shape(run_dir: Path) -> None:
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["model"]["data_shape"] == [1, 8, 8]


def test_info_shows_config_parameters_and_metrics(run_dir: Path) -> None:
    p = run_xae("info", str(run_dir))
    assert p.returncode == 0, p.stderr
    assert "preset      vae" in p.stdout and "latent_dim  2" in p.stdout
    assert "parameters" in p.stdout and "neg_elbo" in p.stdout
    rows = {line.split()[0]: line.split(maxsplit=3)[1:]
            for line in run_xae("info", "--keys").stdout.splitlines() if line.strip()}
    typ, default, text = rows["model.latent_dim"]
    assert (typ, default) == ("int", "16") and "(≥ 1)" in text
    typ, default, text = rows["train.lr"]
    assert (typ, default) == ("float", "0.001") and "(> 0)" in text
    assert "one of constant, linear" in rows["beta.kind"][2]
    assert "(≥ 1)" in rows["model.mog.components"][2] and "settings of the prior" in \
        " ".join(rows["[model.mog]"])


def test_config_file_and_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "beta-vae"\n[model]\nlatent_dim = 3\n[model.mlp]\nhidden = [32]\n'
                    '[beta]\nkind = "linear"\nwarmup = 10\nvalue = 2.0\n')
    out = tmp_path / "run"
    p = run_xae("train", "--preset", "beta-vae", "--config", str(toml), "--steps", "12",
                "--set", "train.figures=false", "train.log_every=4", "--out", str(out))
    assert p.returncode == 0, p.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["latent_dim"] == 3 and cfg["model"]["mlp"]["hidden"] == [32]
    betas = [json.loads(x)["beta"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert betas == [pytest.approx(2.0 * s / 10) for s in (3, 7)] + [2.0]
