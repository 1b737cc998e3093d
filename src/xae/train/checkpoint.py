"""Run-folder checkpoints: ``config.json`` + ``model.safetensors`` + ``state.pt``, no pickle.

Weights are safetensors; the optimizer, step and RNG state are a ``torch.save`` of tensors
and plain containers, read back with ``weights_only=True`` so a checkpoint can never run code.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from xae.config import Config, from_dict
from xae.errors import XaeError
from xae.fileio import atomic_path, write_text
from xae.model import Autoencoder

CONFIG, WEIGHTS, STATE = "config.json", "model.safetensors", "state.pt"


def save_config(run_dir: Path, cfg: Config) -> None:
    write_text(Path(run_dir) / CONFIG, cfg.to_json() + "\n")


def save(run_dir: Path, model: Autoencoder, state: dict[str, Any]) -> None:
    """Write weights then state, each atomically (state last: it marks the checkpoint done)."""
    run_dir = Path(run_dir)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "xae"})
    with atomic_path(run_dir / STATE) as tmp:
        torch.save(state, tmp)


def read_config(run_dir: str | Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise XaeError(f"'{run_dir}' is not a folder; pass a run folder written by `xae train`")
    path = run_dir / CONFIG
    if not path.is_file():
        raise XaeError(f"'{run_dir}' is not an xae run folder (no {CONFIG}); pass the folder "
                       f"that `xae train` wrote")
    try:
        return from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise XaeError(f"{path} is corrupt ({e}); restore it or retrain the run") from None
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
    if model.discrete:
        from xae.codeprior import load_code_prior

        ar = load_code_prior(run_dir, device, model=model)
        if ar is not None:
            model.prior.attach(ar)
    return model.eval()


def load_state(run_dir: str | Path) -> dict[str, Any]:
    """The optimizer/step/RNG state, read with ``weights_only=True``."""
    path = Path(run_dir) / STATE
    if not path.is_file():
        raise XaeError(f"'{run_dir}' has no {STATE} to resume from; start a new run instead")
    try:
        with warnings.catch_warnings():  # a damaged file may warn before it fails
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad file
        raise XaeError(f"{path} is corrupt or not an xae state file ({type(e).__name__}); "
                       f"delete the run folder and retrain") from None
