"""The settings of a diffusion prior: the denoiser's sizes, its training and its sampler.

They are saved as ``RUN/diffusion_prior/config.json`` beside the weights, with the latent
shape the prior was fitted to and the scale factor of the latents (Rombach et al. 2022,
sec. 4.3.2 and app. G: the latents are multiplied by 1/std before diffusion).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from xae.errors import XaeError, positive_int

FORMAT = "xae-diffusion-prior"

#: The keys of each denoiser; the others do not apply to a code of that shape.
NET_KEYS = {"mlp": ("mlp_hidden", "mlp_layers"), "conv": ("conv_channels", "conv_blocks")}
#: The keys that size or train the prior, in the order ``xae prior fit --help`` shows them.
FIT_KEYS = ("steps", "batch_size", "lr", "seed", "sample_steps", "time_dim",
            "checkpoint_every", *NET_KEYS["mlp"], *NET_KEYS["conv"])


@dataclass
class DiffusionPriorConfig:
    """Hyper-parameters of a :class:`~xae.diffprior.DiffusionPrior` and of its fit.

    latent_shape : one code's shape: (D,) for a flat code (an MLP denoiser), (C, h, w) for a
        spatial one (a convolutional denoiser).
    scale : the factor the latents are multiplied by before diffusion, 1/std of the training
        latents (all elements pooled); None until the fit measures it.
    mlp_hidden, mlp_layers : width and hidden layers of the MLP denoiser (flat codes).
    conv_channels, conv_blocks : width and residual blocks of the conv denoiser (spatial).
    time_dim : size of the sinusoidal embedding of the time t.
    steps, batch_size, lr, seed : Adam for ``steps`` updates on batches of ``batch_size``
        latents, the learning rate decaying from ``lr`` to lr/100 on a cosine.
    sample_steps : steps of the Heun ODE sampler (2·steps denoiser evaluations).
    checkpoint_every : updates between the fit's checkpoints (what a resume starts from).
    """

    latent_shape: tuple[int, ...]
    scale: float | None = None
    mlp_hidden: int = 256
    mlp_layers: int = 3
    conv_channels: int = 64
    conv_blocks: int = 2
    time_dim: int = 64
    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    sample_steps: int = 25
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        self.latent_shape = tuple(self.latent_shape)
        self.validate()

    @property
    def net(self) -> str:
        """``mlp`` for a flat code, ``conv`` for a spatial one."""
        return "mlp" if len(self.latent_shape) == 1 else "conv"

    def validate(self) -> None:
        """Raise :class:`XaeError` naming the first bad setting."""
        shape = self.latent_shape
        if len(shape) not in (1, 3) or any(isinstance(s, bool) or not isinstance(s, int)
                                           or s < 1 for s in shape):
            raise XaeError(f"latent_shape must be (D,) or (C, h, w) of positive integers, got "
                           f"{list(shape)}")
        for key in ("mlp_hidden", "mlp_layers", "conv_channels", "conv_blocks", "time_dim",
                    "steps", "batch_size", "sample_steps", "checkpoint_every"):
            positive_int(getattr(self, key), key)
        if self.time_dim % 2:
            raise XaeError(f"time_dim must be even (sines and cosines), got {self.time_dim}")
        if not _positive_number(self.lr):
            raise XaeError(f"lr must be a positive number, got {self.lr!r}")
        if self.scale is not None and not _positive_number(self.scale):
            raise XaeError(f"scale must be a positive number, got {self.scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise XaeError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {"format": FORMAT, **d, "latent_shape": list(self.latent_shape)}

    @classmethod
    def from_dict(cls, d: Any) -> DiffusionPriorConfig:
        """The config saved by :meth:`to_dict`; XaeError for unknown or missing keys."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise XaeError(f"not an xae diffusion-prior config (no \"format\": \"{FORMAT}\")")
        fields = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - fields - {"format"})
        if extra:
            raise XaeError(f"unknown diffusion-prior config keys {extra}")
        if not isinstance(d.get("latent_shape"), list):
            raise XaeError("the diffusion-prior config lacks latent_shape (a list)")
        return cls(**{k: v for k, v in d.items() if k != "format"})


def _positive_number(v: Any) -> bool:
    return (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
            and v > 0)
