"""docs/design.md's worked examples are real: each new piece is one file and one registry
line, written into a copy of the source tree exactly as the page shows them, and then trained
through xae.train with no other change."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import ROOT, SUBPROCESS_ENV

BLOCK = re.compile(r"```python\n# (file|register): (\S+)\n(.*?)```", re.S)

SCRIPT = """
import json, sys, numpy as np, xae
out, counts = sys.argv[1], sys.argv[2]
common = {"train.steps": 60, "train.log_every": 10, "train.progress": False,
          "train.figures": False, "train.eval_every": 0, "model.mlp.hidden": [32]}
runs = {
    "negbinomial": xae.preset("vae", **{**common, "data.name": "arrays", "data.path": counts,
                                      "model.likelihood": "negbinomial",
                                      "model.negbinomial.dispersion": 2.0}),
    "scaled": xae.preset("vae", **{**common, "model.prior": "scaled",
                                 "model.scaled.scale": 0.5}),
    "sphere": xae.preset("wae-mmd", **{**common, "model.bottleneck": "sphere",
                                     "model.sphere.radius": 4.0}),
}
result = {}
for name, cfg in runs.items():
    run = xae.train(cfg, f"{out}/{name}")
    log = [json.loads(l) for l in open(run / "metrics.jsonl")]
    test = json.load(open(run / "metrics.json"))["test"]
    model = xae.load(run)
    result[name] = {"first": log[0]["loss"], "last": log[-1]["loss"], "test": test,
                    "piece": type(getattr(model, {"negbinomial": "likelihood", "scaled":
                                                  "prior", "sphere": "bottleneck"}[name])).__name__}
try:
    xae.build(xae.preset("vae", **{"model.prior": "scaled", "model.scaled.scael": 1.0}))
except xae.XaeError as e:
    result["typo"] = str(e)
print(json.dumps(result))
"""


def test_the_worked_examples_add_a_piece_each_as_one_file_and_one_line(tmp_path: Path) -> None:
    blocks = BLOCK.findall((ROOT / "docs" / "design.md").read_text())
    assert sorted(kind for kind, _, _ in blocks) == ["file"] * 3 + ["register"] * 3
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for kind, path, code in blocks:
        target = tree / path
        if kind == "file":
            assert not target.exists(), f"{path} is not a new file"
            target.write_text(code)
        else:
            with open(target, "a") as f:
                f.write("\n" + code)
    rng = np.random.default_rng(0)
    rates = np.exp(rng.normal(0.5, 1.0, size=(1, 20)))
    np.save(tmp_path / "counts.npy", rng.poisson(rates, size=(600, 20)).astype(np.float32))
    env = {**SUBPROCESS_ENV, "PYTHONPATH": str(tree / "src"), "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "runs"),
                        str(tmp_path / "counts.npy")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert {result[n]["piece"] for n in ("negbinomial", "scaled", "sphere")} == \
        {"NegativeBinomial", "ScaledNormal", "Sphere"}
    for name in ("negbinomial", "scaled", "sphere"):
        assert result[name]["last"] < result[name]["first"], (name, result[name])
    assert "neg_elbo" in result["negbinomial"]["test"]  # a likelihood with an ELBO
    assert "neg_elbo" not in result["sphere"]["test"]  # a deterministic code has none
    assert "did you mean 'model.scaled.scale'" in result["typo"]
