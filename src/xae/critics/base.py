"""The critic contract: a piece that judges the decoder's output against the data, after the
likelihood (an adversarial loss, as in the VQ-GAN and the autoencoders of latent diffusion).

``critic(x, x_hat, distortion, step)`` returns a :class:`~xae.regularizers.base.Rate`: named
terms added to the model's objective (kind ``aux``) and the losses of pieces with optimizers
of their own (a discriminator). ``bind(model)`` is called once by the model that owns it.
"""
from __future__ import annotations

import torch
from torch import nn

from xae.regularizers.base import Rate


class Critic(nn.Module):
    """No judgement of the output: no terms, no losses (``model.critic = none``)."""

    def __init__(self, data_shape: tuple[int, ...] = ()) -> None:
        super().__init__()

    def bind(self, model: nn.Module) -> None:
        """Called once by the model that owns this critic (a discriminator keeps the
        decoder's last layer and is sized to the data)."""

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, distortion: torch.Tensor,
                step: int | None = None) -> Rate:
        return Rate({})
