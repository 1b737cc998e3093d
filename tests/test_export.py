"""ONNX export: onnxruntime runs the exported decoder and encoder to the torch model's outputs at
any batch size, for continuous and discrete codes, MLP and conv nets; the CLI writes the folder
whole and refuses bad input."""
from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

import xae
import xae.export
from xae.cli import main
from xae.errors import XaeError
from xae.export import export_onnx


def _run(path, name, array):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [name]
    return torch.from_numpy(session.run(None, {name: array.numpy()})[0])


@pytest.mark.parametrize("name,overrides", [
    ("vae", {}), ("vae", {"encoder": "conv", "decoder": "conv", "model.conv.channels": [8, 16]}),
    ("wae-mmd", {}), ("vq-vae", {}), ("rvq-vae", {}), ("fsq-ae", {}), ("lfq-ae", {}),
    ("dvae", {}),
])
def test_onnxruntime_matches_torch_at_any_batch_size(name, overrides, tmp_path):
    torch.manual_seed(0)
    model = xae.build(xae.preset(name, **{"model.mlp.hidden": [64], **overrides})).eval()
    meta = export_onnx(model, tmp_path / "export")
    files = sorted(p.name for p in (tmp_path / "export").iterdir())
    assert files == ["decoder.onnx", "encoder.onnx", "export.json"]
    assert json.loads((tmp_path / "export" / "export.json").read_text()) == meta
    assert meta["latent_dim"] == model.latent_dim and meta["data_shape"] == [1, 8, 8]
    assert all(v < 1e-4 for v in meta["max_abs_diff"].values())
    x = xae.data.load(model.config.data).test_x
    for n in (1, 13):
        z = torch.randn(n, model.latent_dim)
        with torch.no_grad():
            want_x, want_z = model.decode(z), model.latent_mean(x[:n])
        got_x = _run(tmp_path / "export" / "decoder.onnx", "z", z)
        got_z = _run(tmp_path / "export" / "encoder.onnx", "x", x[:n])
        assert got_x.shape == (n, *model.data_shape) and got_z.shape == (n, model.latent_dim)
        torch.testing.assert_close(got_x, want_x, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got_z, want_z, atol=1e-5, rtol=1e-4)


def test_a_failed_export_leaves_the_previous_folder_whole(tmp_path, monkeypatch):
    model = xae.build(xae.preset("vae", **{"model.mlp.hidden": [32]})).eval()
    export_onnx(model, tmp_path / "export")
    before = {p.name: p.read_bytes() for p in (tmp_path / "export").iterdir()}

    def boom(*_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xae.export, "_parity", boom)
    torch.manual_seed(1)
    with pytest.raises(RuntimeError):
        export_onnx(xae.build(xae.preset("vae", **{"model.mlp.hidden": [32]})), tmp_path / "export")
    assert {p.name: p.read_bytes() for p in (tmp_path / "export").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary folder


def test_an_extra_graph_is_checked_against_torch(monkeypatch):
    """graph_bytes (the explorer's flow and descent graphs): a graph onnxruntime runs as torch
    does comes back as bytes onnxruntime loads; one that differs is an XaeError naming it."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh()).eval()
    graph = xae.export.graph_bytes(net, 3, ("a", "b"), "the test net")
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    a = torch.randn(5, 3)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"a": a.numpy()})[0], net(a).numpy(),
                                   atol=1e-6)
    monkeypatch.setattr(xae.export, "_parity", lambda *_: 0.5)
    with pytest.raises(XaeError, match="the test net's ONNX graph differs from torch by 0.5"):
        xae.export.graph_bytes(net, 3, ("a", "b"), "the test net")


def test_the_cli_exports_a_run_and_refuses_bad_input(tmp_path, capsys):
    run = tmp_path / "run"
    xae.train(xae.preset("vae", steps=5, progress=False, figures=False,
                         **{"model.mlp.hidden": [32]}), run)
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert "largest difference" in capsys.readouterr().out
    meta = json.loads((run / "export" / "export.json").read_text())
    assert meta["preset"] == "vae" and meta["decoder"]["input"] == "z"
    assert main(["export", str(run), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "decoder.onnx").is_file()
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "xae: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse: unknown format
        main(["export", str(run), "--format", "tflite"])
    assert e.value.code == 2


def test_without_onnx_the_export_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    xae.train(xae.preset("vae", steps=5, progress=False, figures=False,
                         **{"model.mlp.hidden": [32]}), run)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` fails
    with pytest.raises(xae.XaeError, match=r"make web.*pip install 'xae\[web\]'"):
        export_onnx(xae.load(run), tmp_path / "api")
    assert main(["export", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xae: error:") and "onnx package" in err and "make web" in err, err
    assert "please report" not in err and len(err.splitlines()) == 1
    assert not (run / "export").exists() and not (tmp_path / "api").exists()  # nothing written
