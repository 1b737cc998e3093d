"""A PatchGAN critic with the adaptive generator weight, as in the loss the autoencoders of
latent diffusion were trained with (Rombach et al. 2022, ``LPIPSWithDiscriminator`` in
their released code; the discriminator of Isola et al. 2017 and Esser et al. 2021).

The discriminator is a stack of 4×4 convolutions: one of stride 2 and LeakyReLU(0.2), then
``layers − 1`` of stride 2 and one of stride 1, each with a norm layer, widths doubling up to
8× ``width``, and a last stride-1 convolution to one logit per patch. Weights start at
N(0, 0.02), norm scales at N(1, 0.02). Images enter as 2x − 1, the [−1, 1] range of that code.

The model's aux term ``generator`` is g = −mean over patches of the logits of the
reconstruction (the discriminator frozen), with the weight

    λ = clamp(‖∇_W L_nll‖ / (‖∇_W g‖ + 1e-4), 0, 1e4) · ``weight`` · ``factor``

where W is the decoder's last layer and L_nll the batch's mean distortion, so the
adversarial gradient reaching the decoder is as large as the reconstruction's. The
discriminator learns on the hinge loss ½(mean relu(1 − d(x)) + mean relu(1 + d(x̂))) (or the
"vanilla" softplus form), times ``factor``, with its own Adam. Both start at step ``start``;
outside training the term is reported with weight 0. Defaults are that code's for its
KL-regularized f = 8 autoencoders: 3 layers of width 64 with batch norm, hinge loss,
disc_start 50001, disc_factor 1, disc_weight 0.5, Adam β = (0.5, 0.9); their learning rate
is 4.5e-6 times the batch size and GPU count, about 1e-4 here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xae import checks as C
from xae.critics.base import Critic
from xae.errors import XaeError
from xae.optim import OptimizerSpec, OwnsOptimizer, frozen
from xae.outputs import Term
from xae.regularizers.base import Rate

NORMS = ("batch", "none")
LOSSES = ("hinge", "vanilla")


def _side(n: int, layers: int) -> int:
    """The logit map's side for an input side ``n``: ``layers`` stride-2 convolutions, then
    two of stride 1 (all 4×4 with padding 1)."""
    for _ in range(layers):
        n = (n - 2) // 2 + 1
    return n - 2


def min_side(layers: int) -> int:
    """The smallest image side that leaves at least one patch."""
    n = 1
    while _side(n, layers) < 1:
        n += 1
    return n


class PatchDiscriminator(OwnsOptimizer, nn.Module):
    """Image → a map of logits, one per patch; stepped by its own Adam."""

    optimizer_name = "discriminator"

    def __init__(self, channels: int, width: int, layers: int, norm: str,
                 spec: OptimizerSpec) -> None:
        super().__init__()
        widths = [width * min(2 ** i, 8) for i in range(layers + 1)]
        mods: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            mods += [nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=norm == "none"),
                     nn.BatchNorm2d(widths[i]) if norm == "batch" else nn.Identity(),
                     nn.LeakyReLU(0.2)]
        mods.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
        self.spec = spec

    def optimizer_spec(self) -> OptimizerSpec:
        return self.spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * x - 1)


def adaptive_weight(nll: torch.Tensor, g: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """clamp(‖∇_W nll‖ / (‖∇_W g‖ + 1e-4), 0, 1e4), detached: W is the decoder's last
    layer."""
    g_nll = torch.autograd.grad(nll, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(g, last, retain_graph=True)[0]
    return (g_nll.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, 1e4).detach()


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "hinge":
        return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())
    return 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())


class PatchGAN(Critic):
    """See the module's docstring."""

    KEYS = {"layers": ("the discriminator's stride-2 layers (more need larger images)",
                       C.POSITIVE),
            "width": ("the discriminator's first width (doubling per layer, up to 8×)",
                      C.POSITIVE),
            "norm": ("the discriminator's norm layers", C.one_of(NORMS)),
            "loss": ("the discriminator's loss", C.one_of(LOSSES)),
            "start": ("the step from which the discriminator learns and the generator term "
                      "applies (disc_start)", C.NON_NEGATIVE),
            "factor": ("disc_factor: scales both the generator term and the discriminator's "
                       "loss", C.NON_NEGATIVE_FLOAT),
            "weight": ("disc_weight: scales the adaptive generator weight",
                       C.NON_NEGATIVE_FLOAT),
            "lr": ("the discriminator's Adam learning rate", C.POSITIVE_FLOAT),
            "beta1": ("the discriminator's Adam β1", C.between(0.0, 1.0, hi_open=True)),
            "beta2": ("the discriminator's Adam β2", C.between(0.0, 1.0, hi_open=True))}

    def __init__(self, data_shape: tuple[int, ...], *, layers: int = 3, width: int = 64,
                 norm: str = "batch", loss: str = "hinge", start: int = 50001,
                 factor: float = 1.0, weight: float = 0.5, lr: float = 1e-4,
                 beta1: float = 0.5, beta2: float = 0.9) -> None:
        super().__init__()
        if len(data_shape) != 3:
            raise XaeError(f"model.critic=patchgan judges images shaped (C, H, W); this data "
                           f"is {tuple(data_shape)}: use model.critic=none")
        side = min(data_shape[1:])
        if _side(side, layers) < 1:
            fit = max((n for n in range(1, layers) if _side(side, n) >= 1), default=0)
            hint = f"model.patchgan.layers={fit} fits" if fit else "no depth fits"
            raise XaeError(f"model.patchgan.layers={layers} needs images of at least "
                           f"{min_side(layers)}×{min_side(layers)}; these are "
                           f"{data_shape[1]}×{data_shape[2]} ({hint})")
        self.disc = PatchDiscriminator(data_shape[0], width, layers, norm,
                                       OptimizerSpec(lr, (beta1, beta2)))
        self.start, self.factor, self.weight, self.loss = int(start), float(factor), \
            float(weight), loss
        self._last: tuple[torch.Tensor] | None = None

    def bind(self, model: nn.Module) -> None:
        """Keep the decoder's last layer, for the adaptive weight."""
        last = getattr(model.decoder, "last_layer", None)
        if not isinstance(last, torch.Tensor):
            raise XaeError(f"model.critic=patchgan weighs its term by gradients at the "
                           f"decoder's last layer, and the decoder "
                           f"{type(model.decoder).__name__} does not name one (last_layer)")
        self._last = (last,)

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, distortion: torch.Tensor,
                step: int | None = None) -> Rate:
        on = step is None or step >= self.start
        g = -frozen(self.disc, x_hat).flatten(1).mean(1)
        learning = self.training and torch.is_grad_enabled() and on and self.factor > 0
        lam = adaptive_weight(distortion.mean(), g.mean(), self._last[0]) \
            * self.weight * self.factor if learning else x.new_zeros(())
        terms = {"generator": Term(g, "aux", lam, note=f"adversarial, PatchGAN ({self.loss})")}
        losses = {}
        if learning:
            real, fake = self.disc(x.detach()), self.disc(x_hat.detach())
            losses["discriminator"] = self.factor * discriminator_loss(real, fake, self.loss)
        return Rate(terms, losses=losses, metrics={"generator_weight": lam.expand(x.shape[0])})
