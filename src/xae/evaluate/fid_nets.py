"""The feature nets of FID-LeNet: one small classifier per data set, shipped with its SHA-256.

Inception weights cannot be fetched here, so FID is computed on the features of a LeNet-style
classifier (LeCun et al. 1998) trained by xae itself, with a fixed seed, by
:mod:`xae.evaluate.fid_train`, on the data set being measured: :data:`FEATURE_NETS` maps a
data set's name to its net. Values are NOT comparable to Inception FID numbers from papers,
nor between data sets.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import nn

from xae.errors import XaeError

#: The only data shape the classifiers accept: one 28x28 channel with values in [0, 1].
INPUT_SHAPE: tuple[int, int, int] = (1, 28, 28)

#: Width of the penultimate layer, the features FID-LeNet is computed on.
FEATURE_DIM: int = 128

#: ``load_classifier``'s default ``sha256``: the hash shipped for the data set's net.
SHIPPED = "shipped"


class LeNet(nn.Module):
    """A compact LeNet-5-style classifier (LeCun et al. 1998) for 1x28x28 images in [0, 1].

    conv 5x5 (16) → ReLU → max-pool 2 → conv 5x5 (32) → ReLU → max-pool 2 → linear (128) →
    ReLU → linear (10). The 128 post-ReLU activations are the features of FID-LeNet. Inputs
    are standardized with the training pixels' mean and standard deviation (not weights:
    they come from the data set's :class:`FeatureNet`).
    """

    def __init__(self, pixel_mean: float = 0.1307, pixel_std: float = 0.3081) -> None:
        super().__init__()
        self.pixel_mean, self.pixel_std = pixel_mean, pixel_std
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(32 * 5 * 5, FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, shape (B, 128)."""
        return self.hidden(self.conv((x - self.pixel_mean) / self.pixel_std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (B, 10)."""
        return self.head(self.features(x))


@dataclass(frozen=True)
class Recipe:
    """Hyperparameters of a classifier's training (Adam, a step-decayed learning rate)."""

    seed: int = 0
    epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    lr_decay: float = 0.3  # multiplied into the learning rate after each epoch


@dataclass(frozen=True)
class FeatureNet:
    """One data set's shipped classifier.

    Parameters
    ----------
    data : str
        The data set (``data.name``) it was trained on, and the title used in reports.
    title : str
        How reports and progress bars name the metric.
    path : Path
        The safetensors file, beside this module.
    sha256 : str
        Its SHA-256, printed by :mod:`~xae.evaluate.fid_train`.
    pixel_mean, pixel_std : float
        Of the training pixels; the net standardizes its inputs with them.
    test_accuracy : float
        On the official test split, printed by :mod:`~xae.evaluate.fid_train`.
    recipe : Recipe
        How it was trained (``fid_train``'s defaults for this data set).
    """

    data: str
    title: str
    path: Path
    sha256: str
    pixel_mean: float
    pixel_std: float
    test_accuracy: float
    recipe: Recipe = field(default_factory=Recipe)

    def build(self) -> LeNet:
        """A fresh (randomly initialized) LeNet with this data set's input standardization."""
        return LeNet(self.pixel_mean, self.pixel_std)

    @property
    def note(self) -> str:
        """What a report says about the metric: which net, and that it is not Inception FID."""
        return (f"{self.title}, the Fréchet distance of the features of xae's own {self.data} "
                f"classifier ({self.path.name}, test accuracy {self.test_accuracy:.4f}), is NOT "
                f"Inception FID: compare it only with {self.title} values")


_HERE = Path(__file__).parent

#: Data set name -> its feature net. Other (1, 28, 28) data are measured with MNIST's.
FEATURE_NETS: dict[str, FeatureNet] = {
    "mnist": FeatureNet(
        "mnist", "FID-LeNet", _HERE / "fid_lenet.safetensors",
        "501b27a49c775f9eba6c88342d0a1e88d7f5de2d69387988272b95788c0c0009",
        pixel_mean=0.1307, pixel_std=0.3081, test_accuracy=0.9919),
    "fashion-mnist": FeatureNet(
        "fashion-mnist", "FID-LeNet-Fashion", _HERE / "fid_lenet_fashion.safetensors",
        "0ff58dd182dc43bc11d7f577c534fa6ccb6ddb81794ad81dac7e611f3c11cc58",
        pixel_mean=0.2860, pixel_std=0.3530, test_accuracy=0.9095,
        recipe=Recipe(epochs=8, lr_decay=0.6)),
}


def feature_net(data: str) -> FeatureNet:
    """The feature net of data set ``data``: its own, else MNIST's (e.g. for user arrays)."""
    return FEATURE_NETS.get(data, FEATURE_NETS["mnist"])


def load_classifier(path: str | Path | None = None, device: str | torch.device = "cpu",
                    sha256: str | None = SHIPPED, data: str = "mnist") -> LeNet:
    """A trained classifier in eval mode, after checking the file's SHA-256.

    Parameters
    ----------
    path : str or Path, optional
        A safetensors file; the shipped weights of ``data``'s net by default.
    device : str or torch.device
        Where to put the classifier.
    sha256 : str or None
        The expected hex digest of the file: by default the shipped one of ``data``'s net;
        ``None`` skips the check (for freshly trained weights).
    data : str
        The data set whose net (input standardization, shipped file and hash) to use.

    Raises
    ------
    XaeError
        When the file is missing, its hash differs or it does not hold LeNet weights.
    """
    spec = feature_net(data)
    path = Path(path) if path is not None else spec.path
    sha256 = spec.sha256 if sha256 == SHIPPED else sha256
    fix = f"reinstall xae (or rerun `python -m xae.evaluate.fid_train --data {spec.data}`)"
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise XaeError(f"cannot read the {spec.title} weights '{path}' ({e}); {fix}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if sha256 is not None and digest != sha256:
        raise XaeError(f"the {spec.title} weights '{path}' are corrupt: SHA-256 {digest}, "
                       f"expected {sha256}; {fix}")
    with torch.device("meta"):  # no random initialization: it would use the global RNG
        net = spec.build()
    try:
        net.load_state_dict(load_safetensors(raw), assign=True)
    except (SafetensorError, RuntimeError, ValueError) as e:
        raise XaeError(f"'{path}' does not hold {spec.title} weights ({e}); {fix}") from None
    return net.to(device).eval()
