"""Test NLL against training wall time, one table and one figure for every model measured.

Reads each ``<results>/mnist_nll_<preset>.json`` that has a time-to-quality curve (written by
``mnist_nll.py --curve-points P``) and prints every model's curve points (training minutes,
steps, epochs, IW NLL and −ELBO with the curve's K on its first test images), then each
model's final NLL (K = 5000 unless the run said otherwise, on the test images it used), the
target and whether it is met. Presets of the benchmark without a result, or with one but no
curve, are named. Draws ``<results>/time_to_quality.png``: NLL against training minutes, one
line per model.

    PYTHONPATH=src .venv/bin/python benchmarks/time_to_quality.py
    PYTHONPATH=src .venv/bin/python benchmarks/time_to_quality.py --results /tmp/nll
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nll_setup import FIGURES
from xae.viz import new_figure, save_figure

HERE = Path(__file__).resolve().parent


def read_results(results: Path) -> tuple[dict[str, dict], list[str]]:
    """The results with a curve, by preset, and a note for each benchmark preset without."""
    found, notes = {}, []
    for path in sorted(results.glob("mnist_nll_*.json")):
        r = json.loads(path.read_text())
        if r.get("curve"):
            found[r["preset"]] = r
        else:
            notes.append(f"{path.name}: no curve (rerun with --curve-points)")
    notes += [f"mnist_nll_{p}.json: missing" for p in FIGURES
              if p not in found and not (results / f"mnist_nll_{p}.json").exists()]
    return found, notes


def print_curves(found: dict[str, dict]) -> None:
    print(f"{'model':15} {'minutes':>8} {'steps':>8} {'epochs':>8} {'NLL':>15} {'−ELBO':>8}  "
          f"(IW, curve K; test images)")
    for preset, r in found.items():
        for p in r["curve"]:
            print(f"{preset:15} {p['train_s'] / 60:8.2f} {p['steps']:8d} {p['epochs']:8.2f} "
                  f"{p['nll_iw']:8.2f} ± {p['nll_iw_se']:4.2f} {p['neg_elbo_k']:8.2f}  "
                  f"(K={r['curve_k']}, {r['curve_n']})")


def print_finals(found: dict[str, dict]) -> None:
    print(f"\n{'model':15} {'minutes':>8} {'budget':>7} {'final NLL':>16} {'K':>5} {'test':>6} "
          f"{'published':>9} {'target':>7}  met")
    for preset, r in found.items():
        budget = f"{r['train_minutes_budget']:g}" if r.get("train_minutes_budget") else "none"
        target = r.get("target")
        met = "—" if target is None else ("yes" if r["nll_iw"] <= target else "NO")
        if r.get("test_subset"):
            met += " (test subset)"
        pub = f"{r['published']:9.2f}" if r.get("published") is not None else f"{'—':>9}"
        tgt = f"{target:7.1f}" if target is not None else f"{'—':>7}"
        print(f"{preset:15} {r['train_time_s'] / 60:8.2f} {budget:>7} {r['nll_iw']:8.2f} ± "
              f"{r['nll_iw_se']:4.2f} {r['k']:5d} {r['test_n']:6d} {pub} {tgt}  {met}")


def draw(found: dict[str, dict], path: Path) -> Path:
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    for preset, r in found.items():
        pts = r["curve"]
        ax.plot([p["train_s"] / 60 for p in pts], [p["nll_iw"] for p in pts], marker="o",
                label=f"{preset} (final {r['nll_iw']:.2f}, K={r['k']})")
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("test NLL, IW (nats)")
    ax.set_title("binarized MNIST: NLL against training time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results",
                    help="folder of the mnist_nll_*.json results")
    args = ap.parse_args()
    found, notes = read_results(args.results)
    for note in notes:
        print(f"note: {note}")
    if not found:
        sys.exit(f"time_to_quality.py: error: no mnist_nll_*.json with a curve in "
                 f"{args.results}; run benchmarks/mnist_nll.py --curve-points P first")
    machines = {json.dumps(r.get("machine"), sort_keys=True) for r in found.values()}
    if len(machines) > 1:
        print("note: the runs were made on different machines (see each JSON's machine); "
              "their times do not compare directly")
    print_curves(found)
    print_finals(found)
    print(f"\nfigure: {draw(found, args.results / 'time_to_quality.png')}")


if __name__ == "__main__":
    main()
