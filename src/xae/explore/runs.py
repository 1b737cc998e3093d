"""What the explorer shows of one run: the map of its test set, its plane, prior draws, stats.

A :class:`RunView` is built once per run when ``xae explore`` starts. It holds the model (for
the server's decode endpoint), the ONNX decoder the page runs, and the arrays the page loads.

The map is the test set's latent means. Latents of one or two dimensions are drawn as they are;
for more, the map is the plane through the means' average spanned by their first two principal
components, and a point (u, v) of the map stands for the latent ``mean + u·b1 + v·b2``.

The attribute slider's directions (:mod:`xae.edits.explorer`: thickness, slant, classes)
are learned from the same test latents; the page adds amount · direction to the cursor's
latent before decoding.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xae.errors import XaeError
from xae.explore.priors import PagePrior, bank, page_prior
from xae.model import Autoencoder, inference
from xae.plane import Plane, plane_of
from xae.runfiles import DECODER_ONNX, ENCODER_ONNX, EVAL, EXPORT, EXPORT_META, METRICS, WEIGHTS

PRIOR_DRAWS = 1024  # latents drawn from the prior for the page's "sample" button
ENCODE_BATCH = 500
STAT_KEYS = ("rate", "distortion", "neg_elbo", "nll_iw")


def saved_decoder(run: Path) -> Path | None:
    """``RUN/export/decoder.onnx`` when ``xae export`` wrote it after the weights, else None."""
    weights, saved = run / WEIGHTS, run / EXPORT / DECODER_ONNX
    if saved.is_file() and (run / EXPORT / EXPORT_META).is_file() and \
            weights.is_file() and saved.stat().st_mtime >= weights.stat().st_mtime:
        return saved
    return None


def _onnx_graphs(run: Path, model: Autoencoder) -> tuple[bytes, bytes]:
    """The run's exported decoder and encoder: the folder of :func:`saved_decoder` when there
    is one, else a fresh export (to a temporary folder: the run is not written to)."""
    from xae.export import export_onnx

    saved = saved_decoder(run)
    if saved is not None and (saved.parent / ENCODER_ONNX).is_file():
        return saved.read_bytes(), (saved.parent / ENCODER_ONNX).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, Path(tmp) / EXPORT)
        return tuple((Path(tmp) / EXPORT / f).read_bytes() for f in (DECODER_ONNX, ENCODER_ONNX))


def run_stats(run: Path, model: Autoencoder) -> dict[str, Any]:
    """Preset, final β and the test metrics: ``eval.json`` (``xae eval``) where it exists, else
    the metrics training wrote at its end."""
    from xae.schedules import value_at

    cfg = model.config
    final = run / METRICS
    steps = json.loads(final.read_text())["step"] if final.is_file() else 0
    stats: dict[str, Any] = {"preset": cfg.preset, "beta": value_at(cfg.beta, steps),
                             "steps": steps, "source": None}
    for name in (EVAL, METRICS):
        if (run / name).is_file():
            test = json.loads((run / name).read_text()).get("test", {})
            stats.update({k: test[k] for k in STAT_KEYS if isinstance(test.get(k), (int, float))})
            stats["source"] = name
            break
    return stats


@dataclass
class RunView:
    name: str
    path: Path
    model: Autoencoder
    coords: np.ndarray  # (N, 2) float32 map points
    labels: np.ndarray | None  # (N,) int
    plane: Plane
    prior: np.ndarray  # (PRIOR_DRAWS, D) float32
    decoder_onnx: bytes
    stats: dict[str, Any]
    encoder_onnx: bytes = b""  # x → the latent mean: the page encodes drawn input with it
    # q(z|x) of each map point, (N, 2D): means then standard deviations (xae.explore.posterior)
    posterior: np.ndarray | None = None
    posterior_missing: str | None = None
    test_x: torch.Tensor | None = None  # the map's test points, for the scores of drawn input
    # a hierarchy (xae.explore.hierarchy): the test points' groups below the top, (N, D − top),
    # and the graph that draws them from the prior below a given top
    lower: np.ndarray | None = None
    descend_onnx: bytes | None = None
    prior_about: str = "the model's own prior"  # which prior ``prior`` was drawn from
    page_prior: PagePrior = field(  # how the page samples that prior (xae.explore.priors)
        default_factory=lambda: bank("the view was built without load_run, which says how"))
    # the slider's directions (xae.edits.explorer), and why there are none
    attributes: list[dict[str, Any]] = field(default_factory=list)
    attributes_missing: str | None = None

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.model.data_shape)

    def map_bytes(self) -> bytes:
        """float32 little-endian (u, v, label) per test point; label −1 when there are none."""
        lab = self.labels if self.labels is not None else np.full(len(self.coords), -1)
        return np.column_stack([self.coords, lab]).astype("<f4").tobytes()

    def prior_bytes(self) -> bytes:
        return self.prior.astype("<f4").tobytes()

    def posterior_bytes(self) -> bytes:
        return self.posterior.astype("<f4").tobytes()

    def lower_bytes(self) -> bytes:
        return self.lower.astype("<f4").tobytes()

    def decode(self, z: np.ndarray) -> np.ndarray:
        """The mean of p(x|z) for a (B, D) batch, by the torch model (the parity reference)."""
        with inference(self.model):
            out = self.model.decode(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)))
        return out.numpy()

    def meta(self, index: int) -> dict[str, Any]:
        d = self.latent_dim
        hierarchy = None if self.lower is None else {
            "top": d - self.lower.shape[1], "groups": self.model.bottleneck.num_groups,
            "descend": f"run/{index}/descend.onnx", "lower": f"run/{index}/lower.bin"}
        return {
            "name": self.name, "index": index, "latent_dim": d, "hierarchy": hierarchy,
            # the size of the latents of the map's plane: the top group's for a hierarchy
            "map_dim": int(self.plane.mean.shape[0]),
            "data_shape": list(self.data_shape), "stochastic": self.model.stochastic,
            "discrete": self.model.discrete, "bottleneck": self.model.config.model.bottleneck,
            "prior_kind": self.model.config.model.prior, "stats": self.stats,
            "no_elbo": no_elbo(self.model),
            "plane": self.plane.to_json(), "map": {"file": f"run/{index}/map.bin",
                                                  "points": int(len(self.coords)),
                                                  "labels": self.labels is not None},
            "prior": {"file": f"run/{index}/prior.bin", "draws": int(len(self.prior)),
                      "about": self.prior_about,
                      "sampler": self.page_prior.to_json(index)},
            "decoder": f"run/{index}/decoder.onnx", "encoder": f"run/{index}/encoder.onnx",
            "posterior": ({"file": f"run/{index}/posterior.bin"} if self.posterior is not None
                          else {"file": None, "why": self.posterior_missing}),
            "attributes": self.attributes, "attributes_missing": self.attributes_missing,
        }


def no_elbo(model: Autoencoder) -> str | None:
    """Why ``model`` has no ELBO (a deterministic continuous code: a point mass has no KL to a
    continuous prior), for the page to say in place of a −ELBO; None when it has one."""
    if model.stochastic or model.discrete or getattr(model.bottleneck, "empty", False) \
            or not model.likelihood.density:
        return None
    return "a point-mass code z = f(x) has no finite KL to a continuous prior, so no ELBO"


def _finite(name: str, what: str, a: np.ndarray) -> None:
    if not np.isfinite(a).all():
        raise XaeError(f"run {name}: its {what} are not finite; the model's weights are "
                       "broken: check its training")


def load_run(path: str | Path, *, max_points: int | None = None, seed: int = 0) -> RunView:
    """Load a run folder and compute what the explorer shows of it (on the CPU). The prior
    draws come from the diffusion prior fitted by ``xae prior fit`` when the run has one, else
    from the model's own prior; the page says which."""
    import xae
    from xae.edits.explorer import explorer_attributes
    from xae.data import load as load_data
    from xae.diffprior.choice import choose, describe
    from xae.explore.hierarchy import descend_graph, lower_groups, top_dim
    from xae.explore.posterior import no_posterior, posterior_arrays

    run = Path(path)
    model = xae.load(run, device="cpu")
    if model.covariates:
        raise XaeError(f"run {run.name} is conditioned on its {model.config.model.covariate} "
                       "(model.covariate): the explorer maps and decodes z alone, without a "
                       "level; use `xae sample --level` and `xae reconstruct` for it")
    source = choose(model, "auto")
    data = load_data(model.config.data)
    x, y = data.test_x, data.test_y
    if max_points is not None and len(x) > max_points:
        x, y = x[:max_points], (y[:max_points] if y is not None else None)
    with inference(model), torch.random.fork_rng():  # seeded, without touching the caller's
        torch.manual_seed(seed)  # (encoding a Gaussian code draws z too)
        posterior = posterior_arrays(model, x, ENCODE_BATCH)
        if posterior is not None and not model.hierarchical:  # its means are the latent means
            z = posterior[:, :model.latent_dim].astype(np.float64)
        else:
            z = torch.cat([model.latent_mean(x[i:i + ENCODE_BATCH])
                           for i in range(0, len(x), ENCODE_BATCH)]).double().numpy()
        prior = model.sample_z(PRIOR_DRAWS, source=source).float().numpy()
    name = run.resolve().name
    _finite(name, "latent means of the test set", z)
    _finite(name, "prior draws", prior)
    lower, descend = None, None
    if model.hierarchical:  # the map is the top group's; the page completes the code
        lower, descend = lower_groups(z, model), descend_graph(model)
        z = z[:, :top_dim(model)]
    plane = plane_of(z)
    coords = plane.project(z).astype(np.float32)
    labels = y.numpy().astype(np.int64) if y is not None else None
    attributes, missing = explorer_attributes(model, x, y, z)
    decoder_onnx, encoder_onnx = _onnx_graphs(run, model)
    return RunView(name=name, path=run, model=model, coords=coords, labels=labels,
                   plane=plane, prior=prior, decoder_onnx=decoder_onnx,
                   stats=run_stats(run, model), prior_about=describe(model, source),
                   page_prior=page_prior(model, source),
                   attributes=attributes, attributes_missing=missing,
                   encoder_onnx=encoder_onnx, posterior=posterior,
                   posterior_missing=no_posterior(model), test_x=x, lower=lower,
                   descend_onnx=descend)


def unique_names(views: list[RunView]) -> None:
    """Give runs with the same folder name distinct names (``vae``, ``vae (2)``)."""
    seen: dict[str, int] = {}
    for v in views:
        k = seen.get(v.name, 0)
        seen[v.name] = k + 1
        if k:
            v.name = f"{v.name} ({k + 1})"

