"""What the MNIST likelihood benchmarks share: the presets with their published figures, the
training keys every model gets, Burda et al.'s net for the one-layer models, and the test set.

One-layer presets (vae, iwae, vamp-vae, mog-vae, flow-prior-vae) all get Burda et al. (2016)'s
784-200-200-50 tanh MLP and a KL warm-up over the first 10 epochs. Hierarchical presets (a
bottleneck of ordered latent groups: ladder-vae, hvae) keep their own encoder, decoder, groups
and β warm-up. Every model gets the shared keys: dynamically binarized MNIST (all 60,000
training images, no held-out split), a Bernoulli likelihood, batch 100, Adam at lr 1e-3 with a
cosine decay to 1% over the planned run.
"""
from __future__ import annotations

from typing import Any

import xae
from xae.config import Config, apply
from xae.data import Dataset, load as load_data
from xae.errors import XaeError
from xae.registry import lookup

# preset -> (published NLL, target), None where no published figure fits the model
FIGURES: dict[str, tuple[float | None, float | None]] = {
    "vae": (86.76, 86.0), "iwae": (84.78, 84.5), "vamp-vae": (85.57, 85.5),
    "mog-vae": (None, None), "flow-prior-vae": (None, None),
    "ladder-vae": (81.74, 85.0),  # LVAE, Sønderby et al. 2016, Table 1
    "hvae": (78.01, 83.0),        # NVAE, Vahdat & Kautz 2020, Table 2
}
SHARED: dict[str, Any] = {
    "data.name": "mnist",
    "data.binarize": "dynamic",
    "model.likelihood": "bernoulli",
    "train.batch_size": 100,
    "train.lr": 1e-3,
    "train.lr_schedule.kind": "cosine",
    "train.lr_schedule.start": 1.0,
    "train.lr_schedule.value": 0.01,
    "train.eval_every": 0,          # all 60,000 training images, no evaluations in training time
    "train.eval_batch_size": 100,   # the end-of-run evaluation at the training batch's size
    "train.log_every": 3000,
    "train.checkpoint_every": 30000,
    "train.progress": False,
    "train.figures": False,
}
BURDA_NET: dict[str, Any] = {
    "model.mlp.hidden": [200, 200],
    "model.mlp.activation": "tanh",
    "model.latent_dim": 50,
    "beta.kind": "linear",          # KL warm-up from 0 to 1 over 10 epochs
    "beta.start": 0.0,
    "beta.value": 1.0,
    "beta.warmup": 6000,
}


def hierarchical(cfg: Config) -> bool:
    """Whether the config's bottleneck is a hierarchy of latent groups (own architecture)."""
    return bool(lookup("bottleneck", cfg.model.bottleneck).hierarchical)


def load_mnist() -> Dataset:
    """Dynamically binarized MNIST; its test set is one fixed Bernoulli draw."""
    return load_data(apply(Config(), {k: v for k, v in SHARED.items()
                                      if k.startswith("data.")}).data)


def bench_config(preset: str, epochs: int, data: Dataset, **train: Any) -> tuple[Config, int]:
    """The preset with the shared keys (and Burda's net unless it is hierarchical), trained
    for ``epochs`` (``train``: more train.* keys, e.g. device), and the planned run's steps,
    which are the cosine decay's horizon."""
    if preset not in FIGURES:
        xae.preset(preset)  # xae's own error for a preset it does not know
        raise XaeError(f"preset '{preset}' is not one of this benchmark's "
                       f"({', '.join(FIGURES)})")
    cfg = xae.preset(preset)  # xae's own error while a preset has not landed yet
    net = {} if hierarchical(cfg) else BURDA_NET
    apply(cfg, {**SHARED, **net, "train.epochs": epochs,
                **{f"train.{k}": v for k, v in train.items()}})
    steps = epochs * (data.train_x.shape[0] // cfg.train.batch_size)
    apply(cfg, {"train.lr_schedule.warmup": steps})
    return cfg, steps
