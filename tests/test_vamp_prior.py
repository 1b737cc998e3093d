"""The VampPrior against its definition: the equal-weight mixture of the encoder's posteriors at
the pseudo-inputs, normalized, sampled from the same mixture, trained through the encoder."""
from __future__ import annotations

import copy

import pytest
import torch

import xae
from xae.priors.vamp import VampPrior


def _model(latent_dim: int = 2, components: int = 5) -> xae.Autoencoder:
    torch.manual_seed(0)
    model = xae.build(xae.preset("vamp-vae", latent_dim=latent_dim,
                                 **{"model.mlp.hidden": [16],
                                    "model.vamp.components": components})).double()
    with torch.no_grad():  # spread the pseudo-inputs so the components differ
        model.prior.pseudo_inputs.copy_(torch.rand_like(model.prior.pseudo_inputs))
    return model


def _direct_mixture(model: xae.Autoencoder) -> torch.distributions.Distribution:
    q = model.encode(model.prior.pseudo_inputs).posterior
    k = q.mean.shape[0]
    return torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.zeros(k, dtype=q.mean.dtype)),
        torch.distributions.Independent(torch.distributions.Normal(q.mean, q.std), 1))


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_vamp_density_integrates_to_one(latent_dim):
    model = _model(latent_dim)
    axis = torch.linspace(-15, 15, 1201 if latent_dim == 2 else 20001, dtype=torch.float64)
    grid = (torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).view(-1, 2)
            if latent_dim == 2 else axis[:, None])
    with torch.no_grad():
        mass = model.prior.log_prob(grid).exp().sum().item() * (axis[1] - axis[0]).item() ** latent_dim
    assert mass == pytest.approx(1.0, abs=1e-4)


def test_vamp_is_the_mixture_of_the_encoders_posteriors_and_samples_from_it():
    model = _model(2)
    with torch.no_grad():
        mix = _direct_mixture(model)
        z = torch.randn(64, 2, dtype=torch.float64) * 3
        torch.testing.assert_close(model.prior.log_prob(z), mix.log_prob(z))
        # leading sample dimensions, as the IWAE objective passes them
        torch.testing.assert_close(model.prior.log_prob(z.view(4, 16, 2)),
                                   mix.log_prob(z).view(4, 16))
    torch.manual_seed(1)
    s = model.prior.sample(200_000)
    assert s.shape == (200_000, 2)
    spread = mix.variance.sqrt()
    torch.testing.assert_close(s.mean(0) / spread, mix.mean / spread, atol=0.01, rtol=0)
    torch.testing.assert_close(s.var(0) / mix.variance, torch.ones(2, dtype=s.dtype),
                               atol=0.02, rtol=0)


def test_the_kl_trains_the_pseudo_inputs_and_the_encoder_through_the_prior():
    model = _model(2)
    x = torch.rand(8, 1, 8, 8, dtype=torch.float64)
    model(x).loss.backward()
    assert model.prior.pseudo_inputs.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in model.encoder.parameters())
    assert not any(n.startswith("prior.") and "encoder" in n for n, _ in model.named_parameters())


def test_a_copy_uses_its_own_encoder():
    model = _model(2)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.encoder.parameters():
            p.add_(0.5)
    z = torch.randn(10, 2, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(twin.prior.log_prob(z), model.prior.log_prob(z))
        torch.testing.assert_close(twin.prior.log_prob(z), _direct_mixture(twin).log_prob(z))


def test_a_trained_vamp_vae_reloads_with_its_pseudo_inputs(tmp_path):
    cfg = xae.preset("vamp-vae", latent_dim=2, steps=30, progress=False, figures=False,
                     **{"model.vamp.components": 6, "model.mlp.hidden": [16]})
    run = xae.train(cfg, tmp_path / "run")
    model = xae.load(run)
    init = VampPrior(2, components=6, data_shape=(1, 8, 8)).pseudo_inputs
    assert not torch.allclose(model.prior.pseudo_inputs, init)  # they were learned
    xs = model.sample(16)
    assert xs.shape == (16, 1, 8, 8) and torch.isfinite(xs).all()
    again = xae.load(run)
    z = torch.randn(5, 2)
    with torch.no_grad():
        torch.testing.assert_close(again.prior.log_prob(z), model.prior.log_prob(z))
    metrics = xae.evaluate_model(model, torch.rand(50, 1, 8, 8)).metrics
    assert metrics["rate"] > 0 and "holes_mmd" in metrics


def test_vamp_bad_configs():
    with pytest.raises(xae.XaeError, match="needs model.bottleneck=gaussian"):
        xae.build(xae.preset("ae", prior="vamp"))
    with pytest.raises(xae.XaeError, match="model.vamp.components"):
        xae.build(xae.preset("vamp-vae", **{"model.vamp.components": 0}))
    with pytest.raises(xae.XaeError, match="not bound"):
        VampPrior(2, components=3, data_shape=(4,)).sample(2)
