"""xae's ``scvi`` preset side by side with scvi-tools' ``SCVI``: the same cells, split and
architecture, the same epochs, in one run (see :mod:`scvi_setup` for what is shared and how
each is measured): held-out reconstruction NLL and −ELBO, the silhouette of cell types in
the latent, batch mixing on the two-batch synthetic set, and training wall time. On scanpy's
PBMC (700 cells, 400 epochs, scvi-tools' default for that size) and on a 60,500-cell
synthetic set with two batches (55,000 training and 5,500 test cells × 1000 genes, 20
epochs).

Goals: held-out −ELBO within 1% of scvi-tools' or better, and training at least 2× faster on
the large set. Both run one after the other with the same torch thread count.

    PYTHONPATH=src .venv/bin/python benchmarks/scvi_compare.py
    PYTHONPATH=src .venv/bin/python benchmarks/scvi_compare.py --smoke --results /tmp/sc
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import scvi_setup as S
from describe import machine, machine_line
from pool import names
from xae.errors import XaeError
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
BUDGET_MIN = 90.0
ELBO_SLACK, SPEEDUP = 0.01, 2.0


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="pbmc,synthetic", help="comma-separated: pbmc, synthetic")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for both")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--smoke", action="store_true", help="3000 synthetic cells, 2 epochs "
                    "each: checks the script, measures nothing")
    args = ap.parse_args()
    args.sets = names(ap, args.sets, S.EPOCHS, "data set(s)")
    if args.threads < 1:
        ap.error("--threads must be ≥ 1")
    return args


def main() -> None:
    args = _args()
    start = time.perf_counter()
    mach = {**machine("cpu"), "threads": args.threads}
    print(f"machine  {machine_line(mach)}", flush=True)
    if args.smoke:
        S.SYNTHETIC.update(n=3000, dim=200)
    runs = args.results / ("scvi_compare_runs" if not args.smoke else "scvi_compare_smoke")
    shutil.rmtree(runs, ignore_errors=True)
    rows: dict[str, Any] = {}
    for name in args.sets:
        d = S.data(name)
        epochs = 2 if args.smoke else S.EPOCHS[name]
        print(f"{name}: {S.sizes(d)}, {epochs} epochs", flush=True)
        theirs = S.run_scvi(d, epochs, args.threads)
        print(f"  scvi-tools  {_line(theirs)}", flush=True)
        ours = S.run_xae(d, epochs, str(runs / name), args.threads)
        print(f"  xae         {_line(ours)}", flush=True)
        rows[name] = {"sizes": S.sizes(d), "epochs": epochs, "scvi_tools": theirs, "xae": ours}
    goals = _table(rows)
    spent = (time.perf_counter() - start) / 60
    print(f"budget  {spent:.1f} minutes of wall time: "
          f"{'within' if spent <= BUDGET_MIN else 'OVER'} the {BUDGET_MIN:g}-minute budget")
    if args.smoke:
        print("SMOKE SIZES: the figures above measure nothing; run without --smoke")
    write_json(args.results / ("scvi_compare.json" if not args.smoke
                               else "scvi_compare_smoke.json"), {
        "sets": rows, "goals": goals, "shared": {
            "batch": S.BATCH, "lr": S.LR, "hidden": S.HIDDEN, "latent": S.LATENT,
            "encoder_dropout": S.DROPOUT, "likelihood": "zinb, dispersion per gene",
            "kl_weight": 1.0, "synthetic": dict(S.SYNTHETIC)},
        "wall_minutes": spent, "budget_minutes": BUDGET_MIN,
        "within_budget": spent <= BUDGET_MIN, "machine": mach, "smoke": args.smoke})


def _line(r: dict[str, Any]) -> str:
    extra = f", batch mixing {r['batch_mixing']:.3f}" if "batch_mixing" in r else ""
    return (f"train {r['train_wall_s']:.1f} s, recon NLL {r['recon_nll']:.2f}, −ELBO "
            f"{r['neg_elbo']:.2f}, silhouette {r['silhouette_cell_type']:.3f}{extra}")


def _table(rows: dict[str, Any]) -> dict[str, Any]:
    print("\n| data | library | train wall (s) | recon NLL | KL | −ELBO | silhouette (types) "
          "| batch mixing |")
    print("|---|---|---|---|---|---|---|---|")
    goals: dict[str, Any] = {}
    for name, r in rows.items():
        for who in ("scvi_tools", "xae"):
            m = r[who]
            print(f"| {name} | {m['library']} | {m['train_wall_s']:.1f} | {m['recon_nll']:.2f} "
                  f"| {m['kl']:.2f} | {m['neg_elbo']:.2f} | {m['silhouette_cell_type']:.3f} | "
                  f"{m.get('batch_mixing', float('nan')):.3f} |")
        theirs, ours = r["scvi_tools"], r["xae"]
        rel = ours["neg_elbo"] / theirs["neg_elbo"] - 1
        speed = theirs["train_wall_s"] / ours["train_wall_s"]
        goals[name] = {"neg_elbo_vs_scvi_tools": rel, "elbo_goal": rel <= ELBO_SLACK,
                       "speedup": speed}
        print(f"goal  {name}: −ELBO {rel:+.2%} against scvi-tools' (≤ +{ELBO_SLACK:.0%}): "
              f"{'met' if rel <= ELBO_SLACK else 'NOT met'}; training {speed:.2f}× as fast")
    if "synthetic" in rows:
        speed = goals["synthetic"]["speedup"]
        goals["speedup_goal"] = speed >= SPEEDUP
        print(f"goal  training ≥ {SPEEDUP:g}× faster on the large set: {speed:.2f}×: "
              f"{'met' if speed >= SPEEDUP else 'NOT met'}")
    return goals


if __name__ == "__main__":
    try:
        main()
    except XaeError as e:
        sys.exit(f"scvi_compare.py: error: {e}")
