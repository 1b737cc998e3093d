"""``xae export RUN --format onnx``: a run's decoder and encoder as ONNX graphs.

- ``decoder.onnx``: z (B, D) → the mean of p(x|z) in data space (B, *data_shape), what
  :meth:`Autoencoder.decode` returns (e.g. pixel probabilities for a Bernoulli likelihood).
- ``encoder.onnx``: x (B, *data_shape) → the latent mean (B, D), what
  :meth:`Autoencoder.latent_mean` returns (the posterior mean of a Gaussian, the code of a
  deterministic or discrete bottleneck).
- ``export.json``: the shapes, the run's preset and latent size, the opset, and the largest
  difference between each graph run by onnxruntime and the model in torch on a test batch
  (when onnxruntime is installed).

The batch dimension is dynamic. The folder (``RUN/export`` unless told otherwise) is written
whole or not at all. These graphs are what the latent explorer runs in the browser.
"""
from __future__ import annotations

import logging
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from xae.errors import XaeError
from xae.fileio import atomic_dir, replaceable_folder, write_json
from xae.model import Autoencoder, inference
from xae.runfiles import CONFIG, DECODER_ONNX, ENCODER_ONNX, EXPORT_META

log = logging.getLogger(__name__)
FORMATS = ("onnx", "diffusers")  # diffusers: xae.export_diffusers
OPSET = 17
PARITY_BATCH = 7  # ≠ the batch traced at export, so the dynamic batch axis is exercised


class Method(nn.Module):
    """One of the model's methods (``decode``, ``latent_mean``) as a module to trace."""

    def __init__(self, model: Autoencoder, method: str) -> None:
        super().__init__()
        self.model, self.method = model, method

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.method)(t)


def _graph(module: nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str]) -> None:
    with warnings.catch_warnings():  # the TorchScript exporter warns that it is the old one
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=[names[0]],
                          output_names=[names[1]], opset_version=OPSET, dynamo=False,
                          dynamic_axes={names[0]: {0: "batch"}, names[1]: {0: "batch"}})


def _parity(path: Path, module: nn.Module, example: torch.Tensor) -> float | None:
    """The largest |onnxruntime − torch| on ``example``, or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = torch.from_numpy(session.run(None, {name: example.numpy()})[0])
    return float((got - module(example)).abs().max())


def graph_bytes(module: nn.Module, width: int, names: tuple[str, str], what: str,
                tol: float = 1e-4) -> bytes:
    """``module`` (B, ``width``) → (B, ·), in eval mode, as the bytes of an ONNX graph exported
    as the decoder is (opset, dynamic batch), checked by onnxruntime (where installed) on
    seeded N(0, I) rows: an XaeError naming ``what`` when they differ by more than ``tol``.
    For the explorer's extra graphs (a flow prior's transform, a hierarchy's descent)."""
    require_onnx()
    example = torch.randn(PARITY_BATCH, width, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = Path(tmp) / "graph.onnx"
        _graph(module, torch.zeros(1, width), path, names)
        diff = _parity(path, module, example)
        if diff is not None and not (math.isfinite(diff) and diff <= tol):
            raise XaeError(f"{what}'s ONNX graph differs from torch by {diff:g}; the weights "
                           "are broken: check the run's training")
        return path.read_bytes()


def require_onnx() -> None:
    """An :class:`XaeError` saying how to install the ``onnx`` package when it is missing (the
    core install, ``make demo``, lacks it)."""
    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it
    except ImportError:
        raise XaeError("exporting to ONNX needs the onnx package, which is not installed; run "
                       "`make web` in the xae checkout, or pip install 'xae[web]'") from None


def export_onnx(model: Autoencoder, out_dir: str | Path, example: torch.Tensor | None = None,
                seed: int = 0, protect: Iterable[str | Path] = ()) -> dict[str, Any]:
    """Write ``decoder.onnx``, ``encoder.onnx`` and ``export.json`` into ``out_dir``, which is
    replaced whole: it must be new, empty or an earlier export, and neither one of the run
    folders in ``protect`` nor a folder above one.

    ``example`` is a batch of data for the encoder's parity check (uniform noise in [0, 1] of
    the data's shape if None); the decoder is checked on z ~ N(0, I). Returns what
    ``export.json`` holds.
    """
    require_onnx()
    if model.conditional:
        raise XaeError("this run's decoder is autoregressive (it writes a sentence word by "
                       "word, reading the words before each one), and the ONNX export covers "
                       "decoders z → x in one pass, so neither `xae export` nor the explorer "
                       "(which runs the export in the page) applies to it; use `xae sample`, "
                       "`xae reconstruct` and `xae interpolate`")
    if model.covariates:
        raise XaeError(f"this run is conditioned on its {model.config.model.covariate} (model."
                       "covariate): its decoder reads a level beside z, and the ONNX export "
                       "covers decoders z → x, so neither `xae export` nor the explorer applies "
                       "to it; use `xae sample --level` and `xae reconstruct`")
    out_dir = replaceable_folder(out_dir, "--out", EXPORT_META, "onnx", protect)
    model = model.cpu()
    shape, d = tuple(model.data_shape), model.latent_dim
    gen = torch.Generator().manual_seed(seed)
    x = example[:PARITY_BATCH].cpu().float() if example is not None else \
        torch.rand(PARITY_BATCH, *shape, generator=gen)
    z = torch.randn(PARITY_BATCH, d, generator=gen)
    cfg = model.config
    meta: dict[str, Any] = {
        "format": "onnx", "opset": OPSET, "latent_dim": d, "data_shape": list(shape),
        "preset": getattr(cfg, "preset", None),
        "bottleneck": cfg.model.bottleneck if cfg is not None else None,
        "decoder": {"file": DECODER_ONNX, "input": "z", "output": "x_mean"},
        "encoder": {"file": ENCODER_ONNX, "input": "x", "output": "z_mean"},
    }
    try:
        with inference(model), atomic_dir(out_dir) as tmp:  # model.training is restored
            # the exporter puts each wrapper back in its own mode, and the model with it
            decode, encode = Method(model, "decode").eval(), Method(model, "latent_mean").eval()
            _graph(decode, torch.zeros(1, d), tmp / DECODER_ONNX, ("z", "x_mean"))
            _graph(encode, torch.zeros(1, *shape), tmp / ENCODER_ONNX, ("x", "z_mean"))
            diffs = {"decoder": _parity(tmp / DECODER_ONNX, decode, z),
                     "encoder": _parity(tmp / ENCODER_ONNX, encode, x)}
            if any(v is not None and not math.isfinite(v) for v in diffs.values()):
                raise XaeError(f"the exported graphs give non-finite outputs ({diffs}); the "
                               "model's weights are not finite: check its training")
            meta["max_abs_diff"] = diffs
            write_json(tmp / EXPORT_META, meta)
    except torch.onnx.errors.OnnxExporterError as e:  # pragma: no cover - exporter gaps
        raise XaeError(f"this model could not be exported to ONNX ({e}); please report it "
                       f"with the run's {CONFIG}") from None
    return meta
