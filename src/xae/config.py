"""Dataclass configs: TOML/JSON in, JSON out, dotted overrides, and errors that suggest a fix.

A :class:`Config` holds everything needed to rebuild a model and repeat its training run.
Every field can be overridden with a dotted key (``model.latent_dim=2``); an unknown key is an
:class:`~xae.errors.XaeError` that names the nearest valid key (or, for a key of the flat layout
before per-piece sections, where it moved).

The model's settings are one section per registered piece, named by its registry name
(``model.mlp.hidden``, ``model.mog.components``): each is made from the piece's constructor
(:func:`xae.settings.section`), so adding a piece needs no edit here. :func:`from_saved` reads
configs saved in either layout.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from xae import checks as C
from xae import schedules
from xae.errors import XaeError
from xae.pieces import SECTIONS, TABLES
from xae.regularizers.kl import free_bits_on
from xae.settings import ScheduleConfig, key, table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class DataConfig:
    """Which data set, where it lives and how it is scaled; ``binarize`` ``static`` draws one
    fixed Bernoulli sample per pixel, ``dynamic`` a new one every time a batch is used."""

    name: str = key("digits", "the data set", table("xae.data", "SOURCES"))
    path: str = key("", "the .npy/.npz file of data.name=arrays")
    data_dir: str = key("", "the folder with the data files (mnist, fashion-mnist)")
    binarize: str = key("none", "Bernoulli draws of the pixels",
                        table("xae.data", "BINARIZE_MODES"))
    test_fraction: float = key(0.2, "the test split's share (sources without a fixed split)",
                               C.FRACTION)
    seed: int = key(0, "seed of the split (dsprites: of the sample) and of static "
                    "binarization", C.SEED)
    n: int = key(2000, "linear-gaussian, dsprites, synthetic-counts: number of training "
                 "samples (the test split adds round(n · test_fraction))",
                 C.between(2, C.INT_MAX))
    dim: int = key(20, "linear-gaussian: data dimension; synthetic-counts: genes", C.POSITIVE)
    true_latent_dim: int = key(2, "linear-gaussian, synthetic-counts: the true latent "
                               "dimension", C.POSITIVE)
    noise_std: float = key(0.5, "linear-gaussian: the observation noise σ", C.POSITIVE_FLOAT)
    factor_grid: list = key([3, 6, 40, 32, 32], "dsprites: how many values of shape (≤ 3), "
                            "scale, orientation, x, y, each ≥ 2 (dSprites' grid; a coarser one "
                            "for tests, e.g. [3, 2, 4, 8, 8])", C.each(C.POSITIVE))
    image_size: int = key(64, "dsprites: image height and width in pixels", C.between(8, 4096))
    cell_types: int = key(5, "synthetic-counts: cell types", C.POSITIVE)
    batches: int = key(1, "synthetic-counts: batches (each with its own gene effects)",
                       C.POSITIVE)
    layer: str = key("", "h5ad: the layer that holds the raw counts (default: .X)")
    batch_key: str = key("", "h5ad, pbmc: the cells' column naming their batch (a covariate)")
    label_key: str = key("", "h5ad, pbmc: the cells' column of cell types (default: cell_type "
                         "or bulk_labels when present)")
    vocab_size: int = key(10_002, "ptb, text: token ids in all, the 4 special tokens <pad> "
                          "<unk> <bos> <eos> included (10002 keeps PTB's 10k whole)",
                          C.POSITIVE)
    max_len: int = key(50, "ptb, text: words kept per sentence (longer ones are cut, with a "
                       "warning); a sentence is max_len + 1 ids with its <eos>", C.POSITIVE)


def _choice(kind: str, default: str, help: str) -> Any:
    """The key naming which piece of ``kind`` the model uses."""
    return key(default, help, C.one_of(TABLES[kind]))


@dataclass
class ModelCore:
    """The core of :class:`ModelConfig`: which piece of each kind (see docs/design.md:
    encoder → bottleneck → decoder → likelihood, with a regularizer towards a prior), the
    code's size and the data's shape."""

    encoder: str = _choice("encoder", "mlp", "the encoder network")
    decoder: str = _choice("decoder", "mlp", "the decoder network")
    latent_dim: int = key(16, "size of the code z", C.POSITIVE)
    bottleneck: str = _choice("bottleneck", "gaussian", "how x's features become z (vq, rvq, "
                             "fsq, lfq, gumbel: discrete codes, with prior = codes)")
    prior: str = _choice("prior", "normal", "p(z) (codes: for discrete bottlenecks)")
    regularizer: str = _choice("regularizer", "kl", "the rate term (mmd: WAE/InfoVAE; tc: "
                              "β-TCVAE)")
    likelihood: str = _choice("likelihood", "bernoulli", "p(x|z)")
    objective: str = _choice("objective", "elbo", "the training bound")
    critic: str = _choice("critic", "none", "judges the decoder's output (patchgan: the "
                          "adversarial loss of VQ-GAN and latent diffusion)")
    input_transform: str = key("none", "what the encoder sees: the data (none) or log1p of "
                               "it (counts, as scVI's encoder)",
                               table("xae.model", "INPUT_TRANSFORMS"))
    data_shape: list = key([], "the shape of one sample (filled in by build)",
                           C.each(C.POSITIVE))
    covariate: str = key("none", "a categorical covariate beside z in the decoder (and the "
                         "input in the encoder): batch (the data's data.batch_key, scVI's "
                         "batch correction) or label (a conditional VAE)",
                         table("xae.data.covariates", "COVARIATES"))
    covariate_encoder: bool = key(True, "the encoder also reads the covariate")
    covariate_levels: list = key([], "the covariate's level names (filled in by training)")
    library: str = key("observed", "counts: the library size ℓ in μ = ℓ·ρ is the cell's total "
                       "count (observed) or a latent with a log-normal prior per batch "
                       "(latent, scVI's option)", table("xae.library", "LIBRARIES"))


def _readers(name: str, sec: type) -> str:
    kinds = " and ".join(sec.readers)
    return f"settings of the {kinds} '{name}'"


ModelConfig = dataclasses.make_dataclass(
    "ModelConfig",
    [(name, sec, key(sec(), _readers(name, sec))) for name, sec in SECTIONS.items()],
    bases=(ModelCore,), namespace={
        "__module__": __name__,
        "__doc__": "The pieces of the autoencoder (:class:`ModelCore`) and one section per "
                   "registered piece with settings, named by its registry name "
                   "(``model.mlp.hidden``, ``model.mog.components``, ``model.vq.*``)."})


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
    beta1: float = key(0.9, "Adam's β1 for the model's parameters",
                       C.between(0.0, 1.0, hi_open=True))
    beta2: float = key(0.999, "Adam's β2 for the model's parameters",
                       C.between(0.0, 1.0, hi_open=True))
    grad_clip: float = key(100.0, "the largest gradient norm (0 = no clipping)",
                           C.NON_NEGATIVE_FLOAT)
    skip_grad_norm: float = key(0.0, "skip an update whose gradient norm (before clipping) "
                                "exceeds this, as VDVAE does against rare huge gradients "
                                "(0 = never)", C.NON_NEGATIVE_FLOAT)
    seed: int = key(0, "seed of the weights, batches and samples", C.SEED)
    device: str = key("cpu", "the training device", C.one_of(("cpu", "cuda")))
    threads: int = key(0, "CPU threads (0 = torch's default)", C.between(0, 4096))
    log_every: int = key(50, "steps per line of metrics.jsonl", C.POSITIVE)
    checkpoint_every: int = key(1000, "steps between checkpoints (and at the end)", C.POSITIVE)
    max_minutes: float = key(0.0, "stop at a step boundary, with a checkpoint, once the run's "
                             "training time (across resumes) reaches this (0 = no limit)",
                             C.NON_NEGATIVE_FLOAT)
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
                      table("xae.presets", "PRESETS"))
    data: DataConfig = key(DataConfig(), "the data")
    model: ModelConfig = key(ModelConfig(), "the model")
    beta: ScheduleConfig = key(ScheduleConfig(), "β, the weight of the rate term")
    train: TrainConfig = key(TrainConfig(), "training")

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _all_keys() -> list[str]:
    return [key for key, _, _ in _fields()]


def _unknown(key: str) -> XaeError:
    """An unknown key: where it moved, for a key of the flat layout before per-piece sections;
    else a suggestion when one is close (a typo, or the right leaf under another section:
    ``latent_dim`` → ``model.latent_dim``)."""
    from xae.config_legacy import moved  # the flat layout's keys (it imports this module)

    where = moved(key)
    if where:
        return XaeError(f"config key '{key}' moved to {where}: each piece's settings are in "
                        f"the section named by the piece (run `xae info --keys`)")
    keys = _all_keys()
    near = difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
    if not near:
        leaf = key.split(".")[-1]
        leaves = {k.split(".")[-1]: k for k in keys}
        close = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.8)
        near = [leaves[close[0]]] if close else []
    hint = f"; did you mean '{near[0]}'?" if near else ""
    return XaeError(f"unknown config key '{key}'{hint} (run `xae info --keys` for the full list)")


_EXAMPLES = {"int": "an integer like 16", "float": "a number like 0.5", "bool": "true or false",
             "list": "a list like [512, 256]"}


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Convert ``value`` (a parsed TOML/JSON value or a command-line string) to ``typ``."""
    origin = get_origin(typ)
    if origin in (Union, types.UnionType):  # e.g. float | list: the first type that fits
        for arm in get_args(typ):
            try:
                return _coerce(key, value, arm)
            except XaeError:
                pass
        said = " or ".join(_EXAMPLES.get(n := (get_origin(a) or a).__name__, n)
                           for a in get_args(typ))
        raise XaeError(f"config key '{key}' expects {said}, got {value!r}")
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
    raise XaeError(f"config key '{key}' expects {_EXAMPLES.get(name, name)}, got {value!r}")


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
    for dotted, value in updates.items():
        _set(cfg, dotted, value)
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


def _fields(cls: type = Config, prefix: str = "", sections: bool = False
            ) -> list[tuple[str, Any, dataclasses.Field]]:
    """(dotted key, type, field) of every leaf key, in order; with ``sections`` also of every
    section, before its keys."""
    out = []
    for f in dataclasses.fields(cls):
        t = _hints(cls)[f.name]
        if dataclasses.is_dataclass(t):
            out += [(f"{prefix}{f.name}", t, f)] * sections
            out += _fields(t, f"{prefix}{f.name}.", sections)
        else:
            out.append((f"{prefix}{f.name}", t, f))
    return out


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _check(dotted: str, f: dataclasses.Field, value: Any) -> None:
    check = f.metadata.get("check")
    problem = check(value) if check is not None else None
    if problem:
        raise XaeError(f"config key '{dotted}' {problem}")


def validate(cfg: Config) -> Config:
    """Check every value's type and range (and the few rules that tie keys together); return
    ``cfg``, or raise :class:`XaeError` naming the first bad key. Run once on every config
    that is read: from files and flags, from ``config.json``, or handed to :func:`xae.train`
    or :func:`xae.build`."""
    if not isinstance(cfg, Config):
        raise XaeError(f"a config must be an xae.Config, not {type(cfg).__name__}")
    entries = _fields(sections=True)
    for dotted, typ, f in entries:  # the types (a Config built in Python is unchecked)
        value = _get(cfg, dotted)
        if not dataclasses.is_dataclass(typ):
            _check(dotted, f, _coerce(dotted, value, typ))
        elif not isinstance(value, typ):
            raise XaeError(f"config key '{dotted}' is a section; set its keys, e.g. "
                           f"'{dotted}.{dataclasses.fields(typ)[0].name}', not {value!r}")
    for dotted, typ, f in entries:  # then the sections whole: schedules, and their checks
        if dataclasses.is_dataclass(typ):
            value = _get(cfg, dotted)
            if typ is ScheduleConfig:
                schedules.check(value, dotted)
            _check(dotted, f, value)
    m = cfg.model
    if "conv" in (m.encoder, m.decoder) and not m.conv.channels:
        raise XaeError("model.conv.channels is empty, but a conv encoder or decoder needs at "
                       "least one layer, e.g. model.conv.channels=[32, 64]")
    if m.rnn.word_dropout and m.decoder != "rnn":
        raise XaeError(f"model.rnn.word_dropout drops the inputs of the rnn decoder; this "
                       f"model's decoder is '{m.decoder}'"
                       + (": set model.transformer.word_dropout instead"
                          if m.decoder == "transformer" else ""))
    if free_bits_on(m.kl.free_bits) and m.regularizer != "kl":
        raise XaeError(f"model.kl.free_bits clips the KL of model.regularizer=kl per latent "
                       f"dimension or group; model.regularizer '{m.regularizer}' does not "
                       f"read it, so it would be ignored: set model.kl.free_bits=0"
                       + (" and use model.factor.free_bits" if m.regularizer == "factor"
                          else " or use model.regularizer=kl"))
    return cfg


def describe_keys() -> str:
    """Every key with its type, default, one line of help and what it accepts, each section
    under a heading with its help, for ``xae info --keys``."""
    default = Config()
    rows: list[tuple[str, ...]] = []
    for dotted, typ, f in _fields(sections=True):
        check = f.metadata.get("check")
        accepts = f" ({check.describe()})" if check is not None else ""
        help = f.metadata.get("help", "") + accepts
        if dataclasses.is_dataclass(typ):
            rows.append((f"[{dotted}]", help))
        else:
            rows.append((dotted, getattr(typ, "__name__", str(typ)),
                         json.dumps(_get(default, dotted)), help))
    keys = [r for r in rows if len(r) == 4]
    w = [max(len(r[i]) for r in keys) for i in range(3)]
    return "\n".join(f"\n{r[0]}  {r[1]}" if len(r) == 2 else
                     f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}"
                     for r in rows).lstrip("\n")
