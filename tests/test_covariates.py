"""A categorical covariate beside the code (scVI's batch correction, a conditional VAE): the
one-hot columns the nets read, the levels a run records, the held-out split keeping each
cell's batch, a latent freed of the batch on data with a strong batch effect, and the
refusals."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import xae
from xae.config import apply
from xae.data import covariates, load
from xae.data.split import hold_out
from xae.errors import XaeError
from xae.likelihoods.counts import NegativeBinomial
from xae.registry import build

SYNTH = {"data.name": "synthetic-counts", "data.batches": 2, "data.n": 1500, "data.dim": 100,
         "model.mlp.dropout": 0.0, "train.figures": False, "train.progress": False}


def _model(**keys: object) -> xae.Autoencoder:
    torch.manual_seed(0)
    cfg = xae.preset("scvi-nb", **{**SYNTH, "model.covariate": "batch",
                                   "model.covariate_levels": ["a", "b", "c"], **keys})
    return build(cfg).eval()


def _counts(n: int, genes: int = 100) -> torch.Tensor:
    x = torch.poisson(torch.full((n, genes), 2.0))
    x[:, 0] += 1  # no empty cell
    return x


def test_the_nets_read_the_one_hot_level_beside_the_input_and_the_code() -> None:
    model = _model()
    x, z = _counts(4), torch.randn(4, model.latent_dim)
    c = torch.tensor([0, 1, 2, 1])
    one_hot = torch.eye(3)[c]
    torch.testing.assert_close(model.features(x, c),
                               model.encoder(torch.cat([torch.log1p(x), one_hot], 1)))
    torch.testing.assert_close(model.decode_params(z, c=c),
                               model.decoder(torch.cat([z, one_hot], 1)))
    # the level changes what is decoded from the same code
    assert not torch.allclose(model.decode_params(z, c=torch.zeros(4, dtype=torch.long)),
                              model.decode_params(z, c=torch.ones(4, dtype=torch.long)))
    decoder_only = _model(**{"model.covariate_encoder": False})
    torch.testing.assert_close(decoder_only.features(x, c),
                               decoder_only.encoder(torch.log1p(x)))


def test_a_missing_or_bad_level_is_refused() -> None:
    model, x = _model(), _counts(2)
    with pytest.raises(XaeError, match="pass each datum's level as c"):
        model.latent_mean(x)
    with pytest.raises(XaeError, match=r"in \[0, 3\) per datum"):
        model.latent_mean(x, torch.tensor([0, 3]))
    with pytest.raises(XaeError, match="integer covariate level"):
        model.latent_mean(x, torch.tensor([0.0, 1.0]))
    plain = build(xae.preset("scvi-nb", **SYNTH)).eval()
    with pytest.raises(XaeError, match="trained without covariates"):
        plain.latent_mean(x, torch.tensor([0, 1]))


@pytest.mark.parametrize("keys, needle", [
    ({"data.name": "digits", "model.likelihood": "bernoulli", "model.input_transform": "none",
      "model.encoder": "conv", "model.decoder": "conv"}, "needs model.encoder=mlp"),
    ({"model.covariate_levels": []}, "training fills in from the data"),
    ({"model.covariate": "none"}, "model.covariate_levels is set"),
    ({"model.prior": "vamp"}, "pseudo-inputs"),
])
def test_settings_a_covariate_cannot_apply_to_are_errors(keys: dict, needle: str) -> None:
    cfg = xae.preset("scvi-nb", **{**SYNTH, "model.covariate": "batch",
                                   "model.covariate_levels": ["a", "b"]})
    with pytest.raises(XaeError, match=needle):
        build(apply(cfg, keys))


def test_data_without_the_covariate_says_which_key_to_set() -> None:
    data = load(xae.preset("scvi-nb", **{**SYNTH, "data.batches": 1}).data)
    assert "train_batch" in data.info  # one batch: every cell in it
    pbmc_like = load(xae.preset("scvi-nb", **SYNTH).data)
    pbmc_like.info.pop("train_batch")
    with pytest.raises(XaeError, match="data.batch_key"):
        covariates.codes(pbmc_like, "batch", "train")
    with pytest.raises(XaeError, match="trained on the covariate levels"):
        covariates.check_levels(data, "batch", ["x", "y"])


def test_the_validation_split_keeps_each_cells_batch() -> None:
    data = load(xae.preset("scvi-nb", **SYNTH).data)
    rest, held = hold_out(data, 0.2, seed=3)
    # each held-out cell, found again among all training cells, has its batch with it
    for part, split in ((rest, "train"), (held, "test")):
        x, b = getattr(part, f"{split}_x"), covariates.codes(part, "batch", split)
        assert len(b) == len(x)
        rows = {tuple(r.tolist()): int(v) for r, v in zip(data.train_x, data.info["train_batch"])}
        assert all(rows[tuple(r.tolist())] == int(v) for r, v in zip(x[:50], b[:50]))


def _batch_and_type_accuracy(run: Path) -> tuple[float, float]:
    """3-fold 15-NN accuracy of predicting each test cell's batch and type from its latent."""
    model = xae.load(run)
    data = load(model.config.data)
    z = xae.latent(model, data.test_x, covariates.for_model(model, data, "test")).numpy()
    knn = KNeighborsClassifier(15)
    return (float(np.mean(cross_val_score(knn, z, data.info["test_batch"].numpy(), cv=3))),
            float(np.mean(cross_val_score(knn, z, data.test_y.numpy(), cv=3))))


def test_the_batch_covariate_takes_the_batch_out_of_the_latent(tmp_path: Path) -> None:
    """Two batches with their own gene effects: without the covariate the latent tells the
    batches apart almost perfectly; with it, the batch is much harder to read while the cell
    types stay as readable."""
    acc = {}
    for cov in ("none", "batch"):
        cfg = xae.preset("scvi-nb", **{**SYNTH, "model.covariate": cov, "train.steps": 400})
        run = xae.train(cfg, tmp_path / cov)
        acc[cov] = _batch_and_type_accuracy(run)
        if cov == "batch":
            assert xae.load(run).config.model.covariate_levels == ["batch0", "batch1"]
    assert acc["none"][0] > 0.85, acc
    assert acc["batch"][0] < acc["none"][0] - 0.1, acc
    assert acc["batch"][1] > acc["none"][1] - 0.05, acc


def test_the_latent_librarys_prior_is_each_batchs_log_library_moments() -> None:
    from xae.library import LatentLibrary

    x = torch.tensor([[1.0, 3.0], [7.0, 1.0], [2.0, 2.0], [30.0, 2.0], [5.0, 5.0]])
    c = torch.tensor([0, 0, 1, 1, 1])
    lib = LatentLibrary(2, levels=2)
    lib.fit(x, c)
    for b in (0, 1):
        logs = np.log(x.sum(1).numpy()[c.numpy() == b])
        assert float(lib.prior_mean[b]) == pytest.approx(logs.mean(), rel=1e-6)
        assert float(lib.prior_logvar[b].exp()) == pytest.approx(logs.var(ddof=1), rel=1e-5)
    with pytest.raises(XaeError, match="batch 1 has 1"):
        lib.fit(x[:3], c[:3])


def test_a_latent_library_at_the_observed_size_scores_as_the_observed_one() -> None:
    """θ with log Σx appended gives the observed library's log-likelihood; another ℓ another
    one; the model's library term is the closed-form Gaussian KL to its batch's prior."""
    model = _model(**{"model.library": "latent"})
    assert model.library is not None
    x, z, c = _counts(5), torch.randn(5, model.latent_dim), torch.tensor([0, 1, 2, 0, 1])
    theta = model.decode_params(z, c=c)
    lik = model.likelihood
    at_observed = NegativeBinomial(model.data_shape, 3, False)
    at_observed.load_state_dict(lik.state_dict())
    observed = at_observed.log_prob(x, theta)
    torch.testing.assert_close(lik.log_prob(x, torch.cat([theta, x.sum(1, keepdim=True).log()],
                                                          1)), observed)
    assert not torch.allclose(lik.log_prob(x, torch.cat([theta, torch.zeros(5, 1)], 1)),
                              observed)
    with pytest.raises(XaeError, match="1 drawn log library"):
        lik.log_prob(x, theta)
    model.library.prior_mean.copy_(torch.tensor([5.0, 6.0, 7.0]))
    model.library.prior_logvar.copy_(torch.tensor([0.0, -1.0, 1.0]))
    out = model(x, c=c)
    q = model.library.posterior(model.encoder_input(x, c))
    m, v = q.mean.squeeze(1), q.var.squeeze(1)
    pm, pv = model.library.prior_mean[c], model.library.prior_logvar[c].exp()
    kl = 0.5 * (torch.log(pv / v) + (v + (m - pm) ** 2) / pv - 1)
    torch.testing.assert_close(out.terms["rate/library"].value, kl)
    assert torch.allclose(out.rate, out.terms["rate"].value + kl)
    with pytest.raises(XaeError, match="model.library=observed"):
        build(apply(xae.preset("vae"), {"model.library": "latent"}))


def test_a_latent_library_learns_each_cells_library(tmp_path: Path) -> None:
    cfg = xae.preset("scvi-nb", **{**SYNTH, "model.library": "latent", "train.steps": 400,
                                   "model.covariate": "batch"})
    run = xae.train(cfg, tmp_path / "lib")
    model = xae.load(run).eval()
    data = load(model.config.data)
    c = covariates.codes(data, "batch", "test")
    with torch.no_grad():
        q = model.library.posterior(model.encoder_input(data.test_x, c))
    observed = data.test_x.sum(1).log()
    # about 0.3 for the untrained net, which reads log1p(x) too; 0.88 after 400 steps
    assert np.corrcoef(q.mean.squeeze(1).numpy(), observed.numpy())[0, 1] > 0.75
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.8 * losses[0]
    # the IW bound draws ℓ with z: its K-sample ELBO, a Monte Carlo estimate, agrees with
    # the analytic one (which has the library's KL, a few nats, as rate/library)
    rep = xae.likelihood_report(model, data.test_x[:200], 50, c=c[:200])
    one_draw = xae.evaluate_model(model, data.test_x[:200], c=c[:200],
                                  hole_metrics=False).metrics
    assert one_draw["rate/library"] > 1.5
    assert float(-rep.elbo.double().mean()) == pytest.approx(one_draw["neg_elbo"], abs=1.0)


def test_a_per_batch_dispersion_reads_each_cells_row() -> None:
    """dispersion=gene-batch: a cell of batch b is scored with row b of the learned table,
    exactly as a per-gene model whose r is that row; the model appends the level to θ."""
    model = _model(**{"model.nb.dispersion": "gene-batch"})
    lik = model.likelihood
    with torch.no_grad():
        lik.log_r.copy_(torch.randn_like(lik.log_r))
    x, z, c = _counts(6), torch.randn(6, model.latent_dim), torch.tensor([0, 1, 2, 2, 1, 0])
    theta = model.decode_params(z, c=c)
    got = lik.log_prob(x, torch.cat([theta, torch.eye(3)[c]], 1))
    for b in range(3):
        per_gene = NegativeBinomial(model.data_shape)
        with torch.no_grad():
            per_gene.log_r.copy_(lik.log_r[b])
        rows = c == b
        torch.testing.assert_close(got[rows], per_gene.log_prob(x[rows], theta[rows]))
    out = model(x, c=c)  # the model appends the one-hot level itself
    assert torch.isfinite(out.loss)
    with pytest.raises(XaeError, match="needs a covariate"):
        build(xae.preset("scvi-nb", **{**SYNTH, "model.nb.dispersion": "gene-batch"}))


def test_the_cell_map_colours_the_latent_plane_by_type_and_by_batch() -> None:
    from xae.plane import plane_of
    from xae.viz_cells import cell_map_figure

    model = _model(**{"model.covariate_levels": ["batch0", "batch1"]})
    data = load(model.config.data)
    fig = cell_map_figure(model, data)
    types, batches = fig.axes[:2]
    assert [t.get_text() for t in types.get_legend().get_texts()] == data.info["label_names"]
    assert [t.get_text() for t in batches.get_legend().get_texts()] == ["batch0", "batch1"]
    # the points are the test cells' latent means (read at their batches) on their PC plane
    z = xae.latent(model, data.test_x, data.info["test_batch"]).numpy()
    xy = plane_of(z).project(z)
    drawn = np.concatenate([col.get_offsets() for col in batches.collections])
    order = np.lexsort(drawn.T), np.lexsort(xy.T)
    np.testing.assert_allclose(drawn[order[0]], xy[order[1]], rtol=1e-4, atol=1e-5)


def test_a_label_conditional_vae_decodes_the_class_it_is_given(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture
                                                              ) -> None:
    """model.covariate=label on digits (a conditional VAE): the prior's centre decoded at
    level k looks like the test images of class k, for nearly every class; `xae sample`
    draws at the level --level names, and asks for one."""
    from xae.cli import main

    cfg = xae.preset("vae", **{"model.covariate": "label", "train.steps": 300,
                               "train.progress": False, "train.figures": False})
    run = xae.train(cfg, tmp_path / "cvae")
    model = xae.load(run).eval()
    data = load(model.config.data)
    means = torch.stack([data.test_x[data.test_y == k].mean(0) for k in range(10)]).flatten(1)
    with torch.no_grad():
        decoded = model.decode(torch.zeros(10, model.latent_dim), c=torch.arange(10))
    nearest = torch.cdist(decoded.flatten(1), means).argmin(1)
    assert int((nearest == torch.arange(10)).sum()) >= 8, nearest
    assert main(["sample", str(run), "-n", "4", "--level", "7", "-o",
                 str(tmp_path / "s.png")]) == 0
    for extra, needle in (([], "choose one with --level, one of 0, 1, 2"),
                          (["--level", "x"], "(got 'x')")):
        assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "t.png"),
                     *extra]) == 2
        assert needle in capsys.readouterr().err
    assert not (tmp_path / "t.png").exists()
    # the ONNX export and the explorer decode z alone: they refuse, saying what to use
    assert main(["export", str(run), "--out", str(tmp_path / "exp")]) == 2
    assert "xae sample --level" in capsys.readouterr().err and not (tmp_path / "exp").exists()
    from xae.explore.runs import load_run

    with pytest.raises(XaeError, match="the explorer maps and decodes z alone"):
        load_run(run)
