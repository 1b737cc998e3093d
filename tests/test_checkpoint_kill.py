"""A run killed at any instant of a checkpoint write resumes to exactly the uninterrupted run.

The instants are the file-system steps of a checkpoint (every rename, and the removal of the
checkpoint it replaces): a child process dies (``os._exit``: no clean-up runs, as under
``kill -9``) just before the N-th of them; the run is then resumed with ``xae train --resume``
and compared bitwise with one that was never interrupted.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from conftest import SUBPROCESS_ENV
from safetensors.torch import load_file

ARGS = ["--preset", "vae", "--steps", "30", "--no-progress", "--set", "model.mlp.hidden=[32]",
        "model.latent_dim=3", "train.log_every=5", "train.checkpoint_every=10",
        "train.eval_every=10", "train.figures=false", "data.binarize=dynamic"]

# One process imports torch once and forks a child per kill point; each child trains with the
# file-system steps counted and dies before step N, then a second child resumes the folder.
SCRIPT = textwrap.dedent("""
    import json, os, shutil, sys
    from xae.cli import main

    args, out, points = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def run_child(argv, kill_at):
        pid = os.fork()
        if pid == 0:
            count = [0]
            def step():
                count[0] += 1
                if count[0] == kill_at:
                    os._exit(137)
            def replace(*a, **k):
                step(); return real_replace(*a, **k)
            def rmtree(*a, **k):
                step(); return real_rmtree(*a, **k)
            if kill_at:
                os.replace, shutil.rmtree = replace, rmtree
            os._exit(main(argv))
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    # the reference run, in the same process set-up (threads) as the others
    report = {"full": [run_child(["train", *args, "--out", os.path.join(out, "full")], 0), 0]}
    for n in points:
        folder = os.path.join(out, f"kill-{n}")
        killed = run_child(["train", *args, "--out", folder], n)
        resumed = run_child(["train", "--resume", folder, "--no-progress"], 0)
        report[n] = [killed, resumed]
    print(json.dumps(report))
""")


def _log(run: Path, name: str) -> list[dict]:
    return [json.loads(x) for x in (run / name).read_text().splitlines()]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_kill_at_any_step_of_a_checkpoint_resumes_exactly(tmp_path: Path) -> None:
    full = tmp_path / "full"
    # the file-system steps of the whole run, in order: config.json's rename (step 1: a kill
    # there leaves no run to resume), then per checkpoint the weights' rename inside the new
    # folder, the old folder moved aside, the new one moved in, the old one removed and
    # model.safetensors linked in, and best.safetensors' rename after held-out evaluations
    points = list(range(2, 20))
    env = {**os.environ, **SUBPROCESS_ENV}
    p = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(ARGS), str(tmp_path),
                        json.dumps(points)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads(p.stdout.splitlines()[-1])
    assert report.pop("full") == [0, 0], p.stderr[-2000:]
    killed = [n for n, (k, _) in report.items() if k == 137]
    assert len(killed) >= 12, report  # the kills did happen, at most of the points
    for n, (_, resumed) in report.items():
        run = tmp_path / f"kill-{n}"
        assert resumed == 0, (n, report)
        for name in ("metrics.jsonl", "held_out.jsonl"):
            got = [{k: v for k, v in r.items() if k != "samples_per_s"} for r in _log(run, name)]
            want = [{k: v for k, v in r.items() if k != "samples_per_s"}
                    for r in _log(full, name)]
            assert got == want, (n, name)
        assert _same_weights(run / "model.safetensors", full / "model.safetensors"), n
        assert _same_weights(run / "best.safetensors", full / "best.safetensors"), n
        assert not [q.name for q in run.iterdir() if q.name.startswith(".")], n
