"""Run folders: ``config.json``, the weights ``model.safetensors`` (what :func:`load` reads),
and ``checkpoint/`` (weights + ``state.pt``: optimizer, step, RNG), the unit a resume reads.

``checkpoint/`` is written whole into a temporary folder and swapped in by renames
(:func:`xae.fileio.atomic_dir`); :func:`recover` undoes a swap a kill cut in half, so a
resume always finds weights and state of the same step. ``model.safetensors`` is then a hard
link to the checkpoint's weights. No pickle: weights are safetensors; the state is a
``torch.save`` of tensors and plain containers, read back with ``weights_only=True``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from xae.config import Config
from xae.config_legacy import from_saved
from xae.data.split import is_finite_number
from xae.errors import XaeError
from xae.fileio import atomic_dir, atomic_path, save_safetensors, write_text
from xae.model import Autoencoder

from xae.runfiles import BEST, CHECKPOINT, CONFIG, FIGURES, METRICS, STATE, WEIGHTS


def save_config(run_dir: Path, cfg: Config) -> None:
    write_text(Path(run_dir) / CONFIG, cfg.to_json() + "\n")


def save(run_dir: Path, model: Autoencoder, state: dict[str, Any]) -> None:
    """Replace ``checkpoint/`` whole (weights and state together), then point
    ``model.safetensors`` at its weights."""
    run_dir = Path(run_dir)
    with atomic_dir(run_dir / CHECKPOINT) as tmp:
        save_safetensors(model, tmp / WEIGHTS, {"format": "xae"})
        torch.save(state, tmp / STATE)
    _publish(run_dir)


def save_best(run_dir: Path, model: Autoencoder, step: int, loss: float) -> None:
    """The weights with the lowest held-out loss so far, as ``best.safetensors``."""
    save_safetensors(model, Path(run_dir) / BEST,
                     {"format": "xae", "step": str(step), "held_out_loss": repr(loss)})


def _publish(run_dir: Path) -> None:
    """Make ``model.safetensors`` the checkpoint's weights (a hard link, swapped in by one
    rename; a copy where the file system has no links)."""
    src = run_dir / CHECKPOINT / WEIGHTS
    with atomic_path(run_dir / WEIGHTS) as tmp:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / CHECKPOINT / STATE).is_file()


# what xae.fileio's atomic writes leave behind when killed: ".NAME.<random>.tmp" (a file or a
# folder being written) and ".NAME.<random>.old" (a folder being replaced)
LEFTOVER = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.(tmp|old)$")


def leftovers(folder: Path) -> list[Path]:
    """The temporary files and folders of interrupted atomic writes in ``folder``."""
    return sorted(p for p in folder.iterdir() if LEFTOVER.match(p.name)) \
        if folder.is_dir() else []


def recover(run_dir: str | Path) -> list[str]:
    """Tidy a run folder after a kill: put back a checkpoint whose swap was cut between its
    two renames, remove the temporary files and folders of interrupted writes, and make
    ``model.safetensors`` the checkpoint's weights again. Returns what was removed."""
    run_dir = Path(run_dir)
    olds = sorted(run_dir.glob(f".{CHECKPOINT}.*.old"), key=lambda p: p.stat().st_mtime)
    if not (run_dir / CHECKPOINT).exists() and olds:
        os.replace(olds[-1], run_dir / CHECKPOINT)  # the swap's first rename had happened
    removed = leftovers(run_dir) + leftovers(run_dir / FIGURES)
    for p in removed:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    if has_checkpoint(run_dir) and (run_dir / CHECKPOINT / WEIGHTS).is_file():
        _publish(run_dir)
    return [p.name for p in removed]


def read_config(run_dir: str | Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise XaeError(f"'{run_dir}' is not a folder; pass a run folder written by `xae train`")
    path = run_dir / CONFIG
    if not path.is_file():
        raise XaeError(f"'{run_dir}' is not an xae run folder (no {CONFIG}); pass the folder "
                       f"that `xae train` wrote")
    try:
        return from_saved(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise XaeError(f"{path} is corrupt ({e}); restore it or retrain the run") from None
    except RecursionError:
        raise XaeError(f"{path} is nested too deeply to be an xae config; restore it or "
                       f"retrain the run") from None
    except XaeError as e:
        raise XaeError(f"{path} is not an xae config: {e}") from None


def load_weights(model: Autoencoder, run_dir: Path, device: str | torch.device) -> None:
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        raise XaeError(f"'{run_dir}' has no {WEIGHTS}; the run has not written a checkpoint yet")
    load_module(model, path, device, f"retrain or restore it from a backup (the weights must "
                                     f"belong to the model in {CONFIG})")


def load_module(module: torch.nn.Module, path: Path, device: str | torch.device,
                fix: str) -> None:
    """Load a safetensors file into ``module``, checking that its names and shapes match;
    errors end with ``fix``, what to do about it."""
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise XaeError(f"{path} is corrupt or not a safetensors file ({e}); {fix}") from None
    expected = module.state_dict()
    missing, unexpected = set(expected) - set(tensors), set(tensors) - set(expected)
    if missing or unexpected:
        raise XaeError(f"{path} does not match the module it is loaded into (missing "
                       f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}); {fix}")
    shapes = [k for k, v in expected.items() if v.shape != tensors[k].shape]
    if shapes:
        raise XaeError(f"{path} does not match the module it is loaded into: wrong shape for "
                       f"{shapes[:3]}; {fix}")
    module.load_state_dict(tensors)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """Rebuild the model of a run folder from its config and weights (no pickle), in eval mode.
    A discrete model whose code prior was fitted (``xae prior fit``) samples from it."""
    from xae.registry import build

    cfg = read_config(run_dir)
    model = build(cfg).to(device)
    load_weights(model, Path(run_dir), device)
    model.prior.on_load(Path(run_dir))
    return model.eval()


def load_state(run_dir: str | Path) -> dict[str, Any]:
    """The checkpoint's optimizer/step/RNG state, read with ``weights_only=True`` and checked
    for the entries a resume needs."""
    path = Path(run_dir) / CHECKPOINT / STATE
    if not path.is_file():
        raise XaeError(f"'{run_dir}' has no checkpoint ({CHECKPOINT}/{STATE}) to resume from; "
                       f"start a new run instead")
    try:
        with warnings.catch_warnings():  # a damaged file may warn before it fails
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad file
        raise XaeError(f"{path} is corrupt or not an xae state file ({type(e).__name__}); "
                       f"delete the run folder and retrain") from None
    if not _state_ok(state):
        raise XaeError(f"{path} is not an xae training state (missing or wrong entries); "
                       f"delete the run folder and retrain")
    return state


def _state_ok(state: Any) -> bool:
    if not isinstance(state, dict):
        return False
    kinds = {"step": int, "rng_cpu": torch.Tensor, "window": dict, "elapsed_s": float}
    if any(not isinstance(state.get(k), t) or isinstance(state.get(k), bool)
           for k, t in kinds.items()):
        return False
    opts = state.get("optimizers") or {"model": state.get("optimizer")}  # or the old layout
    w = state["window"]
    sums = w.get("sums", {k: w.get(k) for k in ("loss", "distortion", "rate")})
    return (state["step"] >= 0 and isinstance(opts, dict) and bool(opts)
            and all(isinstance(o, dict) and isinstance(o.get("state"), dict)
                    and isinstance(o.get("param_groups"), list) for o in opts.values())
            and isinstance(w.get("n"), int) and isinstance(sums, dict)
            and all(isinstance(v, (int, float)) for v in sums.values()))


def read_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """A finished run's ``metrics.json`` (None while it is training), checked for the
    entries the commands show."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise XaeError(f"{path} cannot be read ({type(e).__name__}); delete it and run "
                       f"`xae eval` on the run, or retrain") from None
    number = is_finite_number
    ok = (isinstance(m, dict) and isinstance(m.get("step"), int) and number(m.get("epochs"))
          and number(m.get("train_time_s")) and isinstance(m.get("test"), dict)
          and all(isinstance(k, str) and (number(v) or v is None or isinstance(v, str))
                  for k, v in m["test"].items()))
    if not ok:
        raise XaeError(f"{path} is not an xae metrics file (missing or wrong entries); delete "
                       f"it and retrain the run")
    return m
