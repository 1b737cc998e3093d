"""``xae export RUN --format diffusers``: a run's nets and Gaussian code as a folder that
``diffusers.AutoencoderKL.from_pretrained`` loads.

The folder (``RUN/diffusers`` unless told otherwise) is written whole or not at all:

- ``config.json``: the ``AutoencoderKL`` config
  (:func:`~xae.nets.diffusers_layout.diffusers_config`), with ``scaling_factor = 1.0``.
- ``diffusion_pytorch_model.safetensors``: the weights
  (:func:`~xae.nets.diffusers_layout.to_diffusers_state_dict`), with the output map below
  folded into the decoder's ``conv_out``.
- ``xae_export.json``: what xae knows and diffusers does not (diffusers warns about unknown
  keys in its ``config.json``, so they live here): the data conventions, the likelihood, the
  scaling factor and why, and the largest differences between diffusers and xae on a test
  batch (when diffusers is installed).

Data conventions. diffusers' pipelines feed images in [−1, 1] and read the decoder's output in
[−1, 1]. The decoder's side is an affine map, which is folded exactly into ``conv_out``'s
weight and bias: for a likelihood whose θ is the image (``gaussian``, ``laplace`` and
``reconstruction``: the mean in xae's [0, 1]), ``decode(z).sample`` is 2θ − 1, the image in
[−1, 1]; for ``bernoulli`` it is θ itself, the logits (pixel probabilities sigmoid(θ), which
no affine map turns into an image). The encoder's side cannot be folded: conv_in's zero
padding does not map. So a run with ``model.diffusers.pixel_range = unit`` (the default) gives
an encoder that reads x in [0, 1] (from a diffusers image x', pass (x' + 1)/2), and a run with
``signed`` (e.g. an imported AutoencoderKL) one that reads diffusers' [−1, 1] images as they
are. ``xae_export.json`` and the CLI state which.

``scaling_factor`` is 1.0, not diffusers' default 0.18215 (which is Stable Diffusion's, and
would be wrong here): xae records no fitted latent scale for these runs, so none is claimed;
a diffusion model trained on the latents should set it to 1/std of its training latents. A run
made by ``xae import diffusers`` exports the ``scaling_factor``, ``shift_factor``,
``latents_mean``, ``latents_std`` and ``force_upcast`` it was imported with (its
``imported.json``), so an import and an export give back the same folder.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import torch

from xae.errors import XaeError
from xae.fileio import atomic_dir, replaceable_folder, save_tensors, write_json
from xae.model import Autoencoder, inference
from xae.nets.conv_map import to_map
from xae.nets.diffusers_layout import diffusers_config, to_diffusers_state_dict
from xae.runfiles import DIFFUSERS_CONFIG, DIFFUSERS_META, DIFFUSERS_WEIGHTS

FORMAT = "diffusers"
IMAGE = ("gaussian", "laplace", "reconstruction")  # θ is the image in [0, 1]
LOGITS = ("bernoulli",)  # θ are logits
SCALING_NOTE = ("1.0: xae records no fitted latent scale for this run, so the latents are "
                "not rescaled (diffusers' default 0.18215 is Stable Diffusion's); set it to "
                "1/std of the training latents for a diffusion model")
PARITY_BATCH = 3
PIPELINE: dict[str, Any] = {"scaling_factor": 1.0, "shift_factor": None, "latents_mean": None,
                            "latents_std": None, "force_upcast": True}
"""The keys a pipeline reads around the VAE (encode and decode do not), as exported when the
run knows none: no latent scaling, and float16 pipelines run the VAE in float32."""


def exportable(model: Autoencoder) -> None:
    """An XaeError saying what can be exported unless ``model`` can."""
    m = model.config.model
    if (m.encoder, m.decoder, m.bottleneck) != ("diffusers", "diffusers", "gaussian"):
        raise XaeError(f"--format diffusers exports AutoencoderKL, which needs "
                       f"model.encoder=diffusers, model.decoder=diffusers and "
                       f"model.bottleneck=gaussian; this run has encoder={m.encoder}, "
                       f"decoder={m.decoder}, bottleneck={m.bottleneck} (use --format onnx)")
    if m.likelihood not in IMAGE + LOGITS:
        raise XaeError(f"--format diffusers knows what the decoder's output means for the "
                       f"likelihoods {', '.join(IMAGE + LOGITS)}, not {m.likelihood}")


def conventions(model: Autoencoder) -> dict[str, Any]:
    """What the exported AutoencoderKL reads and returns, and the output map y = a·θ + b that
    is folded into ``conv_out`` (θ the xae decoder's parameters)."""
    exportable(model)
    m = model.config.model
    signed = m.diffusers.pixel_range == "signed"
    enc = ("x in [-1, 1], diffusers' images, as they are" if signed else
           "x in [0, 1], xae's images: from a diffusers image x' in [-1, 1], pass (x' + 1) / 2")
    if m.likelihood in IMAGE:
        a, b = 2.0, -1.0
        dec = (f"the image in [-1, 1], 2*theta - 1 of xae's theta (the {m.likelihood} "
               f"likelihood's mean in [0, 1]): xae's image is (y + 1) / 2")
    else:
        a, b = 1.0, 0.0
        dec = ("theta, the Bernoulli logits: the pixel probabilities are sigmoid(y), in [0, 1]; "
               "no affine map gives diffusers' [-1, 1] image")
    return {"pixel_range": m.diffusers.pixel_range, "encoder_input": enc,
            "decoder_output": dec, "output_map": {"scale": a, "shift": b}}


def _fold(model: Autoencoder, state: dict[str, torch.Tensor], a: float,
          b: float) -> dict[str, torch.Tensor]:
    """``state`` with y = a·θ + b folded into conv_out. conv_out gives u, and θ = u or, for
    ``pixel_range = signed``, (u + 1)/2; so y = a'·u + b' with exact scalings."""
    if model.decoder.signed:
        a, b = a / 2, a / 2 + b
    w, bias = "decoder.conv_out.weight", "decoder.conv_out.bias"
    return {**state, w: state[w] * a, bias: state[bias] * a + b}


def diffusers_files(model: Autoencoder, pipeline: dict[str, Any] | None = None
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The ``AutoencoderKL`` config and state dict of ``model`` (with the output map folded
    in), on the CPU. ``pipeline``: the keys a pipeline reads around the VAE (``scaling_factor``
    and the others of :data:`PIPELINE`) when known, e.g. kept from an import."""
    conv = conventions(model)
    state = {k: v.cpu() for k, v in to_diffusers_state_dict(model).items()}
    state = _fold(model, state, conv["output_map"]["scale"], conv["output_map"]["shift"])
    config = {"_class_name": "AutoencoderKL", **diffusers_config(model), **PIPELINE,
              **(pipeline or {})}
    return config, state


def parity(model: Autoencoder, folder: Path, seed: int = 0) -> dict[str, float] | None:
    """The largest |diffusers − xae| of the decoder's output and the posterior's mean and
    log-variance on a test batch, in the documented spaces; None without diffusers."""
    try:
        from diffusers import AutoencoderKL
    except ImportError:
        return None
    ref = AutoencoderKL.from_pretrained(str(folder), low_cpu_mem_usage=False).eval()
    conv = conventions(model)
    a, b = conv["output_map"]["scale"], conv["output_map"]["shift"]
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(PARITY_BATCH, *model.data_shape, generator=gen)
    z = torch.randn(PARITY_BATCH, *model.latent_shape, generator=gen)
    x_in = 2 * x - 1 if conv["pixel_range"] == "signed" else x
    with inference(model):
        theta = model.decode_params(z.permute(0, 2, 3, 1).flatten(1))
        q, grid = model.encode(x).posterior, model.encoder.grid
        theirs = ref.encode(x_in).latent_dist
        out = {"decoder": (ref.decode(z).sample - (a * theta + b)).abs().max(),
               "encoder_mean": (theirs.mean - to_map(q.mean, grid)).abs().max(),
               "encoder_logvar": (theirs.logvar - to_map(q.logvar, grid)).abs().max()}
    return {k: float(v) for k, v in out.items()}


def export_diffusers(model: Autoencoder, out_dir: str | Path, seed: int = 0,
                     protect: Iterable[str | Path] = (),
                     pipeline: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``config.json``, ``diffusion_pytorch_model.safetensors`` and ``xae_export.json``
    into ``out_dir``, replaced whole: it must be new, empty or an earlier diffusers export,
    and neither one of the run folders in ``protect`` nor a folder above one. ``pipeline``
    replaces :data:`PIPELINE`'s values (an imported run's own). Returns what
    ``xae_export.json`` holds."""
    exportable(model)
    unknown = sorted(set(pipeline or {}) - set(PIPELINE))
    if unknown:
        raise XaeError(f"{unknown} are not keys a pipeline reads around AutoencoderKL; those "
                       f"are {sorted(PIPELINE)}")
    out_dir = replaceable_folder(out_dir, "--out", DIFFUSERS_META, FORMAT, protect)
    model = model.cpu()
    config, state = diffusers_files(model, pipeline)
    cfg = model.config
    meta: dict[str, Any] = {
        "format": FORMAT, "model_class": "AutoencoderKL", "preset": cfg.preset,
        "likelihood": cfg.model.likelihood, **conventions(model),
        "data_shape": list(model.data_shape), "latent_shape": list(model.latent_shape),
        "scaling_factor": config["scaling_factor"],
        "scaling_factor_note": (f"{config['scaling_factor']}: the imported AutoencoderKL's "
                                f"own" if pipeline and "scaling_factor" in pipeline
                                else SCALING_NOTE),
        "files": {"config": DIFFUSERS_CONFIG, "weights": DIFFUSERS_WEIGHTS}}
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / DIFFUSERS_CONFIG, config)
        save_tensors(state, tmp / DIFFUSERS_WEIGHTS)
        diffs = parity(model, tmp, seed)
        if diffs is not None and not all(math.isfinite(v) for v in diffs.values()):
            raise XaeError(f"the exported AutoencoderKL gives non-finite outputs ({diffs}); "
                           f"the run's weights are not finite: check its training")
        meta["max_abs_diff"] = diffs
        write_json(tmp / DIFFUSERS_META, meta)
    return meta
