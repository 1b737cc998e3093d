"""Configs: presets, dotted overrides with type coercion, errors that name the key and suggest
the nearest valid one, TOML/JSON files, and the JSON round trip."""
from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

import xae
import xae.config_legacy as L
from xae import config as C


def test_preset_sets_fields():
    cfg = xae.preset("vae", data="mnist", latent_dim=16)
    assert isinstance(cfg, xae.Config)
    assert cfg.preset == "vae"
    assert cfg.data.name == "mnist"
    assert cfg.model.latent_dim == 16
    assert cfg.model.bottleneck == "gaussian" and cfg.model.regularizer == "kl"


@pytest.mark.parametrize("name", list(xae.PRESETS))
def test_every_preset_applies_its_values(name):
    cfg = xae.preset(name)
    assert cfg.preset == name
    for key, value in xae.PRESETS[name].items():
        obj = cfg
        for part in key.split("."):  # nested sections, e.g. model.vq.codebook_size
            obj = getattr(obj, part)
        assert obj == value


def test_preset_values_are_not_shared_between_calls():
    a = xae.preset("linear-vae")
    a.model.mlp.hidden.append(99)
    assert xae.preset("linear-vae").model.mlp.hidden == []
    assert xae.PRESETS["linear-vae"]["model.mlp.hidden"] == []
    a.model.gumbel.temperature.stages.append([0, 1.0])  # a nested section's list
    assert xae.Config().model.gumbel.temperature.stages == []


def test_preset_keyword_overrides():
    cfg = xae.preset("beta-vae", epochs=3, **{"model.conv.channels": [8],
                                              "model.mlp.hidden": [8, 4],
                                              "beta.value": 2.5, "train.lr": 0.1})
    assert cfg.train.epochs == 3
    assert cfg.model.mlp.hidden == [8, 4] and cfg.model.conv.channels == [8]
    assert cfg.beta.value == 2.5 and cfg.train.lr == 0.1


@pytest.mark.parametrize("short,keys", [
    ("seed", ["data.seed", "train.seed"]),
    ("hidden", ["model.mlp.hidden", "model.topdown.hidden", "model.flow.hidden",
                "model.factor.hidden"]),
    ("channels", ["model.conv.channels", "model.conv_map.channels"]),
    ("components", ["model.mog.components", "model.vamp.components"]),
])
def test_preset_ambiguous_short_key(short, keys):
    with pytest.raises(xae.XaeError, match="ambiguous") as err:
        xae.preset("vae", **{short: 1})
    assert all(k in str(err.value) for k in keys)


@pytest.mark.parametrize("name,suggestion", [
    ("vea", "vae"), ("beta_vae", "beta-vae"), ("linear_vae", "linear-vae"), ("aee", "ae"),
])
def test_unknown_preset_suggests_nearest(name, suggestion):
    with pytest.raises(xae.XaeError, match=f"did you mean '{suggestion}'"):
        xae.preset(name)


# -------------------------------------------------------------------------------- overrides


def test_dotted_overrides_coerce_strings():
    cfg = C.apply(xae.Config(), {"model.latent_dim": "2", "train.epochs": "5",
                                 "model.mlp.hidden": "[64, 32]", "train.lr": "3e-4",
                                 "train.figures": "false", "train.progress": "yes",
                                 "model.likelihood": "gaussian", "beta.stages": "[[0, 1.5]]",
                                 "model.conv.channels": ""})
    assert cfg.model.latent_dim == 2 and type(cfg.model.latent_dim) is int
    assert cfg.train.epochs == 5 and type(cfg.train.epochs) is int
    assert cfg.model.mlp.hidden == [64, 32]
    assert cfg.train.lr == 3e-4 and type(cfg.train.lr) is float
    assert cfg.train.figures is False and cfg.train.progress is True
    assert cfg.model.likelihood == "gaussian"
    assert cfg.beta.stages == [[0, 1.5]]
    assert cfg.model.conv.channels == []


@pytest.mark.parametrize("key,value,expected", [
    ("train.figures", "true", True), ("train.figures", "0", False), ("train.figures", "ON", True),
    ("train.figures", False, False), ("train.epochs", 7.0, 7), ("train.epochs", "1_000", 1000),
    ("train.lr", 1, 1.0), ("model.gaussian.sigma", "0.25", 0.25),
    ("model.mlp.hidden", (3, 2), [3, 2]), ("data.name", "mnist", "mnist"),
    ("model.vq.ema", "yes", True), ("model.gumbel.temperature.warmup", "10", 10),
])
def test_coercion_table(key, value, expected):
    cfg = C.apply(xae.Config(), {key: value})
    got = C._get(cfg, key)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("key,value", [
    ("train.figures", "maybe"), ("train.figures", 1), ("train.progress", "2"),
    ("model.latent_dim", "two"), ("model.latent_dim", 2.5), ("model.latent_dim", True),
    ("model.latent_dim", "2.0"), ("train.epochs", [5]),
    ("train.lr", "fast"), ("train.lr", True), ("model.laplace.sigma", [1.0]),
    ("model.mlp.hidden", "64"), ("model.mlp.hidden", "[64"), ("model.mlp.hidden", 64),
    ("model.mlp.hidden", {"a": 1}), ("model.encoder", ["mlp"]), ("data.name", True),
    ("model.mog.components", 2.5), ("model.rvq.stage_dropout", "maybe"),
])
def test_type_errors_name_the_key(key, value):
    with pytest.raises(xae.XaeError) as err:
        C.apply(xae.Config(), {key: value})
    assert f"'{key}'" in str(err.value)


@pytest.mark.parametrize("section,leaf,value", [
    ("model", "latent_dim", "two"), ("train", "epochs", 2.5), ("data", "seed", "x"),
    ("train", "seed", "x"),
])
def test_type_errors_in_nested_dicts_name_the_dotted_key(section, leaf, value):
    """A TOML/JSON file gives nested tables; the error must say which section's key is wrong
    (``data.seed`` and ``train.seed`` are different keys)."""
    with pytest.raises(xae.XaeError) as err:
        C.from_dict({section: {leaf: value}})
    assert f"'{section}.{leaf}'" in str(err.value)


@pytest.mark.parametrize("key,suggestion", [
    ("model.latnt_dim", "model.latent_dim"),
    ("latent_dim", "model.latent_dim"),
    ("train.epoch", "train.epochs"),
    ("model.mlp.hiden", "model.mlp.hidden"),
    ("model.mog.component", "model.mog.components"),
    ("beta.warmpu", "beta.warmup"),
    ("data.binarise", "data.binarize"),
])
def test_unknown_key_suggests_nearest(key, suggestion):
    with pytest.raises(xae.XaeError) as err:
        C.apply(xae.Config(), {key: 1})
    msg = str(err.value)
    assert f"'{key}'" in msg
    assert f"did you mean '{suggestion}'" in msg


@pytest.mark.parametrize("key,moved", [
    ("model.prior_components", "model.mog.components or model.vamp.components"),
    ("model.quantizer.codebook_size",
     "model.vq.codebook_size, model.lfq.codebook_size or model.gumbel.codebook_size"),
    ("model.hidden", "model.mlp.hidden"),
    ("model.kl_estimator", "model.kl.estimator or model.mmd.estimator"),
    ("model.tc_weight", "model.tc.weight"), ("model.iw_samples", "model.iwae.samples"),
    ("model.dataset_size", "model.tc.dataset_size"),
    ("model.quantizer.stage_quantizer", "model.rvq.stage_quantizer"),
    ("model.quantizer.temperature.kind", "model.gumbel.temperature.kind"),
    ("model.quantizer", "model.vq, model.rvq, model.fsq, model.lfq or model.gumbel"),
])
def test_a_key_of_the_flat_layout_says_where_it_moved(key, moved):
    for updates in ({key: 1}, {"model": {key.removeprefix("model."): 1}}):
        with pytest.raises(xae.XaeError) as err:
            C.apply(xae.Config(), updates)
        assert f"'{key}' moved to {moved}:" in str(err.value)


def test_every_moved_key_has_a_home():
    keys = C.all_keys()
    for old, targets in L.MOVED.items():
        for target in targets:
            assert any(k == f"model.{target}" or k.startswith(f"model.{target}.")
                       for k in keys), (old, target)
        assert f"model.{old}" not in keys


def test_unknown_key_in_nested_dict_suggests_nearest():
    with pytest.raises(xae.XaeError, match="did you mean 'model.latent_dim'"):
        C.from_dict({"model": {"latnt_dim": 2}})


@pytest.mark.parametrize("key", ["model.latent_dim.x", "train.lr.value"])
def test_key_below_a_leaf_is_unknown(key):
    with pytest.raises(xae.XaeError, match="unknown config key"):
        C.apply(xae.Config(), {key: 1})


@pytest.mark.parametrize("key,value", [("model", 3), ("train", "fast")])
def test_setting_a_section_to_a_scalar_is_an_error(key, value):
    with pytest.raises(xae.XaeError, match=key):
        C.apply(xae.Config(), {key: value})


def test_resolve_key():
    assert C.resolve_key("latent_dim") == "model.latent_dim"
    assert C.resolve_key("epochs") == "train.epochs"
    assert C.resolve_key("model.mlp.hidden") == "model.mlp.hidden"
    assert C.resolve_key("levels") == "model.fsq.levels"
    with pytest.raises(xae.XaeError, match="ambiguous"):
        C.resolve_key("seed")
    with pytest.raises(xae.XaeError, match="did you mean 'model.latent_dim'"):
        C.resolve_key("latnt_dim")


def test_all_keys_are_dotted_and_settable():
    keys = C.all_keys()
    assert "model.latent_dim" in keys and "beta.stages" in keys and "preset" in keys
    assert len(keys) == len(set(keys))
    cfg = xae.Config()
    for key in keys:  # each key accepts its own current value
        obj = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        C.apply(cfg, {key: obj})
    assert cfg == xae.Config()


def test_parse_overrides():
    assert C.parse_overrides(["model.latent_dim=2", " train.epochs = 5 ", "a=b=c"]) == {
        "model.latent_dim": "2", "train.epochs": "5", "a": "b=c"}
    assert C.parse_overrides([]) == {}


@pytest.mark.parametrize("item", ["novalue", "model.latent_dim", ""])
def test_parse_overrides_rejects_items_without_equals(item):
    with pytest.raises(xae.XaeError, match="key=value"):
        C.parse_overrides([item])


# ------------------------------------------------------------------------------------ files

TOML = """
preset = "beta-vae"

[data]
name = "mnist"
binarize = "dynamic"
test_fraction = 0.1

[model]
latent_dim = 8
likelihood = "gaussian"

[model.kl]
free_bits = 0.25

[model.mlp]
hidden = [256, 128]

[model.gaussian]
scale = "pixel"
sigma = 0.5

[beta]
kind = "staged"
stages = [[0, 0.0], [100, 1.0]]

[train]
epochs = 3
lr = 2e-4
figures = false
"""


def _check_toml_values(cfg: xae.Config) -> None:
    assert cfg.preset == "beta-vae"
    assert cfg.data.name == "mnist" and cfg.data.binarize == "dynamic"
    assert cfg.data.test_fraction == 0.1
    assert cfg.model.latent_dim == 8 and cfg.model.mlp.hidden == [256, 128]
    assert cfg.model.likelihood == "gaussian" and cfg.model.gaussian.scale == "pixel"
    assert cfg.model.gaussian.sigma == 0.5 and cfg.model.kl.free_bits == 0.25
    assert cfg.model.laplace == xae.Config().model.laplace
    assert cfg.beta.kind == "staged" and cfg.beta.stages == [[0, 0.0], [100, 1.0]]
    assert cfg.train.epochs == 3 and cfg.train.lr == 2e-4 and cfg.train.figures is False
    # untouched fields keep their defaults
    assert cfg.train.batch_size == xae.Config().train.batch_size
    assert cfg.model.encoder == "mlp"


def test_toml_file(tmp_path):
    p = tmp_path / "cfg.toml"
    p.write_text(TOML)
    cfg = C.from_dict(C.read_file(p))
    _check_toml_values(cfg)
    assert type(cfg.model.gaussian.sigma) is float and type(cfg.model.latent_dim) is int


def test_toml_and_json_files_round_trip(tmp_path):
    p = tmp_path / "cfg.toml"
    p.write_text(TOML)
    cfg = C.from_dict(C.read_file(p))
    j = tmp_path / "cfg.json"
    j.write_text(cfg.to_json())
    again = C.from_dict(C.read_file(j))
    assert again == cfg
    _check_toml_values(again)


def test_json_round_trip_of_a_modified_config():
    cfg = xae.preset("linear-vae", latent_dim=5, **{"beta.kind": "cyclical", "beta.ratio": 0.25})
    cfg.model.data_shape = [20]
    d = json.loads(cfg.to_json())
    assert d["model"]["latent_dim"] == 5 and d["model"]["mlp"]["hidden"] == []
    assert d["model"]["gumbel"]["temperature"]["kind"] == "cosine"
    again = C.from_dict(d)
    assert again == cfg
    assert dataclasses.asdict(again) == cfg.to_dict()


def test_a_config_pickles():
    """The sections are classes made at import; pickle must find them by name."""
    cfg = xae.preset("dvae", **{"model.gumbel.temperature.value": 0.5})
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_build_leaves_the_config_alone_and_gives_the_model_a_copy_with_the_data_shape():
    cfg = xae.preset("vae", latent_dim=2, **{"model.mlp.hidden": [8]})
    before = copy.deepcopy(cfg)
    model = xae.build(cfg)
    assert cfg == before and cfg.model.data_shape == []
    assert model.config is not cfg and model.config.model.data_shape == [1, 8, 8]
    assert model.config.model.mlp.hidden is not cfg.model.mlp.hidden
    assert dataclasses.replace(model.config, model=cfg.model) == cfg  # nothing else differs
    assert C.from_dict(json.loads(model.config.to_json())).model.data_shape == [1, 8, 8]


def test_build_checks_the_config():
    cfg = xae.preset("vae")
    cfg.model.kl.estimator = "guess"  # set in Python: unchecked until it is used
    with pytest.raises(xae.XaeError, match="model.kl.estimator"):
        xae.build(cfg)
    cfg = xae.preset("vae")
    cfg.model.mog = 3
    with pytest.raises(xae.XaeError, match="'model.mog' is a section"):
        xae.build(cfg)


@pytest.mark.parametrize("net", ["encoder", "decoder"])
def test_conv_nets_need_channels(net):
    with pytest.raises(xae.XaeError, match="model.conv.channels is empty"):
        C.from_dict({"model": {net: "conv", "conv": {"channels": []}}})
    C.from_dict({"model": {"conv": {"channels": []}}})  # unused: no rule


def test_partial_json_file(tmp_path):
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps({"model": {"latent_dim": 4}, "train.epochs": 9}))
    cfg = C.from_dict(C.read_file(p))
    assert cfg.model.latent_dim == 4 and cfg.train.epochs == 9
    assert cfg.model.mlp.hidden == xae.Config().model.mlp.hidden


@pytest.mark.parametrize("name,text", [
    ("bad.toml", "[model\nlatent_dim = 2\n"),
    ("bad.toml", "latent_dim = = 2\n"),
    ("bad.json", '{"model": {"latent_dim": 2,}}'),
    ("bad.json", "not json"),
])
def test_syntax_errors_are_xae_errors(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(xae.XaeError, match=name):
        C.read_file(p)


def test_missing_file_is_an_xae_error(tmp_path):
    with pytest.raises(xae.XaeError, match="does not exist"):
        C.read_file(tmp_path / "nope.toml")


@pytest.mark.parametrize("text", ["[1, 2]", '"vae"', "3"])
def test_json_file_that_is_not_an_object_is_an_xae_error(tmp_path, text):
    p = tmp_path / "cfg.json"
    p.write_text(text)
    with pytest.raises(xae.XaeError):
        C.from_dict(C.read_file(p))


def test_unknown_key_in_file_is_an_xae_error(tmp_path):
    p = tmp_path / "cfg.toml"
    p.write_text("[train]\nepoch = 3\n")
    with pytest.raises(xae.XaeError, match="did you mean 'train.epochs'"):
        C.from_dict(C.read_file(p))
