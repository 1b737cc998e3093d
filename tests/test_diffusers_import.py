"""``xae import diffusers DIR --out RUN``: a randomly initialised ``AutoencoderKL`` saved with
the real ``save_pretrained`` becomes a run that ``xae.load`` and ``xae eval`` read, with the
same encoder and decoder as diffusers in xae's data space; exporting it gives the folder back;
bad folders are refused with one line and nothing written."""
from __future__ import annotations

import json
import re
from pathlib import Path

import diffusers  # in the dev extra: `make test` has it
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import xae
from xae.cli import main
from xae.nets.conv_map import to_map

TOL = 1e-4
SIZES = dict(in_channels=3, out_channels=3, block_out_channels=[8, 16], norm_num_groups=4,
             sample_size=16, latent_channels=4, layers_per_block=1,
             down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2)


def _save(folder: Path, **change: object) -> diffusers.AutoencoderKL:
    torch.manual_seed(0)
    ref = diffusers.AutoencoderKL(**{**SIZES, **change}).eval()
    ref.save_pretrained(str(folder))
    return ref


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, diffusers.AutoencoderKL, Path]:
    """An AutoencoderKL with non-default pipeline keys, and 3×16×16 images as a user array."""
    base = tmp_path_factory.mktemp("dimport")
    ref = _save(base / "vae", scaling_factor=0.5, latents_mean=[0.1, 0.2, 0.3, 0.4],
                latents_std=[1.0, 2.0, 3.0, 4.0])
    np.save(base / "images.npy", np.random.default_rng(0).random((40, 3, 16, 16), np.float32))
    return base / "vae", ref, base / "images.npy"


def _import(folder: Path, out: Path, images: Path | None = None) -> int:
    data = ["--set", "data.name=arrays", f"data.path={images}"] if images else []
    return main(["import", "diffusers", str(folder), "--out", str(out), *data])


def test_the_imported_run_computes_what_diffusers_does(saved, tmp_path, capsys) -> None:
    folder, ref, images = saved
    assert _import(folder, tmp_path / "run", images) == 0
    said = capsys.readouterr().out
    assert "kept in imported.json" in said and "scaling_factor=0.5" in said
    assert "latents_mean=[0.1, 0.2, 0.3, 0.4]" in said
    model = xae.load(tmp_path / "run")
    cfg = model.config.model
    assert (cfg.encoder, cfg.bottleneck, cfg.regularizer, cfg.likelihood) == (
        "diffusers", "gaussian", "kl", "reconstruction")
    assert model.data_shape == (3, 16, 16) and model.latent_shape == (4, 8, 8)
    torch.manual_seed(1)
    x, z = torch.rand(4, 3, 16, 16), torch.randn(4, 4, 8, 8)
    with torch.no_grad():
        theirs = ref.encode(2 * x - 1).latent_dist  # diffusers' images are in [−1, 1]
        q = model.encode(x).posterior
        image = ref.decode(z).sample
        theta = model.decode(z.permute(0, 2, 3, 1).flatten(1))
    assert image.std() > 0.01 and theirs.mean.std() > 0.01
    diffs = [float((to_map(q.mean, (8, 8)) - theirs.mean).abs().max()),
             float((to_map(q.logvar, (8, 8)) - theirs.logvar).abs().max()),
             float((theta - (image + 1) / 2).abs().max())]  # θ is the image in [0, 1]
    assert max(diffs) < TOL, diffs
    assert main(["eval", str(tmp_path / "run"), "--no-progress", "--k", "0"]) == 0
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert report["test"]["psnr"] > 0 and report["test"]["rate"] > 0


def test_exporting_the_imported_run_gives_the_folder_back(saved, tmp_path) -> None:
    folder, _, _ = saved
    assert _import(folder, tmp_path / "run") == 0
    assert main(["export", str(tmp_path / "run"), "--format", "diffusers", "--out",
                 str(tmp_path / "back")]) == 0
    theirs = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    ours = load_file(str(tmp_path / "back" / "diffusion_pytorch_model.safetensors"))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    config = json.loads((folder / "config.json").read_text())
    again = json.loads((tmp_path / "back" / "config.json").read_text())
    assert {k: v for k, v in again.items() if not k.startswith("_")} == \
        {k: v for k, v in config.items() if not k.startswith("_")}


def _config(folder: Path, **change: object) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))


def _unet(folder: Path) -> None:
    diffusers.UNet2DModel(sample_size=8, block_out_channels=(8, 16), norm_num_groups=4,
                          down_block_types=("DownBlock2D",) * 2,
                          up_block_types=("UpBlock2D",) * 2).save_pretrained(str(folder))


BAD = {
    "unet": (_unet, "config of a UNet2DModel"),
    "class": (lambda f: (_save(f), _config(f, _class_name="VQModel")), "config of a VQModel"),
    "no class": (lambda f: (_save(f), _config(f, _class_name=None)), "names no diffusers"),
    "no weights": (lambda f: (_save(f), (f / "diffusion_pytorch_model.safetensors").unlink()),
                   "no diffusion_pytorch_model.safetensors"),
    "no config": (lambda f: (_save(f), (f / "config.json").unlink()), "no config.json"),
    "no quant_conv": (lambda f: _save(f, use_quant_conv=False), "use_quant_conv = False"),
    "other blocks": (lambda f: (_save(f), _config(f, down_block_types=[
        "DownEncoderBlock2D", "AttnDownEncoderBlock2D"])), "down_block_types"),
    "act_fn": (lambda f: _save(f, act_fn="gelu"), "act_fn = 'gelu'"),
    "unknown key": (lambda f: (_save(f), _config(f, use_tiling_magic=True)),
                    r"\['use_tiling_magic'\] are unknown"),
    "weights of another size": (lambda f: (_save(f), _config(f, latent_channels=8)),
                                "does not match its config.json"),
    "corrupt weights": (lambda f: (_save(f), (f / "diffusion_pytorch_model.safetensors")
                                   .write_bytes(b"junk")), "corrupt or not a safetensors"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_folder_is_refused_and_nothing_is_written(case, tmp_path, capsys) -> None:
    make, match = BAD[case]
    make(tmp_path / "src")
    assert _import(tmp_path / "src", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert err.startswith("xae: error:") and len(err.strip().splitlines()) == 1, err
    assert re.search(match, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no run, no temporary folder


def test_an_existing_out_or_wrong_data_is_refused(saved, tmp_path, capsys) -> None:
    folder, _, images = saved
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    assert _import(folder, tmp_path / "full") == 2
    assert "holds files" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine.txt"]
    assert _import(folder, tmp_path / "run") == 0
    assert _import(folder, tmp_path / "run") == 2  # an imported run is never replaced
    assert "is a run folder" in capsys.readouterr().err
    assert main(["import", "diffusers", str(folder), "--out", str(tmp_path / "d"), "--set",
                 "data.name=digits"]) == 2
    assert "shaped (1, 8, 8)" in capsys.readouterr().err
    assert main(["import", "diffusers", str(folder), "--out", str(tmp_path / "m"), "--set",
                 "model.latent_dim=3"]) == 2
    assert "only data.* keys" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() and not (tmp_path / "m").exists()
