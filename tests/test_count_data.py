"""Count data: scanpy's PBMC sample with its raw counts recovered, a user's .h5ad (counts in
.X or a layer, cell types, a batch covariate split with the cells), and the bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xae.config import DataConfig
from xae.data import load
from xae.errors import XaeError

anndata = pytest.importorskip("anndata")
scipy_sparse = pytest.importorskip("scipy.sparse")
pd = pytest.importorskip("pandas")


def _adata(n: int = 60, g: int = 12, seed: int = 0) -> object:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, size=(n, g)).astype(np.float32)
    counts[:, 0] += 1  # every cell has counts
    obs = pd.DataFrame({"cell_type": rng.choice(["B", "T", "NK"], n),
                        "batch": rng.choice(["a", "b"], n)},
                       index=[f"c{i}" for i in range(n)])
    ad = anndata.AnnData(X=np.log1p(counts), obs=obs,
                         var=pd.DataFrame(index=[f"g{j}" for j in range(g)]))
    ad.layers["counts"] = counts
    return ad


def _write(tmp_path: Path, ad: object, name: str = "cells.h5ad") -> Path:
    path = tmp_path / name
    ad.write_h5ad(path)
    return path


def test_pbmc_counts_are_recovered_whole() -> None:
    ds = load(DataConfig(name="pbmc"))
    x = torch.cat([ds.train_x, ds.test_x])
    assert x.shape == (700, 765) and ds.test_x.shape[0] == 140
    assert torch.equal(x, x.round()) and float(x.min()) == 0 and float(x.sum(1).min()) > 0
    assert ds.info["recovery_max_relative_error"] < 1e-3
    assert ds.info["label_key"] == "bulk_labels" and len(ds.info["label_names"]) == 10
    assert int(ds.train_y.max()) == 9


def test_an_h5ad_layer_with_cell_types_and_batches(tmp_path: Path) -> None:
    ad = _adata()
    path = _write(tmp_path, ad)
    ds = load(DataConfig(name="h5ad", path=str(path), layer="counts", batch_key="batch",
                         test_fraction=0.25))
    assert ds.train_x.shape == (45, 12) and ds.test_x.shape == (15, 12)
    assert ds.info["label_names"] == ["B", "NK", "T"] and ds.info["batch_names"] == ["a", "b"]
    # each cell keeps its own counts, type and batch through the split
    rows = {tuple(r): i for i, r in enumerate(ad.layers["counts"].tolist())}
    for x, y, b in zip(ds.test_x, ds.test_y, ds.info["test_batch"]):
        i = rows[tuple(x.tolist())]
        assert ds.info["label_names"][int(y)] == ad.obs["cell_type"].iloc[i]
        assert ds.info["batch_names"][int(b)] == ad.obs["batch"].iloc[i]


@pytest.mark.parametrize("change,keys,needle", [
    (None, {}, "not whole numbers"),  # .X is log-normalised
    (None, {"layer": "raw"}, "data.layer 'raw' is not in"),
    (None, {"layer": "counts", "batch_key": "donor"}, "data.batch_key 'donor' is not"),
    (None, {"layer": "counts", "label_key": "kind"}, "data.label_key 'kind' is not"),
    ("negative", {"layer": "counts"}, "negative values"),
    ("empty_cell", {"layer": "counts"}, "1 cell(s) without any count"),
    ("empty_gene", {"layer": "counts"}, "1 gene(s) without any count (g3)"),
])
@pytest.mark.parametrize("sparse", [False, True])
def test_bad_counts_are_named(tmp_path: Path, change, keys, needle, sparse) -> None:
    ad = _adata()
    if change == "negative":
        ad.layers["counts"][2, 2] = -1
    elif change == "empty_cell":
        ad.layers["counts"][5] = 0
    elif change == "empty_gene":
        ad.layers["counts"][:, 3] = 0
    if sparse:  # only the stored values are checked one by one; the sums see the zeros
        ad.X, ad.layers["counts"] = (scipy_sparse.csr_matrix(ad.X),
                                     scipy_sparse.csr_matrix(ad.layers["counts"]))
    path = _write(tmp_path, ad)
    with pytest.raises(XaeError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load(DataConfig(name="h5ad", path=str(path), **keys))


def test_a_file_that_is_not_anndata_is_refused(tmp_path: Path, capsys) -> None:
    from xae.cli import main

    bogus = tmp_path / "x.h5ad"
    bogus.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(XaeError, match="is not an AnnData .h5ad file"):
        load(DataConfig(name="h5ad", path=str(bogus)))
    with pytest.raises(XaeError, match="set data.path"):
        load(DataConfig(name="h5ad"))
    code = main(["train", "--data", "h5ad", "--steps", "1", "--no-progress", "--set",
                 f"data.path={bogus}", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "not an AnnData" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_embed_writes_every_cell_in_the_files_order(tmp_path: Path, trained: Path,
                                                    capsys) -> None:
    import xae
    from xae.cli import main

    ad = _adata(n=80)
    path = _write(tmp_path, ad)
    run = tmp_path / "run"
    assert main(["train", "--preset", "scvi-nb", "--data", "h5ad", "--steps", "20",
                 "--no-progress", "--set", f"data.path={path}", "data.layer=counts",
                 "model.latent_dim=3", "train.figures=false", "--out", str(run)]) == 0
    out = tmp_path / "emb" / "cells.h5ad"
    assert main(["embed", str(run), "--out", str(out)]) == 0
    got = anndata.read_h5ad(out)
    assert got.n_obs == 80 and list(got.obs_names) == list(ad.obs_names)
    model = xae.load(run)
    with torch.no_grad():
        z = model.latent_mean(torch.as_tensor(ad.layers["counts"]))
    np.testing.assert_allclose(got.obsm["X_xae"], z.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.layers["xae_normalized"].sum(1), 1e4, rtol=1e-4)
    assert got.uns["xae"]["likelihood"] == "nb"
    capsys.readouterr()
    for argv, needle in ((["embed", str(trained), "--out", str(tmp_path / "d.h5ad")],
                          "trained on digits"),
                         (["embed", str(run), "--out", str(tmp_path / "d.csv")], ".h5ad")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err
    assert not (tmp_path / "d.h5ad").exists()


def test_a_sparse_file_stays_sparse_until_batching(tmp_path: Path) -> None:
    """A CSR layer loads as SparseRows: each batch is dense and equal to the same cells of
    the dense file; a model with a batch covariate trains on it (the loss falls) and embeds
    every cell as from the dense counts."""
    import json

    import xae
    from xae.cli import main
    from xae.data.sparse_rows import SparseRows

    ad = _adata(n=200, g=30)
    dense_path = _write(tmp_path, ad, "dense.h5ad")
    ad.layers["counts"] = scipy_sparse.csr_matrix(ad.layers["counts"])
    path = _write(tmp_path, ad, "sparse.h5ad")
    keys = {"layer": "counts", "batch_key": "batch"}
    sparse, dense = (load(DataConfig(name="h5ad", path=str(p), **keys))
                     for p in (path, dense_path))
    assert isinstance(sparse.train_x, SparseRows) and isinstance(dense.train_x, torch.Tensor)
    idx = torch.tensor([5, 0, 17, 3])
    assert torch.equal(sparse.train_x[idx], dense.train_x[idx])
    assert torch.equal(sparse.test_x[2:9], dense.test_x[2:9])
    assert torch.equal(sparse.info["train_batch"], dense.info["train_batch"])
    run = tmp_path / "run"
    assert main(["train", "--preset", "scvi-nb", "--data", "h5ad", "--steps", "60",
                 "--no-progress", "--set", f"data.path={path}", "data.layer=counts",
                 "data.batch_key=batch", "model.covariate=batch", "model.latent_dim=3",
                 "model.nb.dispersion=gene-batch", "model.library=latent",
                 "train.log_every=10", "--out", str(run)]) == 0
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text()
              .splitlines()]
    assert losses[-1] < losses[0]
    out = tmp_path / "cells.h5ad"
    assert main(["embed", str(run), "--out", str(out)]) == 0
    model = xae.load(run)
    c = torch.tensor([model.config.model.covariate_levels.index(b) for b in ad.obs["batch"]])
    z = xae.latent(model, torch.as_tensor(ad.layers["counts"].toarray()), c)
    np.testing.assert_allclose(anndata.read_h5ad(out).obsm["X_xae"], z.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_synthetic_counts_follow_their_model() -> None:
    cfg = DataConfig(name="synthetic-counts", n=3000, dim=40, true_latent_dim=2,
                     cell_types=4, batches=2, test_fraction=0.1, seed=3)
    ds = load(cfg)
    x = ds.train_x.double()
    assert ds.train_x.shape == (3000, 40) and ds.test_x.shape == (300, 40)
    assert torch.equal(ds.train_x, ds.train_x.round()) and float(x.min()) == 0
    assert ds.info["train_z"].shape == (3000, 2) and ds.info["label_names"][3] == "type3"
    # library sizes: log-normal around 2000, batch 1 shifted up by exp(0.2)
    lib = x.sum(1).log()
    b = ds.info["train_batch"]
    assert float(lib[b == 0].mean()) == pytest.approx(np.log(2000), abs=0.05)
    assert float(lib[b == 1].mean() - lib[b == 0].mean()) == pytest.approx(0.2, abs=0.05)
    # overdispersed: within one type and batch the variance of a gene's counts exceeds its
    # mean (Poisson's equality) wherever the mean is large enough to tell
    cells = (ds.train_y == 0) & (b == 0)
    m, v = x[cells].mean(0), x[cells].var(0)
    assert int((m > 5).sum()) >= 5 and bool((v[m > 5] > 1.5 * m[m > 5]).all())
    assert torch.equal(load(cfg).train_x, ds.train_x)  # seeded
