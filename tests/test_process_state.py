"""The library leaves process-wide state alone (the CLI sets it), and does not change the
config it is handed."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

import xae


def _cfg(preset: str = "vae", **extra: object) -> xae.Config:
    return xae.preset(preset, **{"train.steps": 4, "train.progress": False,
                                 "train.figures": False, "train.eval_every": 0,
                                 "model.mlp.hidden": [16], **extra})


def test_training_leaves_threads_and_denormals_as_they_were(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_flush_denormal(False)
    try:
        xae.train(_cfg(), tmp_path / "run")
        assert torch.get_num_threads() == threads
        assert torch.tensor([1e-40], dtype=torch.float32).item() != 0.0  # not flushed
    finally:
        torch.set_flush_denormal(False)


def test_a_thread_count_the_process_does_not_run_is_an_error(tmp_path: Path) -> None:
    other = torch.get_num_threads() + 1
    with pytest.raises(xae.XaeError, match=rf"configure_cpu\({other}\)"):
        xae.train(_cfg(**{"train.threads": other}), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    xae.train(_cfg(**{"train.threads": torch.get_num_threads()}), tmp_path / "ok")


def test_configure_cpu_sets_both(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    try:
        xae.configure_cpu(1)
        assert torch.get_num_threads() == 1
        assert torch.tensor([1e-40], dtype=torch.float32).item() == 0.0
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)


def test_training_does_not_change_the_callers_config(tmp_path: Path) -> None:
    cfg = _cfg("beta-tcvae")
    before = copy.deepcopy(cfg)
    run = xae.train(cfg, tmp_path / "run")
    assert cfg == before and cfg.model.tc.dataset_size == 0
    saved = xae.load(run).config  # the run's own config records N and the data's shape
    assert saved.model.tc.dataset_size > 0 and saved.model.data_shape == [1, 8, 8]
