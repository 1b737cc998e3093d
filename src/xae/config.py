"""Dataclass configs: TOML/JSON in, JSON out, dotted overrides, and errors that suggest a fix.

A :class:`Config` holds everything needed to rebuild a model and repeat its training run.
Every field can be overridden with a dotted key (``model.latent_dim=2``); an unknown key is an
:class:`~xae.errors.XaeError` that names the nearest valid key.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from xae.errors import XaeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class DataConfig:
    """Which data set, where it lives and how it is scaled.

    ``name`` is one of ``digits`` (scikit-learn's bundled 8x8 digits), ``mnist`` (IDX files),
    ``arrays`` (a user's ``.npy``/``.npz``, given by ``path``) or ``linear-gaussian`` (synthetic
    data from a known probabilistic-PCA model). ``binarize`` is ``none``, ``static`` (one fixed
    Bernoulli draw per pixel) or ``dynamic`` (a new draw every time a batch is used).
    """

    name: str = "digits"
    path: str = ""
    data_dir: str = ""
    binarize: str = "none"
    test_fraction: float = 0.2
    seed: int = 0
    n: int = 2000
    dim: int = 20
    true_latent_dim: int = 2
    noise_std: float = 0.5


@dataclass
class ScheduleConfig:
    """A schedule ``step -> value`` (see :mod:`xae.schedules`).

    ``kind`` is ``constant``, ``linear``, ``sigmoid``, ``cyclical`` or ``staged``. ``value`` is
    the final (or constant) value and ``start`` the initial one; ``warmup`` is the number of
    steps of the ramp; ``period`` and ``ratio`` shape the cyclical schedule; ``stages`` is a list
    of ``[step, value]`` pairs for the staged one.
    """

    kind: str = "constant"
    value: float = 1.0
    start: float = 0.0
    warmup: int = 1000
    period: int = 1000
    ratio: float = 0.5
    stages: list = field(default_factory=list)


@dataclass
class QuantizerConfig:
    """The discrete bottlenecks' settings (``model.bottleneck`` = ``vq``, ``rvq``, ``fsq``,
    ``lfq`` or ``gumbel``); each quantizer reads the keys it needs.

    The code z (``latent_dim`` values) is read as ``latent_dim / d`` positions of d values,
    each quantized to one of K codes: d = ``code_dim`` for VQ, residual VQ and Gumbel,
    ``len(levels)`` for FSQ (K = ∏ levels) and log2 ``codebook_size`` for LFQ.
    ``codebook_size`` is K (per stage for residual VQ). VQ: ``commitment`` is β_commit,
    ``ema`` updates the codebook by exponential moving averages with ``ema_decay`` instead of
    the codebook loss, ``kmeans_init`` seeds the codebook by k-means on the first training
    batch, ``restart_every`` > 0 re-seeds codes unused for that many training steps from
    encoder outputs, ``cosine`` l2-normalises codes and inputs. Residual VQ: ``stages``
    quantizers of kind ``stage_quantizer`` on successive residuals, with quantizer dropout
    (``stage_dropout``: each training sample keeps a random number of stages). LFQ:
    ``entropy_weight`` on (per-sample entropy − ``diversity_weight`` × codebook entropy), with
    soft code assignments at ``entropy_temperature``.
    Gumbel-softmax: ``temperature`` is a schedule over training steps, ``hard`` uses
    straight-through one-hot samples.
    """

    codebook_size: int = 1024
    code_dim: int = 16
    levels: list = field(default_factory=lambda: [8, 5, 5, 5])
    commitment: float = 0.25
    ema: bool = False
    ema_decay: float = 0.99
    kmeans_init: bool = True
    restart_every: int = 100
    cosine: bool = False
    stages: int = 4
    stage_quantizer: str = "vq"
    stage_dropout: bool = True
    entropy_weight: float = 0.1
    diversity_weight: float = 1.0
    entropy_temperature: float = 0.01
    temperature: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(
        kind="cosine", start=1.0, value=1.0 / 16, warmup=2000))
    hard: bool = False


@dataclass
class ModelConfig:
    """The pieces of the autoencoder (see DESIGN.md).

    ``encoder``/``decoder``: ``mlp`` or ``conv``. ``hidden`` are the MLP widths (empty for a
    linear map), ``channels`` the conv widths (each conv halves H and W). ``bottleneck``:
    ``deterministic``, ``gaussian``, or one of the discrete bottlenecks ``vq``, ``rvq``,
    ``fsq``, ``lfq``, ``gumbel`` (settings in ``quantizer``, see :class:`QuantizerConfig`;
    they need ``prior`` = ``codes``, the categorical prior over code indices).
    ``likelihood``: ``bernoulli``, ``gaussian`` or ``laplace``, with ``scale`` ``fixed`` (at ``sigma``), ``scalar`` or ``pixel`` (learned).
    ``regularizer``: ``kl``, ``mmd`` (WAE-MMD and InfoVAE: (1 − ``info_alpha``)·KL +
    (``info_alpha`` + ``info_lambda`` − 1)·MMD² with kernel ``mmd_kernel``, ``imq`` or ``rbf``),
    ``tc`` (β-TCVAE: MI + ``tc_weight``·TC + dimension-wise KL, by minibatch-weighted sampling
    over ``dataset_size`` training points, filled in by training) or ``none``;
    ``kl_estimator``: ``analytic`` (falls back to Monte Carlo when the prior has no closed
    form) or ``mc``. ``prior``: ``normal`` (N(0, I)), ``mog`` (a learned mixture of
    ``prior_components`` Gaussians), ``vamp`` (the VampPrior over ``prior_components``
    learned pseudo-inputs) or ``flow`` (a RealNVP stack of ``prior_layers`` couplings with
    ``prior_hidden`` units on N(0, I)) or ``codes`` (for discrete bottlenecks: uniform over
    each position's codes until ``xae prior fit`` learns an autoregressive one). ``objective``: ``elbo`` or
    ``iwae`` (the importance-weighted bound with ``iw_samples`` samples). ``free_bits`` is λ in nats per latent
    dimension. ``data_shape`` is filled in from the data when the model is built, so that a
    saved config rebuilds the model without the data.
    """

    encoder: str = "mlp"
    decoder: str = "mlp"
    hidden: list = field(default_factory=lambda: [512])
    channels: list = field(default_factory=lambda: [32, 64])
    activation: str = "relu"
    latent_dim: int = 16
    bottleneck: str = "gaussian"
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    prior: str = "normal"
    prior_components: int = 10
    prior_layers: int = 4
    prior_hidden: int = 128
    regularizer: str = "kl"
    mmd_kernel: str = "imq"
    info_alpha: float = 1.0
    info_lambda: float = 1.0
    tc_weight: float = 6.0
    dataset_size: int = 0
    kl_estimator: str = "analytic"
    likelihood: str = "bernoulli"
    scale: str = "fixed"
    sigma: float = 1.0
    objective: str = "elbo"
    iw_samples: int = 5
    free_bits: float = 0.0
    data_shape: list = field(default_factory=list)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. ``steps`` > 0 overrides ``epochs``; ``grad_clip`` 0 = off.

    The learning rate at a step is ``lr`` times ``lr_schedule``'s value (constant 1 by
    default; e.g. kind ``cosine``, start 1, value 0.05, warmup = the run's steps).
    """

    epochs: int = 10
    steps: int = 0
    batch_size: int = 100
    lr: float = 1e-3
    lr_schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(value=1.0))
    weight_decay: float = 0.0
    grad_clip: float = 100.0
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    log_every: int = 50
    checkpoint_every: int = 1000
    eval_batch_size: int = 1000
    figures: bool = True
    progress: bool = True


@dataclass
class Config:
    """Everything needed to rebuild a model and repeat its run."""

    preset: str = "vae"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    beta: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _all_keys(cls: type = Config, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        t = _hints(cls)[f.name]
        if dataclasses.is_dataclass(t):
            keys += _all_keys(t, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _unknown(key: str) -> XaeError:
    keys = _all_keys()
    near = difflib.get_close_matches(key, keys, n=1, cutoff=0.4)
    if not near:  # also match on the last part alone: "latent_dim" -> "model.latent_dim"
        leaf = key.split(".")[-1]
        near = [k for k in keys if k.split(".")[-1] == leaf][:1]
    hint = f"; did you mean '{near[0]}'?" if near else ""
    return XaeError(f"unknown config key '{key}'{hint} (run `xae info --keys` for the full list)")


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Convert ``value`` (a parsed TOML/JSON value or a command-line string) to ``typ``."""
    origin = get_origin(typ)
    if origin is Union:  # Optional[...] is not used; keep the first concrete type
        typ = get_args(typ)[0]
        origin = get_origin(typ)
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.replace("_", ""))
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if typ is list or origin is list:
            if isinstance(value, str):
                value = json.loads(value) if value.strip() else []
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return list(value)
    except (ValueError, TypeError, json.JSONDecodeError):
        pass
    else:
        return value
    name = getattr(typ, "__name__", str(typ))
    example = {"int": "an integer like 16", "float": "a number like 0.5",
               "bool": "true or false", "list": "a list like [512, 256]"}.get(name, name)
    raise XaeError(f"config key '{key}' expects {example}, got {value!r}")


def _set(cfg: Any, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    obj = cfg
    for i, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(obj)}
        if part not in fields:
            raise _unknown(dotted)
        typ = _hints(type(obj))[part]
        last = i == len(parts) - 1
        if dataclasses.is_dataclass(typ):
            if last:
                if not isinstance(value, dict):
                    raise XaeError(f"config key '{dotted}' is a section; set one of its keys, "
                                   f"e.g. '{dotted}.{dataclasses.fields(typ)[0].name}'")
                for k, v in value.items():
                    _set(cfg, f"{dotted}.{k}", v)
                return
            obj = getattr(obj, part)
        elif not last:
            raise _unknown(dotted)
        else:
            setattr(obj, part, _coerce(dotted, value, typ))


def apply(cfg: Config, updates: dict[str, Any]) -> Config:
    """Apply nested or dotted ``updates`` in place and return ``cfg``; errors name the key."""
    if not isinstance(updates, dict):
        raise XaeError(f"a config must be a table of keys, e.g. {{'model': {{'latent_dim': 2}}}}, "
                       f"not {type(updates).__name__}")
    for key, value in updates.items():
        _set(cfg, key, value)
    return cfg


def parse_overrides(items: list[str]) -> dict[str, str]:
    """Turn ``["model.latent_dim=2", "train.epochs=5"]`` into a dict; values stay strings."""
    out = {}
    for item in items:
        if "=" not in item:
            raise XaeError(f"override '{item}' is not of the form key=value, "
                           f"e.g. model.latent_dim=2")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def resolve_key(key: str) -> str:
    """A short key (``latent_dim``, ``epochs``) -> its dotted name, if it is unambiguous."""
    if "." in key:
        return key
    keys = _all_keys()
    if key in {f.name for f in dataclasses.fields(Config)}:
        return key
    matches = [k for k in keys if k.split(".")[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise XaeError(f"config key '{key}' is ambiguous: use one of {', '.join(matches)}")
    raise _unknown(key)


def read_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a nested dict."""
    p = Path(path)
    if not p.is_file():
        raise XaeError(f"config file '{p}' does not exist; pass a .toml or .json file")
    try:
        data = json.loads(p.read_text()) if p.suffix == ".json" else tomllib.loads(p.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise XaeError(f"config file '{p}' could not be parsed ({e}); fix its syntax") from None
    if not isinstance(data, dict):
        raise XaeError(f"config file '{p}' must hold a table of keys (e.g. {{\"model\": "
                       f"{{\"latent_dim\": 2}}}}), not a {type(data).__name__}")
    return data


def from_dict(d: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a (possibly partial) nested dict, checking every key."""
    return apply(Config(), d)


def all_keys() -> list[str]:
    """Every dotted config key, for ``xae info --keys`` and error hints."""
    return _all_keys()
