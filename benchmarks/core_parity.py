"""Every preset before and after a change of the core: the same seeded run on the bundled
digits in two source trees, and the difference of each final test metric.

The older tree is a git worktree of ``--before`` (default: the last commit before issue 14's
redesign). Each preset that exists in both trees trains ``--steps`` steps with its defaults
(seed 0, one thread) and the two ``metrics.json`` are compared key by key.

    .venv/bin/python benchmarks/core_parity.py [--before f03070e] [--steps 200]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "core_parity.json"
RUN = """
import json, sys, xae
cfg = xae.preset(sys.argv[1], **{"train.steps": int(sys.argv[2]), "train.progress": False,
                                 "train.figures": False, "train.threads": 0})
run = xae.train(cfg, sys.argv[3])
print(json.dumps(json.load(open(run / "metrics.json"))["test"]))
"""
LIST = "import json, xae; print(json.dumps(list(xae.PRESETS)))"


def _python(src: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", *args], env=env, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    return p.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="f03070e")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old),
                        args.before], check=True)
        try:
            trees = {"before": old / "src", "after": ROOT / "src"}
            presets = {k: json.loads(_python(v, LIST)) for k, v in trees.items()}
            common = [p for p in presets["after"] if p in presets["before"]]
            rows = {}
            for preset in common:
                test = {k: json.loads(_python(src, RUN, preset, str(args.steps),
                                              str(Path(tmp) / k / preset)))
                        for k, src in trees.items()}
                keys = [k for k in test["before"] if k in test["after"]]
                diff = {k: test["after"][k] - test["before"][k] for k in keys}
                rows[preset] = {"before": test["before"], "after": test["after"],
                                "max_abs_diff": max(abs(v) for v in diff.values()),
                                "new_keys": sorted(set(test["after"]) - set(test["before"]))}
                print(f"{preset:16s} max |after − before| over {len(keys)} metrics = "
                      f"{rows[preset]['max_abs_diff']:.3g}; new: "
                      f"{', '.join(rows[preset]['new_keys']) or '-'}", flush=True)
            only_new = [p for p in presets["after"] if p not in presets["before"]]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"before": args.before, "steps": args.steps,
                                   "presets": rows, "only_after": only_new}, indent=1))
    print(f"presets only after: {', '.join(only_new)}; written to {RESULTS}")


if __name__ == "__main__":
    main()
