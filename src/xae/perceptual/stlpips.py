"""ST-LPIPS, the shift-tolerant learned perceptual distance of Ghildyal & Liu (2022), with the
AlexNet and VGG-16 networks they trained from scratch (weights from the ``stlpips-pytorch``
wheel, :mod:`xae.perceptual.weights`). This module is xae's own implementation of their
architecture; it gives the original's distances to float32 rounding (tests/test_perceptual.py).

The distance (Zhang et al. 2018, eq. 1, with the shift-tolerant trunks of Ghildyal & Liu):

1. Images in [0, 1] go to [−1, 1], then each channel to (t − shift_c) / scale_c with the
   fixed shift (−0.030, −0.088, −0.188) and scale (0.458, 0.448, 0.450) stored in the file.
2. Both images go through the trunk, whose five stages give feature maps f¹ … f⁵. The trunk
   is anti-aliased: every stride-2 step is a blur pool, a reflect padding of 2 pixels on each
   side and a depthwise 3x3 binomial filter [1, 2, 1]ᵀ[1, 2, 1] / 16 at stride 2 (Zhang 2019),
   and max pooling keeps stride 1. AlexNet's first convolution (11x11, padding 2) runs at
   stride 1 and is followed by a blur pool before its ReLU.
3. Each feature vector is divided by its Euclidean norm over channels (+ 1e-10).
4. d(x, y) = Σ_l mean_{h,w} Σ_c w_{l,c} (f̂ˡ_{c,h,w}(x) − f̂ˡ_{c,h,w}(y))², with the learned
   non-negative "lin" weights w_l (1x1 convolutions without bias; their dropout is inactive
   at evaluation).

The distance is symmetric, zero for identical images and non-negative. There is no upsampling:
like the original, the trunks need a minimum image side (21 for AlexNet, 18 for VGG, where the
last blur pool's reflect padding still fits); 28x28 images work as they are.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from xae.perceptual.base import PerceptualDistance
from xae.perceptual.weights import load_state_dict

#: A layer of a trunk: ("conv", out_channels, kernel, padding), ("relu",), ("max", kernel)
#: (max pooling at stride 1) or ("blur",) (the anti-aliased stride-2 step).
Layer = tuple

#: The shift-tolerant AlexNet: five stages, each ending where the distance reads a feature map.
ALEX: tuple[tuple[Layer, ...], ...] = (
    (("conv", 64, 11, 2), ("blur",), ("relu",)),
    (("max", 3), ("blur",), ("conv", 192, 5, 2), ("relu",)),
    (("max", 3), ("blur",), ("conv", 384, 3, 1), ("relu",)),
    (("conv", 256, 3, 1), ("relu",)),
    (("conv", 256, 3, 1), ("relu",)),
)


def _vgg16() -> tuple[tuple[Layer, ...], ...]:
    """VGG-16 (configuration D) up to relu5_3, each 2x2 max pool at stride 1 + a blur pool."""
    widths = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
    stages = []
    for i, stage in enumerate(widths):
        layers: list[Layer] = [("max", 2), ("blur",)] if i else []
        for w in stage:
            layers += [("conv", w, 3, 1), ("relu",)]
        stages.append(tuple(layers))
    return tuple(stages)


VGG: tuple[tuple[Layer, ...], ...] = _vgg16()
TRUNKS: dict[str, tuple[tuple[Layer, ...], ...]] = {"alex": ALEX, "vgg": VGG}
TRUNK_NAMES: dict[str, str] = {"alex": "AlexNet", "vgg": "VGG-16"}

#: Reflect padding of a blur pool on each side; reflection needs a side longer than this.
BLUR_PAD: int = 2


class BlurPool(nn.Module):
    """The anti-aliased stride-2 step: reflect padding of 2, then a depthwise 3x3 binomial
    filter at stride 2. The filter is a buffer named ``filt`` (C, 1, 3, 3), read from the file.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        b = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("filt", (torch.outer(b, b) / 16).expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (BLUR_PAD,) * 4, mode="reflect")
        return F.conv2d(padded, self.filt, stride=2, groups=x.shape[1])


def _build(spec: tuple[Layer, ...], channels: int, first: int) -> tuple[nn.Sequential, int]:
    """One stage as a Sequential whose children are named by their position in the whole
    trunk, from ``first`` (the numbering of the weight files); returns it and its width."""
    stage = nn.Sequential()
    for i, layer in enumerate(spec, start=first):
        if layer[0] == "conv":
            _, width, kernel, padding = layer
            module: nn.Module = nn.Conv2d(channels, width, kernel, padding=padding)
            channels = width
        elif layer[0] == "blur":
            module = BlurPool(channels)
        elif layer[0] == "max":
            module = nn.MaxPool2d(layer[1], stride=1)
        else:
            module = nn.ReLU()
        stage.add_module(str(i), module)
    return stage, channels


def _side_after(spec: tuple[tuple[Layer, ...], ...], side: int) -> int | None:
    """The side of the last feature map for an input side, or None if a layer cannot run."""
    for layer in (layer for stage in spec for layer in stage):
        if layer[0] == "conv":
            side += 2 * layer[3] - layer[2] + 1
        elif layer[0] == "max":
            side -= layer[1] - 1
        elif layer[0] == "blur":
            if side <= BLUR_PAD:
                return None
            side = (side + 2 * BLUR_PAD - 3) // 2 + 1
        if side < 1:
            return None
    return side


def min_side(spec: tuple[tuple[Layer, ...], ...]) -> int:
    """The smallest image side a trunk runs on (every larger side runs too)."""
    side = 1
    while _side_after(spec, side) is None:
        side += 1
    return side


#: Weight-file names of the parts this module names otherwise.
_RENAMES = ((re.compile(r"^scaling_layer\."), ""), (re.compile(r"^net\.slice(\d)\."), r"stage\1."),
            (re.compile(r"^lin(\d)\.model\.1\."), r"lin\1."))


class STLPIPS(PerceptualDistance):
    """ST-LPIPS with a shift-tolerant AlexNet (``alex``) or VGG-16 (``vgg``) trunk.

    Build it with :meth:`load`. ``distance(x, y)`` is (B,) for images (B, C, H, W) in [0, 1];
    a 1-channel image is repeated to 3 channels (the networks were trained on RGB), which
    scores a grey image as the RGB image with equal channels.
    """

    def __init__(self, trunk: str) -> None:
        super().__init__()
        spec = TRUNKS[trunk]
        self.trunk = trunk
        self.name = f"stlpips-{trunk}"
        self.description = (f"ST-LPIPS (Ghildyal & Liu 2022), shift-tolerant {TRUNK_NAMES[trunk]}"
                            f" trained from scratch, weights of stlpips-pytorch 0.0.2")
        self.min_side = min_side(spec)
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))
        channels, first = 3, 0
        for s, stage_spec in enumerate(spec, start=1):
            stage, channels = _build(stage_spec, channels, first)
            first += len(stage_spec)
            self.add_module(f"stage{s}", stage)
            self.add_module(f"lin{s - 1}", nn.Conv2d(channels, 1, 1, bias=False))
        self.stages = len(spec)

    @classmethod
    def load(cls, trunk: str, device: str | torch.device = "cpu") -> "STLPIPS":
        """The network with the wheel's weights (hash-checked), frozen, in eval mode."""
        state = {}
        for key, value in load_state_dict(trunk).items():
            for pattern, repl in _RENAMES:
                key = pattern.sub(repl, key)
            state[key] = value
        with torch.device("meta"):  # no random initialization: it would use the global RNG
            net = cls(trunk)
        net.load_state_dict(state, assign=True)  # strict: every tensor has its place
        return net.requires_grad_(False).to(device).eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five unit-normalized feature maps of images (B, 3, H, W) in [0, 1]."""
        h = (2 * x - 1 - self.shift) / self.scale
        out = []
        for s in range(1, self.stages + 1):
            h = getattr(self, f"stage{s}")(h)
            out.append(h / (torch.linalg.vector_norm(h, dim=1, keepdim=True) + 1e-10))
        return out

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        both = self.features(torch.cat([x, y]))
        total = x.new_zeros(x.shape[0])
        for s, f in enumerate(both):
            fx, fy = f.chunk(2)
            total = total + getattr(self, f"lin{s}")((fx - fy).square()).mean((1, 2, 3))
        return total
