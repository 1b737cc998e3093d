"""An xae model with the ``diffusers`` nets and a ``gaussian`` code as the state dict and the
config of diffusers' ``AutoencoderKL``, and back; no diffusers import is needed here.

The parameters map one to one:

========================================  ===============================================
xae (``model.state_dict()``)              ``AutoencoderKL.state_dict()``
========================================  ===============================================
``encoder.<name>``                        ``encoder.<name>`` (same names below)
``bottleneck.inner.proj.weight`` (2C, 2C)  ``quant_conv.weight`` (2C, 2C, 1, 1)
``bottleneck.inner.proj.bias``            ``quant_conv.bias``
``decoder.post_quant_conv.<p>``           ``post_quant_conv.<p>``
``decoder.<name>``                        ``decoder.<name>``
========================================  ===============================================

The Gaussian bottleneck acts per position (:mod:`xae.bottlenecks.positionwise`), so its linear
map from the encoder's 2C features to (mean, log σ²) is exactly the 1×1 ``quant_conv``; its
first C outputs are the mean and the last C the log-variance, clamped to [−30, 20], as
diffusers' ``DiagonalGaussianDistribution`` splits and clamps them. Parameters outside the
nets and the bottleneck (a learned likelihood scale, a learned prior) have no place in
AutoencoderKL and are left out.

Data convention: the nets are functions of whatever the xae model reads and returns, so
``AutoencoderKL.encode(x)`` with these weights gives xae's posterior of the same ``x``, and
``decode(z).sample`` is xae's θ, the likelihood's parameters (the mean for ``gaussian`` and
``laplace``, logits for ``bernoulli``). xae's images are in [0, 1]; diffusers' pipelines feed
images in [−1, 1]. Converting between the two (x_diffusers = 2x − 1, which cannot be folded
into conv_in exactly because of its zero padding) is the concern of the export, not of this
mapping.
"""
from __future__ import annotations

from typing import Any

import torch

from xae.bottlenecks.gaussian import Gaussian
from xae.bottlenecks.positionwise import Positionwise
from xae.errors import XaeError
from xae.nets.diffusers_nets import DiffusersDecoder, DiffusersEncoder

POST = "post_quant_conv."
QUANT = {"quant_conv.weight": "weight", "quant_conv.bias": "bias"}


def _check(model: Any) -> tuple[DiffusersEncoder, torch.nn.Linear, DiffusersDecoder]:
    """The model's encoder, per-position Gaussian projection and decoder, or an error."""
    enc, dec, bott = model.encoder, model.decoder, model.bottleneck
    if not (isinstance(enc, DiffusersEncoder) and isinstance(dec, DiffusersDecoder)):
        raise XaeError("only a model with model.encoder=diffusers and model.decoder=diffusers "
                       "has the layout of diffusers' AutoencoderKL")
    if not (isinstance(bott, Positionwise) and type(bott.inner) is Gaussian):
        raise XaeError("AutoencoderKL's code is a Gaussian at each position: the model needs "
                       "model.bottleneck=gaussian")
    return enc, bott.inner.proj, dec


def _pairs(model: Any) -> dict[str, tuple[torch.Tensor, tuple[int, ...]]]:
    """diffusers key → (the xae tensor, the shape it has in diffusers)."""
    enc, proj, dec = _check(model)
    out = {f"encoder.{k}": (v, tuple(v.shape)) for k, v in enc.state_dict().items()}
    out["quant_conv.weight"] = (proj.weight, (*proj.weight.shape, 1, 1))
    out["quant_conv.bias"] = (proj.bias, tuple(proj.bias.shape))
    for k, v in dec.state_dict().items():
        out[k if k.startswith(POST) else f"decoder.{k}"] = (v, tuple(v.shape))
    return out


def to_diffusers_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The weights of ``model``'s nets and Gaussian code as an ``AutoencoderKL`` state dict
    (copies, contiguous, on the model's device)."""
    return {k: v.detach().reshape(shape).clone() for k, (v, shape) in _pairs(model).items()}


@torch.no_grad()
def from_diffusers_state_dict(model: Any, state: dict[str, torch.Tensor]) -> None:
    """Load an ``AutoencoderKL`` state dict into ``model``'s nets and Gaussian code, in place.
    Every key must be there with its shape, and no other: otherwise an error, and nothing is
    changed."""
    pairs = _pairs(model)
    missing, unexpected = sorted(set(pairs) - set(state)), sorted(set(state) - set(pairs))
    if missing or unexpected:
        raise XaeError(f"this AutoencoderKL state dict does not fit the model (missing "
                       f"{missing[:3]}{' …' if len(missing) > 3 else ''}, unexpected "
                       f"{unexpected[:3]}{' …' if len(unexpected) > 3 else ''}); build the xae "
                       f"model with the AutoencoderKL's config (diffusers_config)")
    for k, (_, shape) in pairs.items():
        if tuple(state[k].shape) != shape:
            raise XaeError(f"{k} is {tuple(state[k].shape)} in the AutoencoderKL state dict "
                           f"but {shape} in the model; build the model with the same config")
    for k, (v, _) in pairs.items():
        v.copy_(state[k].reshape(v.shape))


def diffusers_config(model: Any) -> dict[str, Any]:
    """The keyword arguments of the ``AutoencoderKL`` with the same nets as ``model``
    (``out_channels`` is the data's channels times the likelihood's parameters per channel)."""
    enc, _, dec = _check(model)
    sec = model.config.model.diffusers
    n = len(sec.block_out_channels)
    return {"in_channels": enc.conv_in.in_channels, "out_channels": dec.conv_out.out_channels,
            "down_block_types": ["DownEncoderBlock2D"] * n,
            "up_block_types": ["UpDecoderBlock2D"] * n,
            "block_out_channels": [int(c) for c in sec.block_out_channels],
            "layers_per_block": int(sec.layers_per_block), "act_fn": "silu",
            "latent_channels": int(sec.latent_channels),
            "norm_num_groups": int(sec.norm_num_groups),
            "sample_size": int(model.data_shape[1]),
            "mid_block_add_attention": bool(sec.mid_block_add_attention),
            "use_quant_conv": True, "use_post_quant_conv": True}
