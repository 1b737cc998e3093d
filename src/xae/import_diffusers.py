"""``xae import diffusers DIR --out RUN``: a diffusers ``AutoencoderKL`` folder (its
``config.json`` and ``diffusion_pytorch_model.safetensors``, as ``save_pretrained`` or
``xae export --format diffusers`` write them) as an xae run folder that :func:`xae.load` and
``xae eval`` read. No diffusers import is needed.

The run's model: ``model.encoder = model.decoder = diffusers`` with the folder's
``block_out_channels``, ``layers_per_block``, ``latent_channels``, ``norm_num_groups`` and
``mid_block_add_attention``; data of shape (``in_channels``, ``sample_size``,
``sample_size``); ``model.bottleneck = gaussian`` (its per-position map is ``quant_conv``),
``model.regularizer = kl`` against N(0, I); ``model.diffusers.pixel_range = signed``, so the
encoder of x in [0, 1] is diffusers' encoder of 2x − 1 and θ = (y + 1)/2 of diffusers'
decoded y: the same functions, in xae's data space. The likelihood is ``reconstruction`` with
no perceptual term (``perceptual = none``, weight 0): θ is the image, and no density is
claimed for a model trained with an unknown loss, so ``xae eval`` reports distances (MSE, PSNR,
SSIM) and the rate, not an ELBO. β is the ``vae`` preset's 1.

AutoencoderKL's keys, and what becomes of them:

- read into the config: ``in_channels``, ``sample_size`` (an integer or [H, W]),
  ``block_out_channels``, ``layers_per_block``, ``latent_channels``, ``norm_num_groups``,
  ``mid_block_add_attention``;
- must have the one value xae computes, else an error (each changes encode or decode):
  ``out_channels`` = ``in_channels``, every ``down_block_types`` ``DownEncoderBlock2D``, every
  ``up_block_types`` ``UpDecoderBlock2D`` (one per width), ``act_fn`` ``silu``,
  ``use_quant_conv`` and ``use_post_quant_conv`` true;
- ignored, because encode and decode do not read them (they are for a pipeline around the
  VAE), and kept in ``imported.json``, from which ``xae export --format diffusers`` writes
  them back: ``scaling_factor``, ``shift_factor``, ``latents_mean``, ``latents_std`` (the
  latents' normalisation for a diffusion model) and ``force_upcast`` (float16 pipelines run
  the VAE in float32; xae always does);
- keys that start with ``_`` are diffusers' bookkeeping (``_class_name`` must be
  ``AutoencoderKL``); any other key is an error, since xae cannot know what it changes.

A missing key takes AutoencoderKL's default, as ``from_pretrained`` does.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file

from xae.config import Config, apply, validate
from xae.errors import XaeError
from xae.export_diffusers import PIPELINE
from xae.fileio import atomic_dir, replaceable_folder, save_safetensors, write_json
from xae.presets import preset
from xae.runfiles import CONFIG, DIFFUSERS_CONFIG, DIFFUSERS_WEIGHTS, IMPORTED, WEIGHTS

FORMAT = "diffusers-import"
DEFAULTS: dict[str, Any] = {  # AutoencoderKL.__init__'s defaults (diffusers 0.42)
    "in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D"], "block_out_channels": [64],
    "layers_per_block": 1, "act_fn": "silu", "latent_channels": 4, "norm_num_groups": 32,
    "sample_size": 32, "use_quant_conv": True, "use_post_quant_conv": True,
    "mid_block_add_attention": True}
IGNORED = tuple(PIPELINE)  # read by a pipeline around the VAE, not by encode or decode
LIKELIHOOD = {"model.likelihood": "reconstruction", "model.reconstruction.perceptual": "none",
              "model.reconstruction.perceptual_weight": 0.0}


def read_config(folder: Path) -> dict[str, Any]:
    """The folder's AutoencoderKL config, or an error saying what the folder is instead."""
    path = folder / DIFFUSERS_CONFIG
    if not folder.is_dir():
        raise XaeError(f"'{folder}' is not a folder; pass the folder that AutoencoderKL's "
                       f"save_pretrained wrote")
    if not path.is_file():
        vae = " (a pipeline keeps its VAE in vae/: pass that folder)" \
            if (folder / "vae" / DIFFUSERS_CONFIG).is_file() else ""
        raise XaeError(f"'{folder}' has no {DIFFUSERS_CONFIG}, so it is not a diffusers model "
                       f"folder{vae}")
    try:
        cfg = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise XaeError(f"{path} cannot be read as JSON ({type(e).__name__}); restore it or "
                       f"save the model again with save_pretrained") from None
    if not isinstance(cfg, dict):
        raise XaeError(f"{path} is not a diffusers config (a JSON object)")
    name = cfg.get("_class_name")
    if name != "AutoencoderKL":
        what = ("an xae run's config: it is already a run folder" if "model" in cfg else
                f"the config of a {name}" if isinstance(name, str) else
                "a config that names no diffusers class (_class_name)")
        raise XaeError(f"{path} is {what}; xae imports only diffusers' AutoencoderKL "
                       f"(_class_name \"AutoencoderKL\")")
    return cfg


def _int(cfg: dict[str, Any], key: str) -> int:
    v = cfg[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise XaeError(f"AutoencoderKL's {key} must be a positive integer, got {v!r}")
    return v


def _require(cfg: dict[str, Any], key: str, ok: bool, what: str) -> None:
    if not ok:
        raise XaeError(f"AutoencoderKL's {key} = {cfg[key]!r}, but xae's diffusers nets "
                       f"compute only {what}; this model cannot be imported")


def xae_config(raw: dict[str, Any], data: dict[str, Any]) -> tuple[Config, dict[str, Any]]:
    """The xae config of the AutoencoderKL config ``raw`` (with the ``data.*`` settings
    ``data``), and the ignored keys with their values."""
    unknown = sorted(k for k in raw if not k.startswith("_") and k not in DEFAULTS
                     and k not in IGNORED)
    if unknown:
        raise XaeError(f"AutoencoderKL config keys {unknown} are unknown to xae, which cannot "
                       f"tell whether they change encode or decode; they cannot be imported")
    cfg = {**DEFAULTS, **{k: v for k, v in raw.items() if k in DEFAULTS}}
    chans = cfg["block_out_channels"]
    if not (isinstance(chans, list) and chans and all(isinstance(c, int) and not
                                                      isinstance(c, bool) for c in chans)):
        raise XaeError(f"AutoencoderKL's block_out_channels must be a list of integers, got "
                       f"{chans!r}")
    n = len(chans)
    _require(cfg, "down_block_types", cfg["down_block_types"] == ["DownEncoderBlock2D"] * n,
             f"{n} × DownEncoderBlock2D, one per width of block_out_channels")
    _require(cfg, "up_block_types", cfg["up_block_types"] == ["UpDecoderBlock2D"] * n,
             f"{n} × UpDecoderBlock2D, one per width of block_out_channels")
    _require(cfg, "act_fn", cfg["act_fn"] == "silu", "silu")
    for key in ("use_quant_conv", "use_post_quant_conv"):
        _require(cfg, key, cfg[key] is True, "true (the 1×1 convolutions around the code)")
    channels = _int(cfg, "in_channels")
    _require(cfg, "out_channels", cfg["out_channels"] == channels,
             f"in_channels = {channels} (the decoder gives the image)")
    _require(cfg, "mid_block_add_attention", isinstance(cfg["mid_block_add_attention"], bool),
             "true or false")
    size = cfg["sample_size"]
    hw = size if isinstance(size, list) and len(size) == 2 else [size, size]
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in hw):
        raise XaeError(f"AutoencoderKL's sample_size must be a positive integer or [H, W], "
                       f"got {size!r}")
    latent, f = _int(cfg, "latent_channels"), 2 ** (n - 1)
    if hw[0] % f or hw[1] % f:
        raise XaeError(f"AutoencoderKL's sample_size {size} is not divisible by {f}, the "
                       f"downsampling of its {n} blocks; its latent grid is not defined")
    out = apply(preset("vae"), {
        "model.encoder": "diffusers", "model.decoder": "diffusers",
        "model.bottleneck": "gaussian", "model.regularizer": "kl", "model.prior": "normal",
        **LIKELIHOOD, "model.diffusers.block_out_channels": chans,
        "model.diffusers.layers_per_block": _int(cfg, "layers_per_block"),
        "model.diffusers.latent_channels": latent,
        "model.diffusers.norm_num_groups": _int(cfg, "norm_num_groups"),
        "model.diffusers.mid_block_add_attention": cfg["mid_block_add_attention"],
        "model.diffusers.pixel_range": "signed",
        "model.latent_dim": latent * (hw[0] // f) * (hw[1] // f),
        "model.data_shape": [channels, *hw]})
    bad = [k for k in data if not k.startswith("data.")]
    if bad:
        raise XaeError(f"--set takes only data.* keys here (the data `xae eval` uses), "
                       f"got {bad}")
    # no data named: arrays without a file, so `xae eval` says to name one (never the digits)
    apply(out, {"data.name": "arrays", "data.path": ""})
    return validate(apply(out, data)), {k: raw[k] for k in IGNORED if k in raw}


def read_weights(folder: Path) -> dict[str, Any]:
    """The folder's safetensors weights (never a pickle), or an error."""
    path = folder / DIFFUSERS_WEIGHTS
    if not path.is_file():
        found = sorted(p.name for p in folder.iterdir() if p.name != DIFFUSERS_CONFIG)
        raise XaeError(f"'{folder}' has no {DIFFUSERS_WEIGHTS} (it holds {found or 'nothing'}"
                       f"); xae reads only safetensors, never pickles: load the model in "
                       f"diffusers and save_pretrained it again (safetensors by default)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise XaeError(f"{path} is corrupt or not a safetensors file ({e})") from None


def import_diffusers(folder: str | Path, out_dir: str | Path,
                     data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the run folder ``out_dir`` (new or empty, written whole or not at all) from the
    AutoencoderKL in ``folder``; ``data`` are ``data.*`` settings for the run's config (the
    data ``xae eval`` reads, whose shape must be the model's). Returns what ``imported.json``
    holds."""
    from xae.data import load
    from xae.nets.diffusers_layout import from_diffusers_state_dict
    from xae.registry import build

    folder = Path(folder)
    cfg, ignored = xae_config(read_config(folder), dict(data or {}))
    target = replaceable_folder(out_dir, "--out", IMPORTED, FORMAT, [folder])
    state = read_weights(folder)
    model = build(cfg)
    try:
        from_diffusers_state_dict(model, state)
    except XaeError as e:  # its advice (build the model with that config) is done already
        reason = str(e).split("; build")[0]
        raise XaeError(f"{folder / DIFFUSERS_WEIGHTS} does not match its {DIFFUSERS_CONFIG}: "
                       f"{reason} (weights with the attention names of old diffusers "
                       f"versions load in diffusers: save_pretrained them again)") from None
    if data:
        shape = tuple(load(cfg.data).shape)
        if shape != tuple(model.data_shape):
            raise XaeError(f"the data of --set ({cfg.data.name}) are shaped {shape}, but this "
                           f"AutoencoderKL reads {tuple(model.data_shape)} (in_channels, "
                           f"sample_size); give images of that shape")
    meta = {"format": FORMAT, "source": str(folder.resolve()), "model_class": "AutoencoderKL",
            "pixel_range": "signed: xae's encoder reads x in [0, 1] and feeds 2x - 1 to "
                           "diffusers' layers; theta = (y + 1) / 2 of diffusers' decoded y",
            "likelihood": "reconstruction with no perceptual term: a loss, no density",
            "data_shape": list(model.data_shape), "ignored": ignored,
            "ignored_why": "not read by encode or decode (a pipeline's latent scaling and "
                           "float16 upcasting)"}
    with atomic_dir(target) as tmp:
        (tmp / CONFIG).write_text(model.config.to_json() + "\n")
        save_safetensors(model, tmp / WEIGHTS, {"format": "xae"})
        write_json(tmp / IMPORTED, meta)
    return meta


def pipeline_keys(run_dir: str | Path) -> dict[str, Any] | None:
    """The pipeline keys (``scaling_factor``, …) a run was imported with, from its
    ``imported.json``; None for a run that was not imported."""
    path = Path(run_dir) / IMPORTED
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise XaeError(f"{path} cannot be read ({type(e).__name__}); restore it, or delete it "
                       f"to export without the imported scaling_factor") from None
    kept = meta.get("ignored") if isinstance(meta, dict) else None
    if not (isinstance(kept, dict) and set(kept) <= set(IGNORED)):
        raise XaeError(f"{path} is not what `xae import diffusers` writes; restore it, or "
                       f"delete it to export without the imported scaling_factor")
    return kept
