"""``xae prior fit``: learn an autoregressive prior over a trained discrete autoencoder's codes.

The second stage of van den Oord et al. (2017, sec. 3.2): encode the training set to index
grids with the frozen autoencoder, fit a :class:`~xae.codeprior.CodeTransformer` to them by
maximum likelihood (cross-entropy, Adam, cosine learning-rate decay; Loshchilov & Hutter 2017)
and report the test set's negative log-likelihood in bits per image beside the uniform prior's
T·log2 K. The prior is saved in the run folder as ``code_prior/`` (``config.json``,
``model.safetensors``, ``metrics.json``), written into a temporary folder and renamed, so a
failed or killed fit leaves the previous prior (or none), never half of one.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from xae.codeprior.transformer import CodePriorConfig, CodeTransformer
from xae.errors import XaeError
from xae.fileio import atomic_dir, save_safetensors, write_json
from xae.model import inference
from xae.runfiles import CODE_PRIOR, CONFIG, METRICS, WEIGHTS
from xae.stagefit import training_inputs
from xae.train.checkpoint import load_module
from xae.train.distributed import checked_device

logger = logging.getLogger("xae.codeprior")

LR_FLOOR = 0.01  # the cosine decay ends at lr · LR_FLOOR
NOT_DISCRETE = ("the code prior needs a run with a discrete bottleneck (vq, rvq, fsq, lfq, "
                "gumbel); '{run}' has model.bottleneck = '{name}', whose codes are continuous: "
                "`xae prior fit {run}` fits a diffusion prior to them "
                "(xae.diffprior.fit_diffusion_prior)")


def code_grid(model: torch.nn.Module) -> tuple[tuple[int, ...], int]:
    """The index grid of a discrete model, ((P,) or (P, S)), and its codebook size K."""
    q = model.bottleneck
    stages = int(q.stages)
    return ((q.positions, stages) if stages > 1 else (q.positions,)), int(q.codebook_size)


def encode_tokens(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The flattened index grids (N, T) long of data ``x``, encoded in eval mode, on the CPU."""
    out = []
    with inference(model) as device:
        for i in range(0, len(x), batch_size):
            idx = model.encode(x[i:i + batch_size].to(device)).indices
            out.append(idx.reshape(idx.shape[0], -1).long().cpu())
    return torch.cat(out)


def bits_per_image(ar: CodeTransformer, tokens: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean over sequences of −log2 p(tokens), in eval mode."""
    total = 0.0
    with inference(ar) as device:
        for i in range(0, len(tokens), batch_size):
            total += float(ar.log_prob(tokens[i:i + batch_size].to(device)).sum())
    return -total / len(tokens) / math.log(2)


def train_code_transformer(ar: CodeTransformer, tokens: torch.Tensor, *,
                           log: Callable[[str], None] | None = None) -> int:
    """Fit ``ar`` to sequences ``tokens`` (N, T) by cross-entropy with Adam and a cosine decay
    of the learning rate, as ``ar.config`` says (epochs, batch_size, lr, seed); returns the
    number of optimizer steps. The shuffling is seeded; the caller seeds the initialization."""
    from xae.config import ScheduleConfig
    from xae.schedules import value_at

    c, log = ar.config, log or logger.info
    ar.check_tokens(tokens)
    device = ar.head.weight.device
    data = tokens.long().to(device)
    per_epoch = math.ceil(len(data) / c.batch_size)
    decay = ScheduleConfig(kind="cosine", start=1.0, value=LR_FLOOR, warmup=c.epochs * per_epoch)
    opt = torch.optim.Adam(ar.parameters(), lr=c.lr)
    gen = torch.Generator().manual_seed(c.seed)
    ar.train()
    step = 0
    for epoch in range(c.epochs):
        order, total = torch.randperm(len(data), generator=gen).to(device), 0.0
        for i in range(0, len(data), c.batch_size):
            batch = data[order[i:i + c.batch_size]]
            for group in opt.param_groups:
                group["lr"] = c.lr * value_at(decay, step)
            logits = ar.logits_of_inputs(ar.shift(batch))
            loss = F.cross_entropy(logits.reshape(-1, c.vocab).float(), batch.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ar.parameters(), 1.0)
            opt.step()
            step += 1
            total = total + loss.detach() * len(batch)  # no device sync per step
        if epoch == 0 or (epoch + 1) % max(1, c.epochs // 10) == 0 or epoch + 1 == c.epochs:
            bits = float(total) / len(data) * c.length / math.log(2)
            log(f"epoch {epoch + 1}/{c.epochs}: train {bits:.2f} bits/image (running)")
    ar.eval()
    return step


def fit_code_prior(run_dir: str | Path, *, epochs: int = 20, batch_size: int = 128,
                   lr: float = 1e-3, layers: int = 2, dim: int = 128, heads: int = 4,
                   dropout: float = 0.0, seed: int = 0, device: str = "cpu",
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit a code prior to a discrete run's training codes and save it in ``RUN/code_prior/``.

    Parameters
    ----------
    run_dir : a run folder written by ``xae train`` with a discrete bottleneck.
    epochs, batch_size, lr, layers, dim, heads, dropout, seed : see :class:`CodePriorConfig`.
    device : ``cpu`` or ``cuda``.
    log : called with progress lines (default: the ``xae.codeprior`` logger).

    Returns
    -------
    dict
        What ``metrics.json`` holds: ``test_bits_per_image``, ``train_bits_per_image``,
        ``uniform_bits_per_image`` (T·log2 K), ``test_bits_per_token``, ``tokens``,
        ``codebook_size``, ``grid``, ``steps``, ``time_s``, …, plus ``path`` (the folder).
    """
    from xae.registry import build
    from xae.train.checkpoint import load_weights, read_config

    log = log or logger.info
    run_dir, dev = Path(run_dir), checked_device(str(device), "device")
    # not xae.load, which would also load (and check) the prior this fit is about to replace
    model = build(read_config(run_dir)).to(dev)
    load_weights(model, run_dir, dev)
    if not model.discrete:
        raise XaeError(NOT_DISCRETE.format(run=run_dir, name=model.config.model.bottleneck))
    grid, vocab = code_grid(model)
    cfg = CodePriorConfig(vocab=vocab, length=math.prod(grid), layers=layers, dim=dim,
                          heads=heads, dropout=dropout, epochs=epochs, batch_size=batch_size,
                          lr=lr, seed=seed)
    train_x, test_x = training_inputs(model)
    t0 = time.perf_counter()
    train_tokens, test_tokens = encode_tokens(model, train_x), encode_tokens(model, test_x)
    log(f"encoded {len(train_tokens)} training and {len(test_tokens)} test images to "
        f"{cfg.length} tokens each (grid {grid}, {vocab} codes)")
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        ar = CodeTransformer(cfg).to(dev)
        steps = train_code_transformer(ar, train_tokens, log=log)
    test_bits = bits_per_image(ar, test_tokens)
    metrics = {
        "test_bits_per_image": test_bits,
        "train_bits_per_image": bits_per_image(ar, train_tokens),
        "uniform_bits_per_image": cfg.length * math.log2(vocab),
        "test_bits_per_token": test_bits / cfg.length,
        "tokens": cfg.length, "codebook_size": vocab, "grid": list(grid),
        "train_images": len(train_tokens), "test_images": len(test_tokens),
        "epochs": epochs, "steps": steps, "time_s": time.perf_counter() - t0,
        "parameters": sum(p.numel() for p in ar.parameters()),
    }
    path = save_code_prior(run_dir, ar, grid, metrics)
    return {**metrics, "path": str(path)}


def save_code_prior(run_dir: str | Path, ar: CodeTransformer, grid: tuple[int, ...],
                    metrics: dict[str, Any]) -> Path:
    """Write ``RUN/code_prior/`` whole: into a temporary folder beside it, then renamed over
    the old one (which is removed only once the new one is in place)."""
    final = Path(run_dir) / CODE_PRIOR
    with atomic_dir(final) as tmp:
        write_json(tmp / CONFIG, {**ar.config.to_dict(), "grid": list(grid)})
        save_safetensors(ar, tmp / WEIGHTS, {"format": "xae-code-prior"})
        write_json(tmp / METRICS, metrics)
    return final


def load_code_prior(run_dir: str | Path, device: str | torch.device = "cpu",
                    model: torch.nn.Module | None = None) -> CodeTransformer | None:
    """The code prior fitted to a run (``RUN/code_prior/``), in eval mode, or None if the run
    has none.

    Parameters
    ----------
    run_dir : the run folder.
    device : where to put the prior.
    model : the run's autoencoder, if already built (else it is built from ``config.json``),
        to check the prior against its index grid (tokens T and codebook size K).

    Raises
    ------
    XaeError
        If the folder is damaged or the prior was fitted to another grid.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise XaeError(f"'{run_dir}' is not a folder; pass a run folder written by `xae train`")
    folder = run_dir / CODE_PRIOR
    if not folder.exists():
        return None
    refit = f"delete {folder} or refit it with `xae prior fit {run_dir}`"
    cfg, grid = _read_config(folder, refit)
    if model is None:
        from xae.registry import build
        from xae.train.checkpoint import read_config

        model = build(read_config(run_dir))
    if not model.discrete:
        raise XaeError(f"{folder} holds a code prior but the run's bottleneck is not discrete; "
                       f"{refit}")
    run_grid, vocab = code_grid(model)
    if (cfg.length, cfg.vocab) != (math.prod(run_grid), vocab) or \
            (grid is not None and tuple(grid) != run_grid):
        raise XaeError(f"{folder} was fitted to {cfg.length} tokens of {cfg.vocab} codes "
                       f"(grid {grid}) but the run encodes {math.prod(run_grid)} tokens of "
                       f"{vocab} codes (grid {list(run_grid)}); {refit}")
    ar = CodeTransformer(cfg)
    if not (folder / WEIGHTS).is_file():
        raise XaeError(f"{folder} is incomplete (no {WEIGHTS}); {refit}")
    load_module(ar, folder / WEIGHTS, "cpu", refit)
    return ar.to(device).eval()


def _read_config(folder: Path, refit: str) -> tuple[CodePriorConfig, list[int] | None]:
    path = folder / CONFIG
    if not path.is_file():
        raise XaeError(f"{folder} is incomplete (no {CONFIG}); {refit}")
    try:
        d = json.loads(path.read_text())
        grid = d.pop("grid", None) if isinstance(d, dict) else None
        return CodePriorConfig.from_dict(d), grid
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise XaeError(f"{path} is corrupt ({e}); {refit}") from None
    except (XaeError, TypeError) as e:
        raise XaeError(f"{path} is not a valid code-prior config: {e}; {refit}") from None


