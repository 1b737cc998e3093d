"""scVI's model as config over the shared pieces: the encoder on log1p(counts), the MLP's
batch norm and encoder dropout (absent by default, so older runs' weights keep their names),
the count likelihood as the model's distortion, and the scvi presets training on PBMC."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import xae
from xae.cli import main
from xae.config import apply
from xae.errors import XaeError
from xae.nets.mlp import MLPDecoder, MLPEncoder
from xae.registry import build

pytest.importorskip("anndata")


def test_the_encoder_sees_log1p_of_the_counts() -> None:
    cfg = xae.preset("scvi-nb")
    torch.manual_seed(0)
    model = build(cfg).eval()
    x = torch.poisson(torch.full((4, *model.data_shape), 2.0))
    x[:, 0] += 1
    torch.testing.assert_close(model.features(x), model.encoder(torch.log1p(x)))
    with pytest.raises(XaeError, match="'sqrt' is unknown"):
        build(apply(cfg, {"model.input_transform": "sqrt"}))


def test_batch_norm_and_dropout_only_when_asked() -> None:
    plain = MLPEncoder((20,), hidden=[8, 8])
    assert [type(m).__name__ for m in plain.net] == ["Flatten", "Linear", "ReLU", "Linear",
                                                     "ReLU"]
    assert set(plain.state_dict()) == {"net.1.weight", "net.1.bias", "net.3.weight",
                                       "net.3.bias"}  # the names older runs saved
    scvi = MLPEncoder((20,), hidden=[8], batch_norm=True, dropout=0.1)
    assert [type(m).__name__ for m in scvi.net] == ["Flatten", "Linear", "BatchNorm1d", "ReLU",
                                                    "Dropout"]
    dec = MLPDecoder((20,), 3, 1, hidden=[8], batch_norm=True, dropout=0.1)
    assert [type(m).__name__ for m in dec.net] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]


def test_the_distortion_is_the_zinb_nll() -> None:
    torch.manual_seed(0)
    model = build(xae.preset("scvi")).eval()
    x = torch.poisson(torch.full((6, *model.data_shape), 1.5))
    x[:, 0] += 1
    with torch.no_grad():
        out = model(x)
        theta = model.decode_params(out.z)
        want = -model.likelihood.log_prob(x, theta)
    torch.testing.assert_close(out.terms["distortion"].value, want)
    assert theta.shape == (6, 2 * model.data_shape[0])  # ρ and the dropout logits


@pytest.mark.parametrize("name", ["scvi", "scvi-nb", "poisson-vae"])
def test_the_count_presets_train_on_pbmc(name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    assert main(["train", "--preset", name, "--epochs", "15", "--no-progress", "--set",
                 "train.log_every=5", "train.figures=false", "--out", str(out)]) == 0
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert test["active_units"] >= 3 and test["rate"] > 1.0
