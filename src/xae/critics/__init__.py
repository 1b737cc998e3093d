"""Critics x̂ → terms: judges of the decoder's output (``model.critic``)."""
from __future__ import annotations

from xae.critics.base import Critic
from xae.critics.patchgan import PatchGAN

CRITICS: dict[str, type[Critic]] = {"none": Critic, "patchgan": PatchGAN}

__all__ = ["Critic", "PatchGAN", "CRITICS"]
