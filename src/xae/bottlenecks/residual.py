"""Residual vector quantization with quantizer dropout (Zeghidour et al. 2021, "SoundStream:
An End-to-End Neural Audio Codec", sec. 3.3, algorithm 1).

S quantizers are applied in turn: stage s quantizes the residual r_s = z − sg(ĉ_1 + … +
ĉ_{s−1}) left by the stages before it, and the code is the sum of the stage codes, so each
stage refines the previous ones and a position takes one of K^S codes described by S
indices. The stages are any quantizer of the registry (VQ by default), built without an
input map, all quantizing d-vectors, with the settings of their own section (``model.vq`` for
VQ stages).

Gradients pass straight through the first stage (for VQ stages: the identity); the later
stages' codes enter as constants. Every stage's aux loss is taken on its own residual, so
each stage's commitment term pulls the encoder output towards its partial sum; the aux of
a position is the sum over its stages.

Quantizer dropout (ibid.): in training, each vector keeps only its first n stages, n drawn
uniformly from {1, …, S}; the codes and aux of the later stages are zeroed for that vector,
and it feeds no codebook statistics of the dropped stages (for quantizers whose ``quantize``
takes a ``mask``). Its indices are still those of all S stages (the residuals are taken as
without dropout), so that they always describe the full code. A model trained so can be
decoded with fewer stages: ``quantize(z, stages=n)`` and ``indices_to_codes`` of n indices
per position.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from xae import checks as C
from xae.bottlenecks.quantizer import Quantized, Quantizer
from xae.errors import XaeError, positive_int


def _stackable(cls: object) -> bool:
    """A quantizer of d-vectors into the same space (not residual VQ itself, nor one that
    reads logits, like Gumbel-softmax), so that residuals can be taken."""
    return isinstance(cls, type) and issubclass(cls, Quantizer) \
        and not issubclass(cls, ResidualVQ) and not cls.has_posterior


def stage_choices() -> dict[str, type[Quantizer]]:
    """The quantizers of the bottleneck table that residual VQ can stack, by name."""
    from xae.bottlenecks import BOTTLENECKS  # here: that package imports this module

    return {k: v for k, v in BOTTLENECKS.items() if _stackable(v)}


def _stage_class(name: object) -> type[Quantizer]:
    """The quantizer class named ``name`` in the bottleneck table (or ``name`` itself if it
    is already a quantizer class)."""
    choices = stage_choices()
    if _stackable(name):
        return name  # type: ignore[return-value]
    if not isinstance(name, str) or name not in choices:
        raise XaeError(f"model.rvq.stage_quantizer {name!r} is not a quantizer residual VQ "
                       f"can stack; use one of {', '.join(sorted(choices))}")
    return choices[name]


class ResidualVQ(Quantizer):
    """S stages of a quantizer on successive residuals.

    Parameters
    ----------
    stage_settings : the settings of every stage, keyword arguments of the stage quantizer
        (the build passes its section, e.g. ``model.vq``; ``codebook_size`` is per stage);
        none: its defaults.
    stages : S (``model.rvq.stages``).
    stage_quantizer : the stages' kind, a name in the bottleneck table (``vq``, ``fsq``,
        ``lfq``) or a :class:`Quantizer` class.
    stage_dropout : quantizer dropout in training.

    Attributes: ``stages`` (S), ``quantizers`` (the S stage modules), ``codebook_size`` and
    ``code_dim`` (those of a stage).
    """

    STAGE_KEY = "stage_quantizer"  # the setting naming the piece whose section the stages get
    KEYS = {"stages": ("S, the number of stages", C.POSITIVE),
            "stage_quantizer": ("the stages' quantizer (its own section holds their settings)",
                                C.one_of(lambda: sorted(stage_choices()))),
            "stage_dropout": ("each training sample keeps a random number of stages", None)}

    def __init__(self, in_features: int | None, latent_dim: int,
                 stage_settings: Mapping[str, Any] | None = None, *, stages: int = 4,
                 stage_quantizer: str = "vq", stage_dropout: bool = True) -> None:
        n = positive_int(stages, "model.rvq.stages")
        if not isinstance(stage_dropout, bool):
            raise XaeError(f"model.rvq.stage_dropout must be true or false, "
                           f"got {stage_dropout!r}")
        cls = _stage_class(stage_quantizer)
        keys = dict(stage_settings or {})
        # the first build reads the stage's code size d (and checks latent_dim against it);
        # the stages proper are then built for single d-vectors
        d = cls(None, latent_dim, **keys).code_dim
        layers = [cls(None, d, **keys) for _ in range(n)]
        if any(q.code_dim != d for q in layers):
            raise XaeError(f"the {n} stages of residual VQ disagree on the code size "
                           f"({[q.code_dim for q in layers]}); check their settings")
        super().__init__(in_features, latent_dim, d)
        self.stages, self.stage_dropout = n, stage_dropout
        self.codebook_size = layers[0].codebook_size
        self.quantizers = nn.ModuleList(layers)
        self._takes_mask = ["mask" in inspect.signature(q.quantize).parameters for q in layers]

    def _kept(self, z: torch.Tensor, n: int) -> torch.Tensor:
        """How many stages each vector keeps (N,): all n, or U{1..n} under dropout (in
        training steps only: train mode with gradients on, like the VQ stages' updates)."""
        if self.training and torch.is_grad_enabled() and self.stage_dropout and n > 1:
            return torch.randint(1, n + 1, (z.shape[0],), device=z.device)
        return torch.full((z.shape[0],), n, dtype=torch.long, device=z.device)

    def _check_stages(self, n: int | None) -> int:
        if n is None:
            return self.stages
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.stages:
            raise XaeError(f"stages must be an integer from 1 to {self.stages} (the model's "
                           f"number of residual stages), got {n!r}")
        return n

    def quantize(self, z: torch.Tensor, step: int | None = None, stages: int | None = None,
                 mask: torch.Tensor | None = None) -> Quantized:
        """Quantize z (N, d) with the first ``stages`` stages (all by default); indices
        (N, stages). ``mask`` (N,) bool: vectors allowed to feed codebook statistics."""
        n = self._check_stages(stages)
        kept = self._kept(z, n)
        partial = torch.zeros_like(z)  # sg(sum of the stage codes so far), dropout aside
        codes, aux, indices = z, z.new_zeros(z.shape[0]), []
        for s, q in enumerate(self.quantizers[:n]):
            on = kept > s
            args = {"mask": on if mask is None else on & mask} if self._takes_mask[s] else {}
            out = q.quantize(z - partial, step, **args)
            keep = on.to(z.dtype)
            stage_codes = out.codes * keep.unsqueeze(1)
            # the first stage carries the gradient; the later stages' codes are constants
            codes = stage_codes if s == 0 else codes + stage_codes.detach()
            partial = partial + out.codes.detach()
            aux = aux + out.aux * keep
            indices.append(out.indices)
        return Quantized(codes, torch.stack(indices, -1), aux)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors (..., d) of indices (..., n), n ≤ S: the sum of the first n stages'
        codes."""
        n = indices.shape[-1] if indices.dim() else 0
        if not 1 <= n <= self.stages:
            raise XaeError(f"residual VQ indices must end in a stage axis of 1 to {self.stages} "
                           f"entries, got shape {tuple(indices.shape)}")
        return sum(q.indices_to_codes(indices[..., s])
                   for s, q in enumerate(self.quantizers[:n]))  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return (f"stages={self.stages}, codebook_size={self.codebook_size}, "
                f"code_dim={self.code_dim}, positions={self.positions}, "
                f"stage_dropout={self.stage_dropout}")
