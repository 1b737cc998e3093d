"""The contract every preset keeps, with tiny shapes: build, forward, backward, the public
methods' shapes, a save/load round trip, and clear errors for shapes the nets cannot take."""
from __future__ import annotations

import math

import pytest
import torch

import xae
import xae.data
from xae.model import inference
from xae.registry import KNOWN_SHAPES
from xae.train import checkpoint

B = 16
IMAGE_DATA = set(KNOWN_SHAPES)  # data sets whose samples are (C, H, W) images


def _preset_data(name: str) -> str:
    return xae.preset(name).data.name


def _preset_net(name: str) -> str:
    return xae.preset(name).model.encoder


# each preset with its own nets (mlp, or conv_map for a spatial code), each preset of flat
# codes on images with the conv nets too, and the diffusers-layout nets around a Gaussian and
# a deterministic spatial code
CASES = [(name, _preset_net(name)) for name in xae.PRESETS] + [
    (name, "conv") for name in xae.PRESETS
    if _preset_data(name) in IMAGE_DATA and _preset_net(name) == "mlp"
] + [("vae", "diffusers"), ("ae", "diffusers")]


# discrete presets shrink to 2 positions of 3-d codes with small codebooks
DISCRETE = {"model.latent_dim": 6, "model.vq.code_dim": 3, "model.vq.codebook_size": 8,
            "model.gumbel.code_dim": 3, "model.gumbel.codebook_size": 8,
            "model.fsq.levels": [3, 4, 2], "model.lfq.codebook_size": 8, "model.rvq.stages": 2}


def _config(name: str, net: str) -> xae.Config:
    cfg = xae.preset(name, latent_dim=3)
    assert net in ("mlp", "conv", "diffusers") or net == cfg.model.encoder  # its own nets
    if cfg.model.prior == "codes":
        cfg = xae.config.apply(cfg, DISCRETE)
    if cfg.model.mlp.hidden:  # a preset with a linear map (hidden = []) stays linear
        cfg = xae.config.apply(cfg, {"model.mlp.hidden": [32]})
    if cfg.model.bottleneck == "ladder":  # two small groups that sum to the latent size
        cfg = xae.config.apply(cfg, {"model.ladder.groups": [1, 2], "model.ladder.hidden": 16})
    if cfg.model.bottleneck == "hvae":  # digits: groups at 2×2 and 4×4 of 2 channels each
        cfg = xae.config.apply(cfg, {"data.name": "digits", "data.binarize": "none",
                                     "model.hvae.channels": 8, "model.hvae.groups": [1, 2],
                                     "model.hvae.z_channels": 2, "model.latent_dim": 72})
    if cfg.model.likelihood == "reconstruction":  # 8×8 digits: 1 − SSIM (ST-LPIPS needs 18×18)
        cfg = xae.config.apply(cfg, {"data.name": "digits",
                                     "model.reconstruction.perceptual": "ssim"})
    if cfg.model.critic == "patchgan":  # one layer fits 8×8
        cfg = xae.config.apply(cfg, {"model.patchgan.layers": 1, "model.patchgan.width": 8,
                                     "model.patchgan.start": 0})
    if cfg.model.regularizer == "factor":  # a small discriminator
        cfg = xae.config.apply(cfg, {"model.factor.hidden": [16]})
    if net == "conv":
        cfg = xae.config.apply(cfg, {"model.encoder": "conv", "model.decoder": "conv",
                                     "model.conv.channels": [8, 16]})
    if net == "conv_map":  # two stride-2 stages: 8×8 images give a 2×2 grid of 2 channels
        cfg = xae.config.apply(cfg, {"model.conv_map.channels": [8, 16],
                                     "model.latent_dim": 8})
    if net == "diffusers":  # two blocks: 8×8 images give a 4×4 grid of 2 channels
        cfg = xae.config.apply(cfg, {"model.encoder": "diffusers", "model.decoder": "diffusers",
                                     "model.diffusers.block_out_channels": [8, 16],
                                     "model.diffusers.norm_num_groups": 4,
                                     "model.diffusers.latent_channels": 2,
                                     "model.latent_dim": 32, "model.vq.code_dim": 2})
    return cfg


_DATA: dict[str, torch.Tensor] = {}


def _batch(cfg: xae.Config) -> torch.Tensor:
    key = cfg.data.name
    if key not in _DATA:
        _DATA[key] = xae.data.load(cfg.data).train_x[:B].clone()
    return _DATA[key]


@pytest.fixture(params=CASES, ids=[f"{n}-{k}" for n, k in CASES])
def case(request):
    name, net = request.param
    cfg = _config(name, net)
    torch.manual_seed(0)
    model = xae.build(cfg)
    return name, cfg, model, _batch(cfg)


def test_cases_cover_every_preset():
    assert {n for n, _ in CASES} == set(xae.PRESETS)
    assert any(k == "conv" for _, k in CASES) and any(k == "conv_map" for _, k in CASES)


def test_forward_shapes_and_finiteness(case):
    name, cfg, model, x = case
    d = cfg.model.latent_dim
    assert model.data_shape == tuple(x.shape[1:])
    assert model.latent_dim == d
    assert list(model.config.model.data_shape) == list(x.shape[1:])
    out = model(x, beta=1.0)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert out.distortion.shape == (B,) and torch.isfinite(out.distortion).all()
    assert out.rate.shape == (B,) and torch.isfinite(out.rate).all()
    assert out.rate_per_dim is None or out.rate_per_dim.shape == (B, d)
    if out.rate_per_dim is not None:
        torch.testing.assert_close(out.rate_per_dim.sum(-1), out.rate)
    assert out.z.shape == (B, d)
    assert out.x_mean.shape == x.shape
    assert out.aux_loss.shape == (B,)
    if model.stochastic:
        assert out.posterior is not None
        assert out.posterior.mean.shape == (B, d) and out.posterior.logvar.shape == (B, d)
        rates = [t for t in out.terms.values() if t.kind == "rate"]
        analytic = bool(rates) and all(t.note == "KL, analytic" for t in rates) \
            and not model.objective.importance_weighted
        top = out.groups[0].posterior if model.hierarchical else out.posterior
        assert analytic == (model.prior.kl(top) is not None and cfg.model.kl.estimator
                            == "analytic" and cfg.model.regularizer == "kl"
                            and not model.objective.importance_weighted)
        if analytic:
            assert (out.rate >= 0).all()  # a KL in closed form (one-draw estimates can be < 0)
    elif model.discrete:
        q = model.bottleneck
        assert out.indices.shape == (B, q.positions, *((q.stages,) if q.stages > 1 else ()))
        assert out.indices.min() >= 0 and out.indices.max() < q.codebook_size
        if out.posterior is not None:  # categorical: KL to the uniform code prior, closed form
            assert ((out.rate >= 0) & (out.rate <= q.positions * math.log(q.codebook_size)
                                       + 1e-5)).all()
        else:
            assert torch.equal(out.rate, torch.zeros(B))
    else:
        assert out.posterior is None
        if cfg.model.regularizer == "none":
            assert torch.equal(out.rate, torch.zeros(B))
        else:  # a batch-level divergence (the WAE's MMD): one value shared by every sample
            assert torch.equal(out.rate, out.rate[:1].expand(B))


def test_every_parameter_gets_a_finite_gradient(case):
    name, cfg, model, x = case
    with torch.no_grad():  # off the initialisation: a zero-initialised output layer (the flow
        for p in model.parameters():  # prior's couplings) blocks the layers before it at step 0
            p.add_(1e-3 * torch.randn_like(p))
        if model.discrete:  # small inputs all round to FSQ's centre code 0, which passes the
            getattr(model.bottleneck, "inner", model.bottleneck).proj.weight.mul_(10)  # decoder's
            # first layer no gradient (a spatial code's quantizer is the inner one)
    model.zero_grad(set_to_none=True)
    out = model(x, beta=1.0)
    sum(out.losses.values(), out.loss).backward()  # with the other optimizers' losses
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert named
    for n, p in named:
        assert p.grad is not None, f"{n} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{n} has a non-finite gradient"
        if n.endswith(".to_k.bias"):  # softmax ignores a shift shared by every key: the key
            assert p.grad.abs().max() < 1e-5, n  # bias of diffusers' attention gets none
            continue
        if model.config.model.critic == "patchgan" and n == \
                f"critic.disc.net.{len(model.critic.disc.net) - 1}.bias":
            # the hinge loss's halves, ½(mean relu(1 − d(x)) + mean relu(1 + d(x̂))), pull the
            # last bias by −½ and +½ while every logit is inside the margin, as at the start
            assert p.grad.abs().max() < 1e-6, n
            continue
        if getattr(model.bottleneck, "empty", False) and n == "decoder.init.weight":
            # no code (z = 0, the LM): the weights that read z get nothing, and must not
            assert p.grad.abs().max() == 0, n
            continue
        assert (p.grad != 0).any(), f"{n} has an all-zero gradient"


def test_public_method_shapes(case):
    name, cfg, model, x = case
    d = cfg.model.latent_dim
    enc = model.encode(x)
    assert isinstance(enc, xae.BottleneckOutput)
    assert enc.z.shape == (B, d)
    assert (enc.posterior is not None) == model.bottleneck.has_posterior
    z = torch.randn(5, d)
    assert model.decode(z).shape == (5, *model.data_shape)
    seen = model.decode(z) if model.conditional else None  # θ of an autoregressive decoder
    assert model.decode_params(z, seen).shape[0] == 5  # also reads the data it scores
    assert model.sample(7).shape == (7, *model.data_shape)
    assert model.reconstruct(x).shape == x.shape
    assert model.latent_mean(x).shape == (B, d)
    if model.discrete:  # the code of each index is what the decoder gets
        assert model.bottleneck.indices_to_z(model.prior.sample_indices(7)).shape == (7, d)
        with inference(model):
            enc = model.encode(x)
            torch.testing.assert_close(model.bottleneck.indices_to_z(enc.indices), enc.z)
    model.eval()  # batch norm (scVI's nets) would read each call's batch statistics
    path = model.interpolate(x[:3], x[3:6], steps=4)
    assert path.shape == (3, 4, *model.data_shape)
    # the end points of the path are the reconstructions of x0 and x1
    torch.testing.assert_close(path[:, 0], model.reconstruct(x[:3]))
    torch.testing.assert_close(path[:, -1], model.reconstruct(x[3:6]))
    if cfg.model.likelihood == "bernoulli":
        xs = model.sample(7)
        assert ((xs >= 0) & (xs <= 1)).all()


def test_save_load_round_trip(case, tmp_path):
    name, cfg, model, x = case
    # k-means seeds from the RNG; batch norm uses the batch's statistics; word dropout and
    # dropout draw in training
    if model.discrete or model.hierarchical or model.conditional \
            or cfg.model.mlp.batch_norm or cfg.model.mlp.dropout:
        model.eval()
    with torch.no_grad():  # move off the initialisation so that a fresh build would differ
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    checkpoint.save(tmp_path, model, state={})
    checkpoint.save_config(tmp_path, cfg)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()
    loaded = xae.load(tmp_path)
    assert isinstance(loaded, xae.Autoencoder)
    assert not loaded.training
    assert loaded.data_shape == model.data_shape and loaded.latent_dim == model.latent_dim
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    z = torch.randn(6, cfg.model.latent_dim)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), model.decode(z))
        assert torch.equal(loaded.latent_mean(x), model.latent_mean(x))
        torch.manual_seed(123)
        a = model(x, beta=0.5)
        torch.manual_seed(123)
        b = loaded(x, beta=0.5)
    assert torch.equal(a.z, b.z)
    assert torch.equal(a.loss, b.loss)
    assert torch.equal(a.distortion, b.distortion) and torch.equal(a.rate, b.rate)


def test_seeded_forward_is_reproducible(case):
    name, cfg, model, x = case
    if model.discrete:  # training passes update codebooks (EMA, restarts): compare in eval
        model.eval()
    torch.manual_seed(7)
    a = model(x)
    torch.manual_seed(7)
    b = model(x)
    assert torch.equal(a.loss, b.loss) and torch.equal(a.z, b.z)
    if model.stochastic:
        c = model(x)  # a new draw of z
        assert not torch.equal(a.z, c.z)


# ------------------------------------------------------------------------------ bad shapes


@pytest.mark.parametrize("shape,channels", [
    ((1, 6, 6), [8, 16]),      # 6 is not divisible by 2^2
    ((1, 8, 8), [4, 8, 16, 32]),  # 8 is not divisible by 2^4
    ((3, 12, 10), [8, 16]),    # W = 10 is not divisible by 4
])
def test_conv_needs_divisible_image_size(shape, channels):
    cfg = xae.preset("vae", encoder="conv", decoder="conv", latent_dim=3,
                     **{"model.conv.channels": channels})
    with pytest.raises(xae.XaeError, match=str(2 ** len(channels))):
        xae.build(cfg, shape=shape)


@pytest.mark.parametrize("shape", [(1, 12, 4), (3, 16, 16)])
def test_conv_accepts_any_divisible_size(shape):
    cfg = xae.preset("vae", encoder="conv", decoder="conv", latent_dim=3,
                     likelihood="gaussian", **{"model.conv.channels": [4, 8]})
    model = xae.build(cfg, shape=shape)
    x = torch.rand(2, *shape)
    out = model(x)
    assert out.x_mean.shape == x.shape


@pytest.mark.parametrize("which", ["encoder", "decoder"])
def test_conv_on_vector_data_is_an_error(which):
    cfg = xae.preset("linear-vae", **{f"model.{which}": "conv"})
    with pytest.raises(xae.XaeError, match="mlp"):
        xae.build(cfg)


@pytest.mark.parametrize("name,bad", [
    ("vae", (4, 1, 7, 7)), ("vae", (4, 64)), ("vae", (4, 8, 8)), ("linear-vae", (4, 21)),
    ("linear-vae", (4, 1, 20)),
])
def test_wrong_input_shape_names_the_expected_shape(name, bad):
    model = xae.build(_config(name, "mlp"))
    expected = "(batch, " + ", ".join(map(str, model.data_shape)) + ")"
    for call in (model, model.encode, model.reconstruct, model.latent_mean):
        with pytest.raises(xae.XaeError) as err:
            call(torch.zeros(bad))
        assert expected in str(err.value)


def test_regularizer_needing_a_posterior_rejects_deterministic_bottleneck():
    with pytest.raises(xae.XaeError, match="gaussian"):
        xae.build(xae.preset("ae", regularizer="kl"))


def test_log_likelihood_needs_a_stochastic_model():
    model = xae.build(_config("ae", "mlp"))
    with pytest.raises(xae.XaeError):
        xae.log_likelihood(model, torch.rand(2, 1, 8, 8), k=2)


def test_num_parameters_counts_every_parameter():
    model = xae.build(_config("vae", "mlp"))
    d, h, k = 64, 32, 3
    # encoder d→h, bottleneck h→2k, decoder k→h→d
    expected = (d * h + h) + (h * 2 * k + 2 * k) + (k * h + h) + (h * d + d)
    assert model.num_parameters() == expected == sum(p.numel() for p in model.parameters())
    assert math.prod(model.data_shape) == d
