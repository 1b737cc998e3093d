"""Configs of the flat layout before per-piece sections (``model.prior_components``,
``model.quantizer.*``): where each of its keys lives now, for the unknown-key error, and the
one migration of a saved config (a run's ``config.json``, a study's record) into this layout.
"""
from __future__ import annotations

from typing import Any

from xae.config import Config, ModelCore, all_keys, from_dict
from xae.pieces import SECTIONS, TABLES

# Where each model key of the flat layout before per-piece sections lives now (under model.).
# That layout is history, so the table is written out; a test checks that every target exists.
MOVED: dict[str, tuple[str, ...]] = {
    "hidden": ("mlp.hidden",), "channels": ("conv.channels",),
    "activation": ("mlp.activation", "conv.activation"),
    "prior_components": ("mog.components", "vamp.components"),
    "prior_layers": ("flow.layers",), "prior_hidden": ("flow.hidden",),
    "kl_estimator": ("kl.estimator", "mmd.estimator"), "mmd_kernel": ("mmd.kernel",),
    "info_alpha": ("mmd.info_alpha",), "info_lambda": ("mmd.info_lambda",),
    "tc_weight": ("tc.weight",), "dataset_size": ("tc.dataset_size",),
    "scale": ("gaussian.scale", "laplace.scale"), "sigma": ("gaussian.sigma", "laplace.sigma"),
    "iw_samples": ("iwae.samples",), "free_bits": ("kl.free_bits", "factor.free_bits"),
    "quantizer": ("vq", "rvq", "fsq", "lfq", "gumbel"),
    "quantizer.codebook_size": ("vq.codebook_size", "lfq.codebook_size", "gumbel.codebook_size"),
    "quantizer.code_dim": ("vq.code_dim", "gumbel.code_dim"),
    "quantizer.commitment": ("vq.commitment", "lfq.commitment"),
    "quantizer.levels": ("fsq.levels",),
    **{f"quantizer.{k}": (f"{piece}.{k}",) for piece, keys in [
        ("vq", ("ema", "ema_decay", "kmeans_init", "restart_every", "cosine")),
        ("rvq", ("stages", "stage_quantizer", "stage_dropout")),
        ("lfq", ("entropy_weight", "diversity_weight", "entropy_temperature")),
        ("gumbel", ("temperature", "hard"))] for k in keys},
}


def moved(key: str) -> str | None:
    """Where ``key``, a key of the flat layout (``model.prior_components``, and below
    ``model.quantizer``), lives now: "model.mog.components or model.vamp.components"; None
    for other keys."""
    if not key.startswith("model."):
        return None
    rest = key.removeprefix("model.")
    old = max((k for k in MOVED if rest == k or rest.startswith(k + ".")), key=len,
              default=None)
    if old is None:
        return None
    keys = set(all_keys())
    targets = [f"model.{t}{rest[len(old):]}" for t in MOVED[old]]
    if not any(t in keys or any(k.startswith(t + ".") for k in keys) for t in targets):
        targets = [f"model.{t}" for t in MOVED[old]]  # a sub-key that never was: its section
    return ", ".join(targets[:-1]) + " or " * (len(targets) > 1) + targets[-1]



def migrate(d: dict[str, Any]) -> dict[str, Any]:
    """A saved config dict in the current layout. In one of the flat layout before per-piece
    sections (``model.prior_components``, ``model.quantizer.*``) each old key moves to the
    section of the piece that config chose (residual VQ's stage settings to the section of
    its stage quantizer); keys that no chosen piece read are dropped. Any other dict comes
    back as it is."""
    model = d.get("model")
    if not isinstance(model, dict) or not any(k in MOVED for k in model):
        return d
    new = dict(model)
    flat = {k: new.pop(k) for k in list(new) if k in MOVED}
    quantizer = flat.pop("quantizer", {})
    if isinstance(quantizer, dict):
        flat.update({f"quantizer.{k}": v for k, v in quantizer.items()})
    else:  # not a section: the error will say where the section went
        new["quantizer"] = quantizer
    core = ModelCore()
    pieces = [(kind, new.get(kind, getattr(core, kind))) for kind in TABLES]
    if ("bottleneck", "rvq") in pieces:
        pieces.append(("bottleneck", flat.get("quantizer.stage_quantizer", "vq")))
    chosen = {name for kind, name in pieces
              if isinstance(name, str) and kind in getattr(SECTIONS.get(name), "readers", ())}
    for old, value in flat.items():
        if old not in MOVED:  # not a key of the old layout either: the error will say so
            new[old] = value
        for target in MOVED.get(old, ()):
            piece, leaf = target.split(".", 1)
            if piece in chosen:
                new.setdefault(piece, {})[leaf] = value
    return {**d, "model": new}


def from_saved(d: Any) -> Config:
    """The :class:`Config` of a dict that xae saved (a run's ``config.json``, a study's
    record), in this layout or in the flat one before per-piece sections (see
    :func:`migrate`), checked as :func:`from_dict` does."""
    return from_dict(migrate(d) if isinstance(d, dict) else d)
