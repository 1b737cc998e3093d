"""The reconstruction loss of latent diffusion's autoencoders (Rombach et al. 2022, the
``LPIPSWithDiscriminator`` of their released code), in the place of a likelihood.

Per sample, over the C·H·W values of the image in the [−1, 1] range of that code
(x̃ = 2x − 1, so |x̃ − θ̃| = 2|x − θ|):

    distortion = Σ_pixels (|x̃ − θ̃| + w_p · P(x, θ)) / exp(s) + s

with P the per-image perceptual distance added at every pixel (as that code broadcasts it),
w_p ``perceptual_weight`` and s one learned scalar log-variance (``logvar_init``). Their
perceptual distance is LPIPS with an ImageNet VGG; that network cannot be had offline, so
the default here is ST-LPIPS with a VGG trunk trained from scratch (Ghildyal & Liu 2022;
:mod:`xae.perceptual`), and every report says so. This is a loss, not a normalized density
(``density = False``): the likelihood, the ELBO and bits per dimension are not reported for
it, and it has no samples; θ is the reconstruction itself.
"""
from __future__ import annotations

import torch
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.likelihoods.base import Likelihood
from xae.perceptual import PERCEPTUAL, PerceptualDistance, perceptual_distance


class Reconstruction(Likelihood):
    """See the module's docstring."""

    density = False
    KEYS = {"perceptual": ("the perceptual distance (ST-LPIPS, never LPIPS: its ImageNet "
                           "weights cannot be had offline)", C.one_of(PERCEPTUAL)),
            "perceptual_weight": ("w_p, the perceptual distance's weight",
                                  C.NON_NEGATIVE_FLOAT),
            "logvar_init": ("the learned log-variance's start", C.between(-20.0, 20.0))}

    def __init__(self, data_shape: tuple[int, ...], *, perceptual: str = "stlpips-vgg",
                 perceptual_weight: float = 1.0, logvar_init: float = 0.0) -> None:
        super().__init__(data_shape)
        self.logvar = nn.Parameter(torch.tensor(float(logvar_init)))
        self.perceptual, self.weight = perceptual, float(perceptual_weight)
        if (perceptual == "none") != (self.weight == 0):
            raise XaeError("model.reconstruction.perceptual=none leaves no perceptual term: set "
                           "model.reconstruction.perceptual_weight=0 with it (and a weight "
                           "> 0 with a distance)")
        # frozen and not a submodule: its weights are the wheel's, not the run's
        self._distance: tuple[PerceptualDistance, ...] = ()
        if self.weight:
            net = perceptual_distance(perceptual)
            if len(data_shape) != 3 or min(data_shape[1:]) < net.min_side:
                raise XaeError(f"model.reconstruction.perceptual={perceptual} needs images of "
                               f"at least {net.min_side}×{net.min_side}; this data is "
                               f"{tuple(data_shape)}: choose ssim or none (with "
                               f"perceptual_weight=0)")
            self._distance = (net,)

    @property
    def description(self) -> str:
        """What the perceptual term is, for reports."""
        return self._distance[0].description if self._distance else "no perceptual term"

    def _perceptual(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """w_p·P per image, shaped to broadcast over θ's pixels."""
        if not self._distance:
            return theta.new_zeros(())
        net = self._distance[0]
        if next(net.parameters(), theta).device != theta.device:
            self._distance = (net := net.to(theta.device),)
        lead = theta.shape[:-3]
        p = net(x.expand_as(theta).reshape(-1, *self.data_shape),
                theta.reshape(-1, *self.data_shape))
        return self.weight * p.view(*lead, 1, 1, 1)

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        per_pixel = 2 * (x - theta).abs() + self._perceptual(x, theta)
        return -(per_pixel * torch.exp(-self.logvar) + self.logvar)

    def mean(self, theta: torch.Tensor) -> torch.Tensor:
        return theta

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        raise XaeError("model.likelihood=reconstruction is a loss, not a density, so it has "
                       "no samples; use the reconstruction itself (the mean)")
