"""Each registered piece has its own config section, made from its constructor: the section's
fields are exactly the piece's keyword-only parameters, each with help; the build hands every
piece exactly its section; name clashes between pieces are refused at import; and configs of
the flat layout before sections still load, each key moved to the piece the config chose."""
from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
from pathlib import Path
from typing import get_type_hints

import pytest
import torch

import xae
import xae.config_legacy as L
from xae import checks as C
from xae import config as Cfg
from xae.cli import main
from xae.pieces import SECTIONS, TABLES, sections
from xae.priors import PRIORS
from xae.priors.base import Prior
from xae.settings import section, settings_of

PIECES = [(kind, name, cls) for kind, table in TABLES.items() for name, cls in table.items()]


def _default(f: dataclasses.Field) -> object:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


@pytest.mark.parametrize("kind,name,cls", PIECES, ids=[f"{k}-{n}" for k, n, _ in PIECES])
def test_a_piece_section_is_exactly_its_keyword_only_parameters(kind, name, cls):
    params = settings_of(cls)
    keys = getattr(cls, "KEYS", {})
    assert set(keys) == {p.name for p in params}  # every setting has help, every entry is one
    assert all(isinstance(text, str) and text and (check is None or isinstance(check, C.Check))
               for text, check in keys.values())
    if not params:
        assert name not in SECTIONS or kind not in SECTIONS[name].readers
        return
    sec = SECTIONS[name]
    assert kind in sec.readers
    fields = dataclasses.fields(sec)
    hints = get_type_hints(cls.__init__)
    assert [f.name for f in fields] == [p.name for p in params]
    for f, p in zip(fields, params):
        assert f.type == hints[p.name] and _default(f) == p.default
        assert f.metadata["help"] == keys[p.name][0] and f.metadata["check"] is keys[p.name][1]
    # the section's defaults are valid and build the piece: nothing is filtered or swallowed
    inspect.signature(cls).bind(*[None] * _positional(cls), **dataclasses.asdict(sec()))
    assert getattr(cls, "SECTION", f"model.{name}") == f"model.{name}"  # its error messages


def _positional(cls: type) -> int:
    params = inspect.signature(cls).parameters.values()
    return sum(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params)


def test_every_section_is_in_the_model_config_under_its_registry_name():
    model = xae.Config().model
    for name, sec in SECTIONS.items():
        assert isinstance(getattr(model, name), sec)
    assert {"mlp", "conv", "conv_map", "diffusers", "vq", "rvq", "fsq", "lfq", "gumbel", "topdown", "ladder", "hvae", "mog",
            "vamp", "flow", "kl", "mmd", "tc", "factor", "dip", "capacity", "gaussian", "laplace",
            "iwae", "patchgan", "reconstruction", "rnn", "transformer", "nb", "zinb"} \
        == set(SECTIONS)
    assert not {"normal", "codes", "elbo", "none", "bernoulli", "deterministic", "categorical",
                "poisson"} & set(SECTIONS)


@pytest.mark.parametrize("name", ["mlp", "conv", "conv_map", "diffusers"])
def test_an_encoder_and_decoder_of_one_name_share_a_section_and_agree(name):
    enc, dec = TABLES["encoder"][name], TABLES["decoder"][name]
    assert enc.KEYS == dec.KEYS
    assert [(p.name, p.default) for p in settings_of(enc)] == \
        [(p.name, p.default) for p in settings_of(dec)]
    assert SECTIONS[name].readers == ("encoder", "decoder")


class _Settled:
    KEYS = {"size": ("a size", C.POSITIVE)}

    def __init__(self, latent_dim: int, *, size: int = 3) -> None:
        self.size = size


class _OtherSettled(_Settled):
    KEYS = {"width": ("a width", C.POSITIVE)}

    def __init__(self, latent_dim: int, *, width: int = 3) -> None:
        self.width = width


class _Plain:
    def __init__(self, latent_dim: int) -> None:
        pass


def test_two_pieces_of_one_name_with_settings_are_refused():
    with pytest.raises(TypeError, match="the prior 'x' and the regularizer 'x' both have"):
        sections({"prior": {"x": _Settled}, "regularizer": {"x": _Settled}})
    # one of them without settings: the section is the other's
    out = sections({"bottleneck": {"x": _Plain}, "likelihood": {"x": _Settled}})
    assert out["x"].readers == ("likelihood",)
    # an encoder and decoder of one name share it, if their settings agree
    assert sections({"encoder": {"x": _Settled}, "decoder": {"x": _Settled}})["x"].readers \
        == ("encoder", "decoder")
    with pytest.raises(TypeError, match="must agree"):
        sections({"encoder": {"x": _Settled}, "decoder": {"x": _OtherSettled}})


def _cls(init, keys):
    return type("Piece", (), {"__init__": init, "KEYS": keys})


@pytest.mark.parametrize("init,keys,match", [
    (lambda self, *, size: None, {"size": ("a size", None)}, "type annotation and a default"),
    (_Settled.__init__, {}, r"missing \['size'\]"),
    (_Settled.__init__, {"size": ("a size", None), "other": ("x", None)},
     r"not settings \['other'\]"),
    (lambda self, latent_dim, **rest: None, {}, r"takes \*\*rest"),
    (lambda self, *rest: None, {}, r"takes \*rest"),
])
def test_a_piece_with_undeclared_settings_is_refused(init, keys, match):
    with pytest.raises(TypeError, match=match):
        section(_cls(init, keys), "piece", __name__)


def test_the_build_hands_a_piece_exactly_its_section(monkeypatch):
    class NoComponents(Prior):  # registered as mog, whose section has components
        def __init__(self, latent_dim: int) -> None:
            super().__init__(latent_dim)

    monkeypatch.setitem(PRIORS, "mog", NoComponents)
    with pytest.raises(TypeError, match="components"):
        xae.build(xae.preset("mog-vae"))


def test_the_bottleneck_gaussian_does_not_get_the_likelihood_gaussians_section():
    model = xae.build(xae.preset("vae", likelihood="gaussian",
                                 **{"model.gaussian.scale": "scalar"}))
    assert model.likelihood.scale_mode == "scalar"
    assert type(model.bottleneck).__name__ == "Gaussian"


def test_residual_vq_stages_read_their_quantizers_section():
    model = xae.build(xae.preset("rvq-vae", latent_dim=8, **{
        "model.rvq.stage_quantizer": "fsq", "model.fsq.levels": [5, 3], "model.rvq.stages": 3,
        "model.vq.codebook_size": 7}))
    q = model.bottleneck
    assert q.stages == 3 and q.codebook_size == 15 and q.code_dim == 2
    assert all(type(s).__name__ == "FSQ" for s in q.quantizers)


def test_info_keys_lists_each_section_with_help_and_accepted_values(capsys):
    assert main(["info", "--keys"]) == 0
    out = capsys.readouterr().out
    assert "[model.mog]  settings of the prior 'mog'" in out
    assert "[model.mlp]  settings of the encoder and decoder 'mlp'" in out
    assert "[model.gumbel.temperature]  τ over the training steps (a schedule whose values " \
           "stay > 0)" in out
    rows = {line.split()[0]: line.split(maxsplit=3)[1:] for line in out.splitlines()
            if line.strip() and not line.startswith("[")}
    assert rows["model.vamp.components"][:2] == ["int", "500"]
    assert "(≥ 1)" in rows["model.vamp.components"][2]
    assert "(one of imq, rbf)" in rows["model.mmd.kernel"][2]
    assert "(a power of two from 2^1 to 2^24)" in rows["model.lfq.codebook_size"][2]
    assert set(rows) == set(Cfg.all_keys())


# ------------------------------------------------------------- the flat layout, migrated

OLD_MODEL = {  # model keys of the flat layout; only those of the chosen pieces survive
    "encoder": "mlp", "decoder": "mlp", "hidden": [16], "channels": [8, 16],
    "activation": "tanh", "latent_dim": 2, "bottleneck": "gaussian",
    "quantizer": {"codebook_size": 64, "code_dim": 4, "levels": [3, 3], "stages": 2,
                  "stage_quantizer": "vq", "temperature": {"kind": "constant", "value": 0.5}},
    "prior": "mog", "prior_components": 3, "prior_layers": 2, "prior_hidden": 8,
    "regularizer": "kl", "mmd_kernel": "rbf", "info_alpha": 0.5, "info_lambda": 2.0,
    "tc_weight": 2.0, "dataset_size": 100, "kl_estimator": "mc", "likelihood": "gaussian",
    "scale": "scalar", "sigma": 0.5, "objective": "elbo", "iw_samples": 7, "free_bits": 0.25,
    "data_shape": [1, 8, 8],
}


def test_a_flat_config_moves_each_key_to_the_piece_it_chose():
    cfg = L.from_saved({"preset": "mog-vae", "model": OLD_MODEL})
    m, default = cfg.model, xae.Config().model
    assert m.mlp.hidden == [16] and m.mlp.activation == "tanh"
    assert m.mog.components == 3 and m.kl.estimator == "mc" and m.kl.free_bits == 0.25
    assert m.gaussian.scale == "scalar" and m.gaussian.sigma == 0.5
    assert m.latent_dim == 2 and m.data_shape == [1, 8, 8]
    for unchosen in ("conv", "vamp", "flow", "mmd", "tc", "laplace", "iwae", "vq", "rvq",
                     "fsq", "lfq", "gumbel"):
        assert getattr(m, unchosen) == getattr(default, unchosen), unchosen


def test_a_flat_residual_vq_config_moves_the_stage_keys_to_the_stage_quantizer():
    old = {**OLD_MODEL, "bottleneck": "rvq", "prior": "codes", "regularizer": "none",
           "likelihood": "bernoulli", "latent_dim": 8,
           "quantizer": {"stages": 3, "stage_quantizer": "fsq", "levels": [5, 3],
                         "codebook_size": 64, "stage_dropout": False}}
    m = L.from_saved({"model": old}).model
    assert (m.rvq.stages, m.rvq.stage_quantizer, m.rvq.stage_dropout) == (3, "fsq", False)
    assert m.fsq.levels == [5, 3]
    assert m.vq == xae.Config().model.vq  # not a stage: its codebook_size did not move there
    # bottleneck 'gaussian' is not the likelihood 'gaussian': scale stays the default
    assert m.gaussian == xae.Config().model.gaussian


def test_a_current_config_is_not_migrated():
    d = xae.preset("dvae").to_dict()
    assert L.migrate(d) is d


def _old_run(tmp_path: Path) -> tuple[Path, xae.Autoencoder]:
    """A run folder whose config.json is written by hand in the flat layout, with weights of
    the model it describes."""
    run = tmp_path / "old"
    cfg = xae.preset("mog-vae", latent_dim=2, steps=4, progress=False, figures=False,
                     log_every=2, **{"model.mlp.hidden": [16], "model.mog.components": 3,
                                     "model.likelihood": "gaussian",
                                     "model.gaussian.scale": "scalar"})
    xae.train(cfg, run)
    old = {**cfg.to_dict(), "model": {**OLD_MODEL, "activation": "relu"}}
    (run / "config.json").write_text(json.dumps(old, indent=2))
    return run, xae.load(run)


def test_a_run_folder_of_the_flat_layout_loads_evaluates_and_resumes(tmp_path, capsys):
    run, model = _old_run(tmp_path)
    assert model.prior.means.shape == (3, 2) and model.likelihood.scale_mode == "scalar"
    assert model.config.model.mog.components == 3 and model.config.model.mlp.hidden == [16]
    assert main(["eval", str(run), "--k", "2", "--fid-samples", "2"]) == 0
    assert main(["info", str(run)]) == 0
    assert '"components": 3' in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main(["train", "--resume", str(copy), "--steps", "6", "--no-progress"]) == 0
    state = torch.load(copy / "checkpoint" / "state.pt", weights_only=True)
    assert state["step"] == 6
