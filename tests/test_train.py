"""Training: resume equals the uninterrupted run, divergence stops cleanly, DDP matches one process."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SUBPROCESS_ENV, run_xae, torchrun_xae
from safetensors.torch import load_file

import xae
from xae.config import apply
from xae.train.checkpoint import read_config


def _losses(run: Path, log: str = "metrics.jsonl") -> list[tuple[int, float, float, float]]:
    """The training log's lines, or (log="held_out.jsonl") the held-out evaluations."""
    rows = [json.loads(x) for x in (run / log).read_text().splitlines()]
    return [(r["step"], r["loss"], r["distortion"], r["rate"]) for r in rows]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _cfg(steps: int, preset: str = "vae", **extra: object) -> xae.Config:
    cfg = xae.preset(preset, latent_dim=4, steps=steps, **{"model.mlp.hidden": [64]})
    return apply(cfg, {"train.log_every": 5, "train.checkpoint_every": 10,
                       "train.progress": False, "train.figures": False,
                       "data.binarize": "dynamic", **extra})


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    full = xae.train(_cfg(40), tmp_path / "full")
    part = xae.train(_cfg(20), tmp_path / "part")  # ends at step 20 with a checkpoint
    resumed = xae.train(apply(read_config(part), {"train.steps": 40}), part, resume=True)
    assert _losses(resumed) == _losses(full)
    assert _same_weights(resumed, full)


def _start(out: Path, steps: int) -> subprocess.Popen:
    args = ["train", "--preset", "vae", "--steps", str(steps), "--no-progress", "--set",
            "model.mlp.hidden=[64]", "model.latent_dim=4", "train.log_every=50",
            "train.checkpoint_every=50", "train.figures=false", "--out", str(out)]
    env = {**os.environ, **SUBPROCESS_ENV}
    return subprocess.Popen([sys.executable, "-m", "xae", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_resume_after_kill_equals_uninterrupted(tmp_path: Path) -> None:
    steps = 1000
    killed = tmp_path / "killed"
    proc = _start(killed, steps)
    deadline = time.time() + 120
    while not (killed / "checkpoint" / "state.pt").exists() and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # at an arbitrary moment after the first checkpoint
    proc.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it was killed"
    p = run_xae("train", "--resume", str(killed), "--no-progress")
    assert p.returncode == 0, p.stderr
    full = tmp_path / "full"
    assert _start(full, steps).wait() == 0
    assert _losses(killed) == _losses(full)
    assert _same_weights(killed, full)


def test_divergence_names_step_and_term_and_keeps_checkpoint(tmp_path: Path) -> None:
    run = xae.train(_cfg(10, **{"model.likelihood": "gaussian"}), tmp_path / "run")
    before = {str(p.relative_to(run)): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    bad = apply(read_config(run), {"train.steps": 30, "train.lr": 1e12, "train.grad_clip": 0})
    with pytest.raises(xae.XaeError, match=r"diverged at step 1[1-9].*NaN or Inf") as e:
        xae.train(bad, run, resume=True)
    assert "checkpoint (step 10)" in str(e.value)
    assert any(t in str(e.value) for t in ("distortion", "rate", "gradient"))
    for name in ("model.safetensors", "checkpoint/state.pt", "config.json"):
        assert (run / name).read_bytes() == before[name]


def test_divergence_before_first_checkpoint_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = run_xae("train", "--steps", "30", "--no-progress", "--set", "train.lr=1e12",
                "train.grad_clip=0", "train.checkpoint_every=25", "--out", str(out))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "diverged at step" in p.stderr and not out.exists()


# the EMA codebook of VQ sums its statistics over processes, so it too matches one process
# (k-means initialisation and restarts seed from rank 0's vectors, so they are off here)
DDP_CASES = {"ae": ("ae", []), "vq-vae-ema": ("vq-vae-ema", [
    "model.latent_dim=8", "model.vq.code_dim=4", "model.vq.codebook_size=16",
    "model.vq.kmeans_init=false", "model.vq.restart_every=0"]),
    # each rank takes its samples' labels with them (a covariate beside z)
    "ae-label": ("ae", ["model.covariate=label"])}


@pytest.mark.parametrize("case", DDP_CASES)
def test_ddp_two_processes_match_one(tmp_path: Path, case: str) -> None:
    """Two gloo processes, each with half of every batch, take the same steps as one process."""
    preset, keys = DDP_CASES[case]
    common = ["--preset", preset, "--steps", "6", "--no-progress", "--set", "model.mlp.hidden=[64]",
              "train.log_every=1", "train.figures=false", *keys]
    code, out, err = torchrun_xae("train", *common, "--out", str(tmp_path / "ddp"))
    assert code == 0, err
    assert out.count("run written to") == 1, out  # rank 0 alone prints the result
    single = run_xae("train", *common, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "one")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
    la, lb = _losses(tmp_path / "ddp"), _losses(tmp_path / "one")
    assert [r[0] for r in la] == [r[0] for r in lb] == list(range(1, 7))
    for ra, rb in zip(la, lb):  # logged losses are the global-batch means
        assert ra[1] == pytest.approx(rb[1], rel=1e-4)
    # rank 0 alone wrote: one log line per step, no stray temporary files
    assert not [p for p in (tmp_path / "ddp").iterdir() if p.name.endswith(".tmp")]


def test_learning_rate_follows_its_schedule(tmp_path: Path) -> None:
    cfg = _cfg(20, **{"train.lr": 2e-3, "train.lr_schedule.kind": "cosine",
                      "train.lr_schedule.start": 1.0, "train.lr_schedule.value": 0.0,
                      "train.lr_schedule.warmup": 20})
    run = xae.train(cfg, tmp_path / "run")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:  # logged at the end of a window: the lr of its last step, r["step"] − 1
        t = (r["step"] - 1) / 20
        assert r["lr"] == pytest.approx(2e-3 * (1 + math.cos(math.pi * t)) / 2)


def test_resume_before_the_first_checkpoint_starts_over(tmp_path: Path, caplog) -> None:
    """A run killed before its first checkpoint holds its config and maybe a log: --resume
    starts it over with that config, says so, and ends where an uninterrupted run ends."""
    full = xae.train(_cfg(20), tmp_path / "full")
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(full / "config.json", early / "config.json")
    (early / "metrics.jsonl").write_text('{"step": 5, "loss": 1.0}\n{"step": 10, "lo')
    (early / ".model.safetensors.abc123xy.tmp").write_bytes(b"half a file")
    from xae.cli import main

    with caplog.at_level("WARNING"):
        assert main(["train", "--resume", str(early), "--no-progress"]) == 0
    assert "before its first checkpoint" in caplog.text and "starting it over" in caplog.text
    assert _losses(early) == _losses(full)
    assert _same_weights(early, full)
    assert not [p.name for p in early.iterdir() if p.name.startswith(".")]


def test_held_out_samples_of_a_dynamically_binarized_run_are_binary(tmp_path):
    """The model is trained on Bernoulli draws of the pixels, so its held-out evaluations are
    on one fixed draw too (as the test set is), not on the grey values."""
    from xae.data import load as load_data
    from xae.train.loop import Trainer
    cfg = xae.preset("vae", **{"data.binarize": "dynamic", "train.eval_every": 10})
    data = load_data(cfg.data)
    held = Trainer(cfg, tmp_path / "run", data, resume=False).held_out
    again = Trainer(cfg, tmp_path / "run2", data, resume=False).held_out
    assert set(held.unique().tolist()) == {0.0, 1.0} and torch.equal(held, again)
    grey = Trainer(apply(cfg, {"data.binarize": "none"}), tmp_path / "run3", data,
                   resume=False).held_out
    assert len(grey.unique()) > 2
