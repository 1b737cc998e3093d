"""Optimizers declared by the model's pieces, with their parameter groups.

Every parameter belongs to the ``model`` optimizer (Adam at ``train.lr``) unless it lies in a
piece that owns an optimizer (:class:`OwnsOptimizer`, e.g. a discriminator): then it belongs
to that piece's, with the piece's learning rate and betas. Inside each optimizer, biases,
norms' scales and log-variances (tensors of at most one dimension, or parameters named
``log*``) get no weight decay (as nanoGPT's ``configure_optimizers`` decides per tensor).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

MODEL = "model"  # the optimizer of every parameter no piece claims


@dataclass(frozen=True)
class OptimizerSpec:
    """An Adam optimizer: its learning rate (scaled by ``train.lr_schedule`` each step),
    betas and L2 weight decay (Adam's ``weight_decay``)."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0


class OwnsOptimizer:
    """A piece (an ``nn.Module``) whose parameters have an optimizer of their own, stepped on
    the loss the piece returns under ``optimizer_name`` in ``LossOutput.losses``. Its
    parameters must get no gradient from the model's loss: evaluate it there through
    :func:`frozen`."""

    optimizer_name: str

    def optimizer_spec(self) -> OptimizerSpec:
        raise NotImplementedError


def frozen(module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
    """``module(*args)`` with its parameters and buffers detached: gradients reach the inputs
    but not the module (a discriminator's verdict inside the model's own loss)."""
    detached = {k: v.detach() for k, v in module.state_dict(keep_vars=True).items()}
    return torch.func.functional_call(module, detached, args)


def _no_decay(name: str, p: nn.Parameter) -> bool:
    return p.ndim <= 1 or name.rsplit(".", 1)[-1].startswith("log")


def owners(model: nn.Module) -> dict[str, str]:
    """Parameter name → the name of the optimizer that steps it."""
    out = {name: MODEL for name, _ in model.named_parameters()}
    for prefix, module in model.named_modules():
        if isinstance(module, OwnsOptimizer):
            for name, _ in module.named_parameters(prefix=prefix):
                out[name] = module.optimizer_name
    return out


def build_optimizers(model: nn.Module, model_spec: OptimizerSpec
                     ) -> dict[str, torch.optim.Optimizer]:
    """One fused Adam per optimizer name (``model`` first), each with a decay and a
    no-decay parameter group; each group keeps its base learning rate as ``base_lr``."""
    specs = {MODEL: model_spec}
    for module in model.modules():
        if isinstance(module, OwnsOptimizer):
            specs[module.optimizer_name] = module.optimizer_spec()
    owner = owners(model)
    params: dict[str, dict[bool, list]] = {name: {False: [], True: []} for name in specs}
    for name, p in model.named_parameters():
        if p.requires_grad:
            params[owner[name]][_no_decay(name, p)].append(p)
    opts = {}
    for name, spec in specs.items():
        groups = [{"params": ps, "weight_decay": 0.0 if no_decay else spec.weight_decay,
                   "base_lr": spec.lr} for no_decay, ps in params[name].items() if ps]
        if groups:  # the fused kernel updates a group's parameters in one pass
            opts[name] = torch.optim.Adam(groups, lr=spec.lr, betas=spec.betas, fused=True)
    return opts
