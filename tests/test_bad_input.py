"""Bad input: a clear XaeError, exit status 2 on the CLI, no traceback, nothing half-written."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_xae

import xae
from xae.cli import main

MNIST = ROOT.parent / "shared" / "data" / "mnist"


def _fails(argv: list[str], capsys, *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("xae: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


@pytest.mark.parametrize("args, needles", [
    (["--preset", "vea"], ["unknown preset 'vea'", "did you mean 'vae'"]),
    (["--set", "model.latnt_dim=2"], ["unknown config key 'model.latnt_dim'",
                                      "did you mean 'model.latent_dim'"]),
    (["--set", "latent_dim=2"], ["did you mean 'model.latent_dim'"]),
    (["--set", "model.latent_dim=two"], ["'model.latent_dim' expects an integer"]),
    (["--set", "train.lr=fast"], ["'train.lr' expects a number"]),
    (["--set", "model.mlp.hidden=64"], ["'model.mlp.hidden' expects a list"]),
    (["--set", "model.hidden=[64]"], ["'model.hidden' moved to model.mlp.hidden"]),
    (["--set", "model.latent_dim"], ["not of the form key=value"]),
    (["--set", "model.likelihood=poison"], ["'model.likelihood' 'poison' is unknown", "choices: bernoulli"]),
    (["--set", "model.bottleneck=deterministic"], ["needs a posterior", "model.bottleneck=gaussian"]),
    (["--set", "beta.kind=exponential"], ["'beta.kind' 'exponential' is unknown"]),
    (["--data", "cifar"], ["unknown", "cifar"]),
    (["--data", "arrays", "--set", "data.path=/nonexistent/x.npy"], ["x.npy"]),
    (["--set", "model.encoder=conv", "model.decoder=conv", "model.conv.channels=[8,16,32,64]"],
     ["divisible by 16"]),
    (["--data", "linear-gaussian", "--set", "model.encoder=conv"], ["conv nets need image data"]),
    (["--data", "linear-gaussian"], ["bernoulli likelihood needs data in [0, 1]"]),
    (["--device", "cuda"], ["no CUDA device"]),
])
def test_bad_train_arguments(args: list[str], needles: list[str], tmp_path: Path,
                             capsys) -> None:
    out = tmp_path / "run"
    _fails(["train", "--steps", "2", "--no-progress", *args, "--out", str(out)], capsys,
           *needles)
    assert not out.exists()  # nothing half-written


def test_bad_data_files(tmp_path: Path, capsys) -> None:
    nan = np.random.default_rng(0).random((50, 6)).astype(np.float32)
    nan[3, 2] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    _fails(["train", "--data", "arrays", "--set", f"data.path={tmp_path / 'nan.npy'}",
            "--out", str(tmp_path / "r1")], capsys, "NaN")
    np.save(tmp_path / "flat.npy", np.arange(10.0))
    _fails(["train", "--data", "arrays", "--set", f"data.path={tmp_path / 'flat.npy'}",
            "--out", str(tmp_path / "r2")], capsys, "flat.npy")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    _fails(["train", "--data", "arrays", "--set", f"data.path={tmp_path / 'junk.npz'}",
            "--out", str(tmp_path / "r3")], capsys, "junk.npz")
    assert not any((tmp_path / r).exists() for r in ("r1", "r2", "r3"))


@pytest.mark.skipif(not (MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="the shared MNIST files are not present")
def test_corrupt_mnist(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "mnist"
    shutil.copytree(MNIST, bad)
    raw = bytearray(gzip.decompress((bad / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] ^= 0xFF
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    _fails(["train", "--data", "mnist", "--data-dir", str(bad), "--out", str(tmp_path / "r")],
           capsys, "t10k-labels-idx1-ubyte")
    assert not (tmp_path / "r").exists()


def test_existing_folder_is_not_overwritten(trained: Path, tmp_path: Path, capsys) -> None:
    run = _copy(trained, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    _fails(["train", "--steps", "2", "--out", str(run)], capsys, "already exists", "--resume")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("damage, needles", [
    ("truncate-weights", ["model.safetensors", "corrupt"]),
    ("foreign-weights", ["does not match the module", "belong to the model"]),
    ("no-weights", ["no model.safetensors"]),
    ("garbage-config", ["config.json", "corrupt"]),
    ("foreign-config", ["not an xae config"]),
])
def test_damaged_run_folder(damage: str, needles: list[str], trained: Path, tmp_path: Path,
                            capsys) -> None:
    run = _copy(trained, tmp_path)
    weights, config = run / "model.safetensors", run / "config.json"
    if damage == "truncate-weights":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "foreign-weights":
        other = tmp_path / "other"
        main(["train", "--steps", "1", "--no-progress", "--set", "model.latent_dim=3",
              "model.mlp.hidden=[64]", "train.figures=false", "--out", str(other)])
        shutil.copy(other / "model.safetensors", weights)
    elif damage == "no-weights":
        weights.unlink()
    elif damage == "garbage-config":
        config.write_text("{not json")
    else:
        config.write_text('{"kind": "diffusers-vae", "sample_size": 64}')
    for cmd in (["info", str(run)], ["eval", str(run)], ["sample", str(run), "-o",
                                                         str(tmp_path / "s.png")]):
        _fails(cmd, capsys, *needles)
    assert not (tmp_path / "s.png").exists()


def test_corrupt_state_cannot_resume(trained: Path, tmp_path: Path, capsys) -> None:
    run = _copy(trained, tmp_path)
    (run / "checkpoint" / "state.pt").write_bytes(b"\x80\x04garbage")
    _fails(["train", "--resume", str(run)], capsys, "state.pt", "corrupt")


def test_not_a_run_folder(tmp_path: Path, capsys) -> None:
    _fails(["info", str(tmp_path)], capsys, "not an xae run folder")
    _fails(["eval", str(tmp_path / "missing")], capsys, "is not a folder")
    _fails(["train", "--resume", str(tmp_path)], capsys, "not an xae run folder")


def test_api_raises_xae_error() -> None:
    with pytest.raises(xae.XaeError, match="did you mean 'beta-vae'"):
        xae.preset("beta_vae")
    with pytest.raises(xae.XaeError, match="ambiguous"):
        xae.preset("vae", seed=1)  # data.seed or train.seed?
    model = xae.build(xae.preset("vae"))
    import torch

    with pytest.raises(xae.XaeError, match=r"expects \(batch, 1, 8, 8\)"):
        model(torch.zeros(4, 64))


def test_cli_exit_code_and_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    p = run_xae("train", "--preset", "nope", "--out", str(tmp_path / "r"))
    assert p.returncode == 2
    assert p.stderr.startswith("xae: error: unknown preset 'nope'") and "Traceback" not in p.stderr
    p = run_xae("info", str(tmp_path))
    assert p.returncode == 2 and "Traceback" not in p.stderr
