"""Dataclass configs: TOML/JSON in, JSON out, dotted overrides, and errors that suggest a fix.

A :class:`Config` holds everything needed to rebuild a model and repeat its training run.
Every field can be overridden with a dotted key (``model.latent_dim=2``); an unknown key is an
:class:`~xae.errors.XaeError` that names the nearest valid key.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from xae import checks as C
from xae.checks import Check
from xae.errors import XaeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def key(default: Any, help: str, check: Check | None = None) -> Any:
    """A config field: its default, one line of help and the check its values must pass
    (types are checked by :func:`_coerce`; ranges and choices by :func:`validate`)."""
    meta = {"help": help, "check": check}
    if isinstance(default, list) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


def _table(module: str, name: str, item: str | None = None) -> Check:
    """The names of a table that lives elsewhere (read when checked: no import cycle)."""
    def names() -> Any:
        table = getattr(importlib.import_module(module), name)
        return table[item] if item else table
    return C.one_of(names)


@dataclass
class DataConfig:
    """Which data set, where it lives and how it is scaled; ``binarize`` ``static`` draws one
    fixed Bernoulli sample per pixel, ``dynamic`` a new one every time a batch is used."""

    name: str = key("digits", "the data set", _table("xae.data", "SOURCES"))
    path: str = key("", "the .npy/.npz file of data.name=arrays")
    data_dir: str = key("", "the folder with the data files (mnist)")
    binarize: str = key("none", "Bernoulli draws of the pixels",
                        _table("xae.data", "BINARIZE_MODES"))
    test_fraction: float = key(0.2, "the test split's share (sources without a fixed split)",
                               C.FRACTION)
    seed: int = key(0, "seed of the split and of static binarization", C.SEED)
    n: int = key(2000, "linear-gaussian: number of samples", C.between(2, C.INT_MAX))
    dim: int = key(20, "linear-gaussian: data dimension", C.POSITIVE)
    true_latent_dim: int = key(2, "linear-gaussian: the true latent dimension", C.POSITIVE)
    noise_std: float = key(0.5, "linear-gaussian: the observation noise σ", C.POSITIVE_FLOAT)


@dataclass
class ScheduleConfig:
    """A schedule ``step -> value`` (see :mod:`xae.schedules`): ``start`` ramps to ``value``
    over ``warmup`` steps (linear, sigmoid, cosine), repeats every ``period`` steps ramping over
    its first ``ratio`` (cyclical), or follows ``stages`` pairs ``[step, value]`` (staged)."""

    kind: str = key("constant", "the schedule's shape", _table("xae.schedules", "SCHEDULES"))
    value: float = key(1.0, "the final (or constant) value", C.NON_NEGATIVE_FLOAT)
    start: float = key(0.0, "the initial value of a ramp", C.NON_NEGATIVE_FLOAT)
    warmup: int = key(1000, "steps of the ramp", C.NON_NEGATIVE)
    period: int = key(1000, "cyclical: steps per cycle", C.POSITIVE)
    ratio: float = key(0.5, "cyclical: share of a cycle spent ramping",
                       C.between(0.0, 1.0, lo_open=True))
    stages: list = key([], "staged: [step, value] pairs", C.STAGES)


@dataclass
class QuantizerConfig:
    """The discrete bottlenecks' settings (``model.bottleneck`` = ``vq``, ``rvq``, ``fsq``,
    ``lfq`` or ``gumbel``); each quantizer reads the keys it needs.

    The code z (``latent_dim`` values) is read as ``latent_dim / d`` positions of d values,
    each quantized to one of K codes: d = ``code_dim`` for VQ, residual VQ and Gumbel,
    ``len(levels)`` for FSQ (K = ∏ levels) and log2 ``codebook_size`` for LFQ.
    """

    codebook_size: int = key(1024, "K, codes per position (per stage for rvq)",
                             C.between(2, C.INT_MAX))
    code_dim: int = key(16, "d, values per code (vq, rvq, gumbel)", C.POSITIVE)
    levels: list = key([8, 5, 5, 5], "FSQ: levels per value (K = their product)",
                       C.each(C.between(2, 2**16), min_len=1))
    commitment: float = key(0.25, "VQ: the commitment weight β_commit", C.NON_NEGATIVE_FLOAT)
    ema: bool = key(False, "VQ: update the codebook by moving averages, not by its loss")
    ema_decay: float = key(0.99, "VQ: the moving averages' decay",
                           C.between(0.0, 1.0, hi_open=True))
    kmeans_init: bool = key(True, "VQ: seed the codebook by k-means on the first batch")
    restart_every: int = key(100, "VQ: re-seed codes unused this many steps (0 = never)",
                             C.NON_NEGATIVE)
    cosine: bool = key(False, "VQ: l2-normalised codes and inputs")
    stages: int = key(4, "residual VQ: number of stages", C.POSITIVE)
    stage_quantizer: str = key("vq", "residual VQ: the stages' quantizer (vq, fsq, lfq)")
    stage_dropout: bool = key(True, "residual VQ: each training sample keeps a random number "
                                    "of stages")
    entropy_weight: float = key(0.1, "LFQ: weight of (sample entropy − diversity × codebook "
                                     "entropy)", C.NON_NEGATIVE_FLOAT)
    diversity_weight: float = key(1.0, "LFQ: weight of the codebook entropy",
                                  C.NON_NEGATIVE_FLOAT)
    entropy_temperature: float = key(0.01, "LFQ: temperature of the soft assignments",
                                     C.POSITIVE_FLOAT)
    temperature: ScheduleConfig = key(
        ScheduleConfig(kind="cosine", start=1.0, value=1.0 / 16, warmup=2000),
        "Gumbel-softmax: the temperature over training steps")
    hard: bool = key(False, "Gumbel-softmax: straight-through one-hot samples")


@dataclass
class ModelConfig:
    """The pieces of the autoencoder (see docs/design.md): encoder → bottleneck → decoder →
    likelihood, with a regularizer towards a prior. Discrete bottlenecks (vq, rvq, fsq, lfq,
    gumbel) take their settings from ``quantizer`` and need ``prior`` = ``codes``."""

    encoder: str = key("mlp", "the encoder network", _table("xae.registry", "TABLES", "encoder"))
    decoder: str = key("mlp", "the decoder network", _table("xae.registry", "TABLES", "decoder"))
    hidden: list = key([512], "MLP hidden widths (empty: a linear map)", C.each(C.POSITIVE))
    channels: list = key([32, 64], "conv widths, each conv halving H and W",
                         C.each(C.POSITIVE))
    activation: str = key("relu", "the nets' activation",
                          _table("xae.nets.common", "ACTIVATIONS"))
    latent_dim: int = key(16, "size of the code z", C.POSITIVE)
    bottleneck: str = key("gaussian", "how x's features become z",
                          _table("xae.registry", "TABLES", "bottleneck"))
    quantizer: QuantizerConfig = key(QuantizerConfig(), "the discrete bottlenecks' settings")
    prior: str = key("normal", "p(z) (codes: for discrete bottlenecks)",
                     _table("xae.registry", "TABLES", "prior"))
    prior_components: int = key(10, "mog: components; vamp: pseudo-inputs", C.POSITIVE)
    prior_layers: int = key(4, "flow: RealNVP couplings", C.POSITIVE)
    prior_hidden: int = key(128, "flow: hidden units per coupling", C.POSITIVE)
    regularizer: str = key("kl", "the rate term (mmd: WAE/InfoVAE; tc: β-TCVAE)",
                           _table("xae.registry", "TABLES", "regularizer"))
    mmd_kernel: str = key("imq", "mmd: the kernel", C.one_of(("imq", "rbf")))
    info_alpha: float = key(1.0, "mmd: InfoVAE's α in (1 − α)·KL + (α + λ − 1)·MMD²",
                            C.FINITE)
    info_lambda: float = key(1.0, "mmd: InfoVAE's λ", C.FINITE)
    tc_weight: float = key(6.0, "tc: weight of the total correlation", C.NON_NEGATIVE_FLOAT)
    dataset_size: int = key(0, "tc: training set size (filled in by training)",
                            C.NON_NEGATIVE)
    kl_estimator: str = key("analytic", "the KL: analytic (Monte Carlo where no closed form) or mc",
                            C.one_of(("analytic", "mc")))
    likelihood: str = key("bernoulli", "p(x|z)", _table("xae.registry", "TABLES", "likelihood"))
    scale: str = key("fixed", "gaussian/laplace scale: fixed (at sigma) or learned",
                     C.one_of(("fixed", "scalar", "pixel")))
    sigma: float = key(1.0, "the fixed scale of a gaussian/laplace likelihood",
                       C.POSITIVE_FLOAT)
    objective: str = key("elbo", "the training bound", _table("xae.registry", "TABLES", "objective"))
    iw_samples: int = key(5, "iwae: importance samples K", C.between(1, 10_000))
    free_bits: float = key(0.0, "λ, nats per latent dimension below which the KL is not "
                                "penalised", C.NON_NEGATIVE_FLOAT)
    data_shape: list = key([], "the shape of one sample (filled in by training)",
                           C.each(C.POSITIVE))


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. The learning rate at a step is ``lr`` times
    ``lr_schedule``'s value at that step."""

    epochs: int = key(10, "passes over the training set (unless steps > 0)", C.POSITIVE)
    steps: int = key(0, "training steps; 0 = from epochs", C.NON_NEGATIVE)
    batch_size: int = key(100, "samples per step", C.POSITIVE)
    lr: float = key(1e-3, "Adam's learning rate", C.POSITIVE_FLOAT)
    lr_schedule: ScheduleConfig = key(ScheduleConfig(value=1.0),
                                      "a multiplier of lr over the steps")
    weight_decay: float = key(0.0, "Adam's (L2) weight decay", C.NON_NEGATIVE_FLOAT)
    grad_clip: float = key(100.0, "the largest gradient norm (0 = no clipping)",
                           C.NON_NEGATIVE_FLOAT)
    seed: int = key(0, "seed of the weights, batches and samples", C.SEED)
    device: str = key("cpu", "the training device", C.one_of(("cpu", "cuda")))
    threads: int = key(0, "CPU threads (0 = torch's default)", C.between(0, 4096))
    log_every: int = key(50, "steps per line of metrics.jsonl", C.POSITIVE)
    checkpoint_every: int = key(1000, "steps between checkpoints (and at the end)", C.POSITIVE)
    eval_every: int = key(500, "steps between held-out evaluations (0 = none)", C.NON_NEGATIVE)
    eval_split: str = key("validation", "held out for those evaluations (validation: a share "
                          "of the training set)", C.one_of(("validation", "test")))
    validation_fraction: float = key(0.1, "the validation share of the training set "
                                          "(eval_split=validation)", C.FRACTION)
    eval_samples: int = key(2000, "held-out samples per evaluation (at most)", C.POSITIVE)
    eval_batch_size: int = key(1000, "samples per batch in evaluations", C.POSITIVE)
    figures: bool = key(True, "draw the figures at the end")
    progress: bool = key(True, "show a progress bar")


@dataclass
class Config:
    """Everything needed to rebuild a model and repeat its run."""

    preset: str = key("vae", "the preset this config started from",
                      _table("xae.presets", "PRESETS"))
    data: DataConfig = key(DataConfig(), "the data")
    model: ModelConfig = key(ModelConfig(), "the model")
    beta: ScheduleConfig = key(ScheduleConfig(), "β, the weight of the rate term")
    train: TrainConfig = key(TrainConfig(), "training")

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _all_keys() -> list[str]:
    return [key for key, _, _ in _fields()]


def _unknown(key: str) -> XaeError:
    """An unknown key, with a suggestion only when one is close (a typo, or the right leaf
    under another section: ``latent_dim`` → ``model.latent_dim``)."""
    keys = _all_keys()
    near = difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
    if not near:
        leaf = key.split(".")[-1]
        leaves = {k.split(".")[-1]: k for k in keys}
        close = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.8)
        near = [leaves[close[0]]] if close else []
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
    except (ValueError, TypeError, json.JSONDecodeError, RecursionError):
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
    if p.suffix.lower() not in (".toml", ".json"):
        raise XaeError(f"config file '{p}' must be a .toml or .json file (it is read by its "
                       f"ending); rename it")
    try:
        text = p.read_text()
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise XaeError(f"config file '{p}' could not be parsed ({e}); fix its syntax") from None
    except RecursionError:
        raise XaeError(f"config file '{p}' is nested too deeply to be a config; a config is "
                       f"a few tables deep (run `xae info --keys`)") from None
    except OSError as e:
        raise XaeError(f"config file '{p}' cannot be read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise XaeError(f"config file '{p}' must hold a table of keys (e.g. {{\"model\": "
                       f"{{\"latent_dim\": 2}}}}), not a {type(data).__name__}")
    return data


def from_dict(d: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a (possibly partial) nested dict, checking every key and
    value."""
    return validate(apply(Config(), d))


def all_keys() -> list[str]:
    """Every dotted config key, for error hints."""
    return _all_keys()


def _fields(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field]]:
    """(dotted key, type, field) of every leaf key, in order."""
    out = []
    for f in dataclasses.fields(cls):
        t = _hints(cls)[f.name]
        if dataclasses.is_dataclass(t):
            out += _fields(t, f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", t, f))
    return out


def validate(cfg: Config) -> Config:
    """Check every value's type and range (and the few rules that tie keys together); return
    ``cfg``, or raise :class:`XaeError` naming the first bad key. Run once on every config
    that is read: from files and flags, from ``config.json``, or handed to :func:`xae.train`."""
    if not isinstance(cfg, Config):
        raise XaeError(f"a config must be an xae.Config, not {type(cfg).__name__}")
    for dotted, typ, f in _fields():
        obj = cfg
        for part in dotted.split("."):
            obj = getattr(obj, part)
        value = _coerce(dotted, obj, typ)  # the type (a Config built in Python is unchecked)
        check = f.metadata.get("check")
        problem = check(value) if check is not None else None
        if problem:
            raise XaeError(f"config key '{dotted}' {problem}")
    from xae import schedules

    for name, sched in [("beta", cfg.beta), ("train.lr_schedule", cfg.train.lr_schedule),
                        ("model.quantizer.temperature", cfg.model.quantizer.temperature)]:
        schedules.check(sched, name)
    m = cfg.model
    if "conv" in (m.encoder, m.decoder) and not m.channels:
        raise XaeError("model.channels is empty, but a conv encoder or decoder needs at least "
                       "one layer, e.g. model.channels=[32, 64]")
    return cfg


def describe_keys() -> str:
    """Every key with its type, default and one line of help, for ``xae info --keys``."""
    default = Config()
    rows = []
    for dotted, typ, f in _fields():
        value = default
        for part in dotted.split("."):
            value = getattr(value, part)
        check = f.metadata.get("check")
        accepts = f" ({check.describe()})" if check is not None else ""
        rows.append((dotted, getattr(typ, "__name__", str(typ)), json.dumps(value),
                     f.metadata.get("help", "") + accepts))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{k:<{w[0]}}  {t:<{w[1]}}  {d:<{w[2]}}  {h}" for k, t, d, h in rows)
