"""The hostile run as a table: hundreds of generated bad configs, config files, data files, run
folders and arguments. Each must end in exit status 2 with one line, ``xae: error: …``, no
traceback, and nothing written or changed.

The cases run in-process through :func:`xae.cli.main`, the function the ``xae`` command calls;
a few that depend on the process (a closed pipe, argparse) run the real command.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_origin

import numpy as np
import pytest
from conftest import ROOT, SUBPROCESS_ENV

from xae import config as C
from xae.cli import main

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "1" * 27


def _leaf_fields() -> list[tuple[str, type, dataclasses.Field]]:
    return C._fields()


def _bad_values(key: str, typ: type, f: dataclasses.Field) -> list[str]:
    """Values no key of this type and check may accept."""
    check = f.metadata.get("check")
    if typ is bool:
        return ["maybe", "2", "[]"]
    if typ is int:
        return ["1.5", "nan", HUGE, "-" + HUGE, "twelve", "[1]"]
    if typ is float:
        return ["nan", "inf", "-inf", "1e999", "fast", "[0.5]"]
    if typ is list or get_origin(typ) is list:
        out = ["{}", "[[", DEEP, '"text"']
        if key.endswith("stages") and key != "model.rvq.stages":
            return out + ["[[0]]", "[[-5, 1.0]]", "[[0, nan]]", "[[1.5, 1.0]]", "[1, 2]"]
        return out + ["[1.5]", "[-1]", "[0]", f"[{HUGE}]", "[true]", '["a"]']
    if check is not None:  # a name from a table
        return ["nope", "", "[1]"]
    return []


def _config_cases() -> list[tuple[str, str]]:
    cases = [(key, v) for key, typ, f in _leaf_fields() for v in _bad_values(key, typ, f)]
    # ranges the issue named, and their neighbours
    cases += [("beta.value", "-1"), ("beta.start", "-0.5"), ("beta.warmup", "-10"),
              ("train.lr_schedule.warmup", "-1"), ("train.epochs", "0"),
              ("train.epochs", "-3"), ("train.steps", "-1"), ("train.lr", "0"),
              ("train.lr", "-1e-3"), ("train.weight_decay", "-1"), ("train.grad_clip", "-1"),
              ("train.eval_batch_size", "0"), ("train.eval_batch_size", "-1"),
              ("train.batch_size", "0"), ("train.seed", "-1"), ("train.seed", "4294967296"),
              ("model.kl.free_bits", "-0.1"), ("model.latent_dim", "0"),
              ("model.gaussian.sigma", "0"), ("model.laplace.sigma", "0"),
              ("model.iwae.samples", "0"), ("data.test_fraction", "1"),
              ("data.test_fraction", "0"), ("train.validation_fraction", "1"),
              ("model.vq.ema_decay", "1"), ("model.fsq.levels", "[]"),
              ("model.fsq.levels", "[1]"), ("model.lfq.codebook_size", "1000"),
              ("model.mmd.info_alpha", "1.5"), ("model.gumbel.temperature.value", "0"),
              ("beta.ratio", "0"), ("beta.period", "0"),
              ("train.log_every", "0"), ("train.checkpoint_every", "0"),
              ("model.conv.channels", "[]")]  # the last: with conv nets, below
    return cases


CONFIG_CASES = _config_cases()


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


def _fails(argv: list[str], capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, (argv[:6], err[-500:])
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("xae: error: "), err[-1000:]
    assert "Traceback" not in err
    return err


def test_the_table_is_large_and_covers_every_key() -> None:
    keys = {k for k, _ in CONFIG_CASES}
    assert keys >= {k for k, t, f in _leaf_fields()
                    if t in (int, float, bool, list) or f.metadata.get("check")}
    assert len(CONFIG_CASES) + len(FILE_CASES) + len(DATA_CASES) + len(RUN_CASES) \
        + len(ARG_CASES) >= 300


@pytest.mark.parametrize("key, value", CONFIG_CASES,
                         ids=[f"{k}={v[:12]}" for k, v in CONFIG_CASES])
def test_a_bad_config_value_is_refused(key: str, value: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    extra = ["model.encoder=conv", "model.decoder=conv"] if key == "model.conv.channels" else []
    _fails(["train", "--steps", "1", "--no-progress", "--set", "train.figures=false", *extra,
            f"{key}={value}", "--out", str(out)], capsys)
    assert not out.exists()


FILE_CASES = {
    "deep.json": '{"model": ' * 100_000 + "{}" + "}" * 100_000,
    "deep-list.json": '{"model": {"mlp": {"hidden": ' + DEEP + "}}}",
    "huge-int.json": '{"model": {"latent_dim": ' + HUGE + "}}",
    "huge-float.json": '{"train": {"lr": 1e999}}',
    "nan.json": '{"train": {"lr": NaN}}',
    "list.json": "[1, 2, 3]",
    "string.json": '"vae"',
    "preset-unknown.toml": 'preset = "nope"\n',
    "preset-number.toml": "preset = 3\n",
    "preset-table.toml": "[preset]\nname = 'vae'\n",
    "section-scalar.toml": "model = 3\n",
    "key-table.toml": "[model.latent_dim]\nx = 1\n",
    "unknown-section.toml": "[optim]\nlr = 1\n",
    "unknown-key.toml": "[model]\nlatnt_dim = 2\n",
    "bad-syntax.toml": "[model\nlatent_dim = 2\n",
    "binary.toml": "\x00\x01\x02",
    "float-int.toml": "[model]\nlatent_dim = 2.5\n",
    "negative.toml": "[beta]\nvalue = -1.0\n",
    "hidden-float.toml": "[model.mlp]\nhidden = [1.5]\n",
    "flat-layout.toml": "[model]\nhidden = [32]\n",  # moved to model.mlp.hidden
    "bool-int.toml": "[train]\nepochs = true\n",
    "nested-deep.toml": "a = " + "[" * 5000 + "]" * 5000 + "\n",
    "empty-name.txt": "",
}


@pytest.mark.parametrize("name", FILE_CASES)
def test_a_bad_config_file_is_refused(name: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / name
    path.write_text(FILE_CASES[name])
    out = tmp_path / "run"
    _fails(["train", "--config", str(path), "--steps", "1", "--no-progress", "--out", str(out)],
           capsys)
    assert not out.exists()


def test_a_config_files_preset_is_the_preset(tmp_path: Path, capsys) -> None:
    """A config file's preset selects the preset, as --preset does (or is refused)."""
    path = tmp_path / "vq.toml"
    path.write_text('preset = "vq-vae"\n[train]\nsteps = 2\nfigures = false\nprogress = false\n'
                    '[model]\nlatent_dim = 32\n[model.mlp]\nhidden = [32]\n[model.vq]\n'
                    'code_dim = 8\ncodebook_size = 16\n')
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["preset"] == "vq-vae" and saved["model"]["bottleneck"] == "vq"
    assert saved["model"]["prior"] == "codes" and saved["model"]["vq"]["code_dim"] == 8
    capsys.readouterr()
    _fails(["train", "--preset", "vae", "--config", str(path), "--out", str(tmp_path / "r2")],
           capsys)
    assert not (tmp_path / "r2").exists()


def _npy(tmp: Path, name: str, array: np.ndarray) -> Path:
    path = tmp / name
    np.save(path, array, allow_pickle=True)
    return path


def _data_cases() -> dict[str, object]:
    rng = np.random.default_rng(0)
    nan = rng.random((60, 5)).astype(np.float32)
    nan[4, 1] = np.nan
    inf = rng.random((60, 5))
    inf[0, 0] = np.inf
    return {
        "empty-features.npy": np.zeros((100, 0), np.float32),
        "no-samples.npy": np.zeros((0, 784), np.float32),
        "one-sample.npy": np.zeros((1, 5), np.float32),
        "scalar.npy": np.float32(3.0),
        "flat.npy": np.arange(10.0),
        "five-d.npy": np.zeros((4, 2, 2, 2, 2), np.float32),
        "nan.npy": nan,
        "inf.npy": inf,
        "strings.npy": np.array([["a", "b"], ["c", "d"]] * 20),
        "objects.npy": np.array([[object(), 1]] * 20, dtype=object),
        "complex.npy": (rng.random((30, 4)) + 1j).astype(np.complex64),
        "empty-images.npy": np.zeros((50, 0, 8), np.float32),
        "bytes.npy": b"raw",
        "truncated.npy": None,
        "not-numpy.npy": None,
        "empty.npz": {},
        "labels-only.npz": {"y": np.arange(10)},
        "two-data.npz": {"a": np.zeros((10, 3)), "b": np.zeros((10, 3))},
        "bad-labels.npz": {"x": rng.random((20, 4)), "y": np.arange(7)},
        "float-labels.npz": {"x": rng.random((20, 4)), "y": rng.random(20)},
        "garbage.npz": None,
        "folder.npy": "dir",
        "missing.npy": "missing",
        "wrong-suffix.csv": "csv",
    }


DATA_CASES = _data_cases()


def _write_data(tmp: Path, name: str, value: object) -> Path:
    path = tmp / name
    if isinstance(value, dict):
        np.savez(path, **value)
    elif value is None:
        good = tmp / "good.npy"
        np.save(good, np.zeros((20, 4), np.float32))
        raw = good.read_bytes()
        path.write_bytes(raw[:60] if name.startswith("truncated") else b"PK\x03\x04 no zip"
                         if name.endswith(".npz") else b"hello, not numpy")
    elif isinstance(value, str):
        if value == "dir":
            path.mkdir()
        elif value == "csv":
            path.write_text("1,2,3\n")
    else:
        np.save(path, value, allow_pickle=True)
    return path


@pytest.mark.parametrize("name", DATA_CASES)
def test_a_bad_data_file_is_refused(name: str, tmp_path: Path, capsys) -> None:
    path = _write_data(tmp_path, name, DATA_CASES[name])
    out = tmp_path / "run"
    _fails(["train", "--data", "arrays", "--set", f"data.path={path}", "model.likelihood="
            "gaussian", "--steps", "1", "--no-progress", "--out", str(out)], capsys)
    assert not out.exists()


def _damage(run: Path, how: str) -> None:
    cfg, weights = run / "config.json", run / "model.safetensors"
    state, metrics = run / "checkpoint" / "state.pt", run / "metrics.json"
    if how.startswith("config:"):
        cfg.write_text(how.split(":", 1)[1])
    elif how == "weights:truncated":
        weights.write_bytes(weights.read_bytes()[:500])
    elif how == "weights:empty":
        weights.write_bytes(b"")
    elif how == "weights:missing":
        weights.unlink()
    elif how == "weights:folder":
        weights.unlink()
        weights.mkdir()
    elif how == "weights:header":
        weights.write_bytes((2**60).to_bytes(8, "little") + b"{}")
    elif how == "legacy":  # the layout before checkpoint/: state.pt beside the weights
        shutil.move(run / "checkpoint" / "state.pt", run / "state.pt")
        shutil.rmtree(run / "checkpoint")
    elif how.startswith("metrics:"):
        metrics.write_text(how.split(":", 1)[1])
    elif how.startswith("state:"):
        import torch

        kind = how.split(":", 1)[1]
        if kind == "garbage":
            state.write_bytes(b"\x80\x04garbage")
        else:
            torch.save(json.loads(kind), state)


RUN_DAMAGE = [
    "config:{not json", "config:[]", "config:null", '"config:"vae"',
    'config:{"model": {"latent_dim": "two"}}', 'config:{"model": {"latent_dim": -4}}',
    'config:{"kind": "diffusers-vae"}', 'config:{"train": {"lr": 1e999}}',
    "config:" + '{"model": ' * 50_000 + "{}" + "}" * 50_000,
    'config:{"model": {"mlp": {"hidden": [1.5]}}}', 'config:{"model": {"latent_dim": ' + HUGE + "}}",
    "weights:truncated", "weights:empty", "weights:missing", "weights:folder", "weights:header",
    'metrics:{"step": "ten"}', "metrics:[]", 'metrics:{"step": 1, "epochs": 1, '
    '"train_time_s": 1, "test": []}', "metrics:{", 'metrics:{"step": 1, "epochs": 1, '
    '"train_time_s": "slow", "test": {}}',
]
RUN_COMMANDS = {
    "info": lambda run, tmp: ["info", str(run)],
    "eval": lambda run, tmp: ["eval", str(run), "--no-images", "--k", "0"],
    "sample": lambda run, tmp: ["sample", str(run), "-n", "4", "-o", str(tmp / "s.png")],
    "reconstruct": lambda run, tmp: ["reconstruct", str(run), "-n", "4", "-o",
                                     str(tmp / "r.png")],
}
RESUME_DAMAGE = ["legacy", "state:garbage", 'state:{"step": "x"}', 'state:{}', "state:[1, 2]",
                 'state:{"step": 3, "optimizer": {}, "window": {}, "elapsed_s": 1.0}',
                 "config:{not json", 'config:{"train": {"seed": -1}}', "weights:missing"]
RUN_CASES = [(d, c) for d in RUN_DAMAGE for c in RUN_COMMANDS
             if not (d.startswith("metrics:") and c != "info")] \
    + [(d, "resume") for d in RESUME_DAMAGE]


@pytest.mark.parametrize("damage, command", RUN_CASES,
                         ids=[f"{c}-{d[:30]}" for d, c in RUN_CASES])
def test_a_damaged_run_folder_is_refused(damage: str, command: str, trained: Path,
                                         tmp_path: Path, capsys) -> None:
    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    _damage(run, damage.lstrip('"'))
    before = _snapshot(run)
    argv = ["train", "--resume", str(run), "--no-progress"] if command == "resume" \
        else RUN_COMMANDS[command](run, tmp_path)
    if command == "resume" and damage == "weights:missing":
        (run / "checkpoint" / "model.safetensors").unlink()
        before = _snapshot(run)
    _fails(argv, capsys)
    assert _snapshot(run) == before
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "r.png").exists()


def _arg_cases() -> list[list[str]]:
    seed = "1" * 24
    cases = [["train", "--seed", seed], ["train", "--seed", "-1"], ["train", "--seed", "x"],
             ["train", "--steps", "zero"], ["train", "--epochs", "0"], ["train", "--steps", "-1"],
             ["train", "--preset", "nope"], ["train", "--device", "tpu"], ["train", "--bogus"],
             ["train", "--set", "novalue"], ["train", "--set", "=3"],
             ["train", "--config", "/no/such/file.toml"], ["train", "--resume", "/no/such/run"],
             ["train", "--out", "{file}"], ["train", "--out", "{run}"],
             ["train", "--resume", "{run}", "--preset", "ae"],
             ["train", "--set", "model.latent_dim=100000000"]]  # 200 GB of weights
    for cmd in ("eval", "sample", "reconstruct", "info", "export"):
        cases += [[cmd, "{run}", "--seed", seed], [cmd, "{run}", "--device", "tpu"],
                  [cmd, "/no/such/run"], [cmd, "{file}"]]
    cases += [["sample", "{run}", "-n", "0"], ["sample", "{run}", "-n", "-5"],
              ["sample", "{run}", "-o", "{tmp}/x.txt"], ["sample", "{run}", "-o", "{tmp}"],
              ["sample", "{run}", "-o", "{run}/model.safetensors"],
              ["sample", "{run}", "-o", "{run}/config.json"],
              ["reconstruct", "{run}", "-n", "0"], ["reconstruct", "{run}", "-o", "{tmp}/r.jpg"],
              ["reconstruct", "{run}", "-o", "{run}/metrics.json"],
              ["eval", "{run}", "--k", "-1"], ["eval", "{run}", "--fid-samples", "1"],
              ["export", "{run}", "--out", "{run}"], ["export", "{run}", "--out", "{tmp}/.."],
              ["export", "{run}", "--out", "."], ["export", "{run}", "--out", "{file}"],
              ["export", "{run}", "--out", "{tmp}"],
              ["nosuchcommand"], []]
    return cases


ARG_CASES = _arg_cases()


@pytest.mark.parametrize("argv", ARG_CASES, ids=[" ".join(a)[:40] for a in ARG_CASES])
def test_a_bad_argument_is_refused(argv: list[str], trained: Path, tmp_path: Path,
                                   capsys) -> None:
    file = tmp_path / "file.txt"
    file.write_text("a user's file\n")
    before = _snapshot(trained)
    argv = [a.format(run=trained, tmp=tmp_path, file=file) for a in argv]
    _fails(argv, capsys)
    assert _snapshot(trained) == before
    assert file.read_text() == "a user's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_closed_pipe_ends_quietly(trained: Path) -> None:
    """`xae info RUN | true`: the reader leaves before reading; no BrokenPipeError traceback."""
    cmd = f"{sys.executable} -m xae info {trained} | true; echo $" + "{PIPESTATUS[0]}"
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120,
                       env={**SUBPROCESS_ENV, "PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert p.stdout.strip() in ("0", "141") and p.stderr == "", p.stderr


@pytest.mark.parametrize("key, hint", [
    ("model.latnt_dim", "model.latent_dim"), ("latent_dim", "model.latent_dim"),
    ("train.learning_rate", None), ("model.flux_capacitor", None), ("zzz", None),
    ("train.epoch", "train.epochs"),
])
def test_an_unknown_key_suggests_only_a_close_match(key: str, hint: str | None, tmp_path: Path,
                                                    capsys) -> None:
    err = _fails(["train", "--set", f"{key}=1", "--out", str(tmp_path / "r")], capsys)
    if hint is None:
        assert "did you mean" not in err, err
    else:
        assert f"did you mean '{hint}'?" in err, err
