"""``xae export RUN --format diffusers``: a trained run's folder loads in the real
``diffusers.AutoencoderKL.from_pretrained``, which then decodes the same latents and gives the
same posterior as xae, in the spaces ``xae_export.json`` states; the folder is written whole
and never over a run."""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import diffusers  # in the dev extra: `make test` has it
import pytest
import torch

import xae
from xae.cli import main
from xae.export_diffusers import export_diffusers
from xae.nets.conv_map import to_map

TOL = 1e-4
NETS = {"model.diffusers.block_out_channels": [8, 16], "model.diffusers.norm_num_groups": 4,
        "model.diffusers.latent_channels": 2, "model.latent_dim": 2 * 4 * 4}  # digits: 8×8
RECON = {"model.reconstruction.perceptual": "none", "model.reconstruction.perceptual_weight": 0}


def _cfg(likelihood: str, **extra: object) -> xae.Config:
    return xae.preset("vae", encoder="diffusers", decoder="diffusers", likelihood=likelihood,
                      steps=4, progress=False, figures=False,
                      **{**NETS, **(RECON if likelihood == "reconstruction" else {}), **extra})


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A few training steps on the bundled 8×8 digits (no download)."""
    return xae.train(_cfg("reconstruction"), tmp_path_factory.mktemp("dexport") / "run")


def _load(folder: Path) -> diffusers.AutoencoderKL:
    return diffusers.AutoencoderKL.from_pretrained(str(folder), low_cpu_mem_usage=False).eval()


def _compare(model: xae.Autoencoder, ref: diffusers.AutoencoderKL, signed: bool,
             image: bool) -> dict[str, float]:
    """Largest differences of decode (in [−1, 1] for an image likelihood, logits otherwise)
    and of the posterior (diffusers fed [−1, 1] images when ``signed``, else xae's x)."""
    torch.manual_seed(3)
    x = torch.rand(5, *model.data_shape)
    z = torch.randn(5, *model.latent_shape)
    with torch.no_grad():
        theta = model.decode_params(z.permute(0, 2, 3, 1).flatten(1))
        want = 2 * theta - 1 if image else theta
        got = ref.decode(z).sample
        q, theirs = model.encode(x).posterior, ref.encode(2 * x - 1 if signed else x).latent_dist
        grid = model.encoder.grid
        assert got.std() > 0.01 and theirs.mean.std() > 0.01  # not two zeros compared
        return {"decode": float((got - want).abs().max()),
                "mean": float((theirs.mean - to_map(q.mean, grid)).abs().max()),
                "logvar": float((theirs.logvar - to_map(q.logvar, grid)).abs().max())}


def test_the_cli_export_loads_in_diffusers_and_decodes_the_same_latents(run, capsys) -> None:
    out = run.parent / "sd"
    assert main(["export", str(run), "--format", "diffusers", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "encode reads x in [0, 1]" in said and "decode gives the image in [-1, 1]" in said
    assert "scaling_factor = 1.0" in said and "largest difference" in said
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "diffusion_pytorch_model.safetensors", "xae_export.json"]
    config = json.loads((out / "config.json").read_text())
    # every key is one AutoencoderKL takes, so diffusers warns about none of them
    params = set(inspect.signature(diffusers.AutoencoderKL.__init__).parameters)
    assert set(config) - {"_class_name"} <= params and config["_class_name"] == "AutoencoderKL"
    meta = json.loads((out / "xae_export.json").read_text())
    assert meta["scaling_factor"] == config["scaling_factor"] == 1.0
    assert meta["output_map"] == {"scale": 2.0, "shift": -1.0}
    assert all(v < TOL for v in meta["max_abs_diff"].values()), meta["max_abs_diff"]
    diffs = _compare(xae.load(run), _load(out), signed=False, image=True)
    assert all(v < TOL for v in diffs.values()), diffs


@pytest.mark.parametrize("likelihood,pixel_range", [("bernoulli", "unit"),
                                                    ("gaussian", "signed"),
                                                    ("bernoulli", "signed")])
def test_every_convention_is_exact(likelihood, pixel_range, tmp_path) -> None:
    torch.manual_seed(0)
    model = xae.build(_cfg(likelihood, **{"model.diffusers.pixel_range": pixel_range})).eval()
    meta = export_diffusers(model, tmp_path / "sd")
    image = likelihood != "bernoulli"
    assert ("[-1, 1], diffusers' images" in meta["encoder_input"]) == (pixel_range == "signed")
    assert ("logits" in meta["decoder_output"]) == (not image)
    diffs = _compare(model, _load(tmp_path / "sd"), pixel_range == "signed", image)
    assert all(v < TOL for v in diffs.values()), diffs


def test_a_second_export_replaces_the_first_and_run_folders_are_refused(run, tmp_path,
                                                                       capsys) -> None:
    default = run / "diffusers"
    assert main(["export", str(run), "--format", "diffusers"]) == 0
    first = (default / "diffusion_pytorch_model.safetensors").read_bytes()
    assert main(["export", str(run), "--format", "diffusers"]) == 0  # an earlier export
    assert (default / "diffusion_pytorch_model.safetensors").read_bytes() == first
    capsys.readouterr()
    before = sorted(p.name for p in run.iterdir())
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    for out, why in [(run, "is the run"), (other, "holds files"),
                     (run.parent, "is the run .* or a folder above it")]:
        assert main(["export", str(run), "--format", "diffusers", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xae: error:") and len(err.strip().splitlines()) == 1, err
        assert re.search(why, err), err
    assert sorted(p.name for p in run.iterdir()) == before
    assert (other / "keep.txt").read_text() == "mine"


def test_a_run_of_other_pieces_is_refused_saying_what_can_be_exported(tmp_path, capsys) -> None:
    mlp = xae.train(xae.preset("vae", steps=2, progress=False, figures=False,
                               **{"model.mlp.hidden": [16]}), tmp_path / "mlp")
    assert main(["export", str(mlp), "--format", "diffusers"]) == 2
    err = capsys.readouterr().err
    assert "model.encoder=diffusers, model.decoder=diffusers and model.bottleneck=gaussian" \
        in err and "encoder=mlp" in err and "--format onnx" in err, err
    assert not (mlp / "diffusers").exists()
    det = xae.build(_cfg("gaussian", **{"model.bottleneck": "deterministic",
                                        "model.regularizer": "none"}))
    with pytest.raises(xae.XaeError, match="bottleneck=deterministic"):
        export_diffusers(det, tmp_path / "det")
    assert not (tmp_path / "det").exists()
