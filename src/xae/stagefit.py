"""The fit of a second stage: a small module fitted to one tensor of encoded training data
(a prior over a trained autoencoder's codes), with what ``xae train`` has: a progress bar,
atomic checkpoints, an exact resume and DDP under ``torchrun``.

The module's ``forward(batch, generator, part)`` returns the loss of each row of
``batch[part]`` (B',): it draws the step's randomness for the whole batch from ``generator``
and computes on its rows only, so that P processes that split a batch (rows ``rank::P``
would interleave; ``part`` is a contiguous slice) compute what one process would. Every
random number of a step comes from (seed, step): the batch from a permutation per epoch,
the module's draws from a generator seeded with (seed, step). A resume from a checkpoint
therefore repeats the uninterrupted fit exactly, with no random state to save.

The checkpoint folder holds ``model.safetensors`` (the module), ``state.pt`` (the optimizer,
the step, the loss curve; tensors and plain containers, read with ``weights_only=True``) and
``fit.json`` (what the caller needs to rebuild the module), replaced whole by
:func:`xae.fileio.atomic_dir`.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from xae.errors import XaeError
from xae.fileio import atomic_dir, save_safetensors, write_json
from xae.runfiles import STATE, WEIGHTS
from xae.train import distributed as dist_

FIT_META = "fit.json"
LR_FLOOR = 0.01  # the cosine decay of the learning rate ends at lr · LR_FLOOR


@dataclass
class FitSpec:
    """How to fit: ``steps`` Adam updates on batches of ``batch_size`` rows at a learning rate
    decaying from ``lr`` to lr·LR_FLOOR on a cosine (Loshchilov & Hutter 2017), gradients
    clipped to norm 1; a checkpoint every ``checkpoint_every`` steps; ``log_points`` points
    of the loss curve; ``desc`` labels the progress bar."""

    steps: int
    batch_size: int
    lr: float
    seed: int
    checkpoint_every: int
    progress: bool = False
    desc: str = "fit"
    log_points: int = 20


@dataclass
class FitResult:
    steps: int
    curve: list[list[float]] = field(default_factory=list)  # [step, mean loss of the window]
    time_s: float = 0.0


def training_inputs(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and test inputs of a run's data, as its encoder saw them in training
    (one fixed Bernoulli draw of the training set under dynamic binarization)."""
    from xae.data import binarize, load as load_data

    data = load_data(model.config.data)
    train_x = data.train_x
    if data.info.get("binarize") == "dynamic":  # the encoder saw Bernoulli draws, not grays
        train_x = binarize(train_x, torch.Generator().manual_seed(model.config.data.seed + 1))
    return train_x, data.test_x


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of step ``step``'s draws."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)


def read_meta(folder: Path, fix: str) -> dict[str, Any]:
    """A checkpoint folder's ``fit.json``, an XaeError ending in ``fix`` if it is unreadable."""
    path = folder / FIT_META
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise XaeError(f"{path} cannot be read ({type(e).__name__}); {fix}") from None
    if not isinstance(meta, dict):
        raise XaeError(f"{path} is not a fit's record (a JSON object); {fix}")
    return meta


def fit_tensor(module: nn.Module, data: torch.Tensor, spec: FitSpec, folder: Path, *,
               meta: dict[str, Any], resume: bool, info: dist_.DistInfo,
               log: Callable[[str], None]) -> FitResult:
    """Fit ``module`` (on its device) to the rows of ``data``; see the module's text.

    ``folder`` is the checkpoint folder, written by the main process with ``meta`` as its
    ``fit.json``; ``resume`` continues from it. ``log`` gets a line at each checkpoint.
    Returns the steps taken, the loss curve and the fitting time (with the time before a
    resume).
    """
    device = next(module.parameters()).device
    data = data.to(device)
    n = len(data)
    batch = min(spec.batch_size, n)
    if batch % info.world:
        raise XaeError(f"the batch size {batch} must divide evenly over {info.world} processes")
    per_rank = batch // info.world
    part = slice(info.rank * per_rank, (info.rank + 1) * per_rank)
    per_epoch = max(n // batch, 1)
    opt = torch.optim.Adam(module.parameters(), lr=spec.lr)
    step, curve, elapsed, window = 0, [], 0.0, [0.0, 0]
    if resume:
        step, curve, elapsed, window = _restore(module, opt, folder, device)
    net = DDP(module) if info.active else module
    bar = tqdm(total=spec.steps, initial=step, unit="step", dynamic_ncols=True,
               disable=not (spec.progress and info.main), desc=spec.desc)
    log_every = max(1, spec.steps // spec.log_points)
    t0, perm_epoch, perm = time.perf_counter() - elapsed, -1, None
    module.train()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64) + window[0]
    while step < spec.steps:
        epoch = step // per_epoch
        if epoch != perm_epoch:
            g = torch.Generator().manual_seed(spec.seed * 1_000_003 + epoch)
            perm_epoch, perm = epoch, torch.randperm(n, generator=g).to(device)
        i = step % per_epoch
        x = data[perm[i * batch:(i + 1) * batch]]
        for group in opt.param_groups:
            group["lr"] = spec.lr * _decay(step, spec.steps)
        loss = net(x, step_generator(spec.seed, step, device), part).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        if not (torch.isfinite(loss) and torch.isfinite(gnorm)):
            raise XaeError(f"the fit diverged at step {step + 1} (the loss or its gradient "
                           f"became NaN or Inf); lower --lr")
        opt.step()
        step += 1
        loss_sum += loss.detach()
        window[1] += 1
        bar.update(1)
        if step % log_every == 0 or step == spec.steps:
            mean = _all_mean(loss_sum, info) / window[1]
            curve.append([step, mean])
            bar.set_postfix({"loss": f"{mean:.4g}"}, refresh=False)
            loss_sum.zero_()
            window[1] = 0
        if step % spec.checkpoint_every == 0 and step < spec.steps:
            state = {"step": step, "optimizer": opt.state_dict(),
                     "curve": torch.tensor(curve, dtype=torch.float64).reshape(-1, 2),
                     "elapsed_s": time.perf_counter() - t0,
                     "window": torch.tensor([float(loss_sum), float(window[1])],
                                            dtype=torch.float64)}
            if info.main:
                with atomic_dir(folder) as tmp:
                    save_safetensors(module, tmp / WEIGHTS, {"format": "xae-fit-checkpoint"})
                    torch.save(state, tmp / STATE)
                    write_json(tmp / FIT_META, meta)
                log(f"checkpoint at step {step} of {spec.steps} in {folder}")
            dist_.barrier(info)
    bar.close()
    module.eval()
    return FitResult(step, curve, time.perf_counter() - t0)


def _decay(step: int, total: int) -> float:
    """The cosine from 1 to LR_FLOOR over ``total`` steps."""
    return LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * step / total))


def _all_mean(loss_sum: torch.Tensor, info: dist_.DistInfo) -> float:
    """The window's summed loss averaged over the processes (each computed its rows' mean)."""
    if info.active:
        t = loss_sum.clone()
        torch.distributed.all_reduce(t)
        return float(t) / info.world
    return float(loss_sum)


def _restore(module: nn.Module, opt: torch.optim.Optimizer, folder: Path,
             device: torch.device) -> tuple[int, list, float, list]:
    from xae.train.checkpoint import load_module

    fix = f"delete {folder} and fit again"
    load_module(module, folder / WEIGHTS, device, fix)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(folder / STATE, map_location=device, weights_only=True)
        opt.load_state_dict(state["optimizer"])
        step, curve = int(state["step"]), state["curve"].tolist()
        elapsed, (s, k) = float(state["elapsed_s"]), state["window"].tolist()
    except Exception as e:  # torch raises several types for a bad file
        raise XaeError(f"{folder / STATE} is corrupt or not a fit's state "
                       f"({type(e).__name__}); {fix}") from None
    return step, curve, elapsed, [s, int(k)]
