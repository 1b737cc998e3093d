"""Posterior collapse under an autoregressive decoder, shown and fixed, on the Penn Treebank.

A VAE whose decoder can model p(x) alone learns to ignore z: the KL goes to 0. This trains the
arms of :mod:`text_setup` (plain; KL annealing; annealing + word dropout; free bits; cyclical
annealing; a causal transformer decoder plain and with free bits) and a language model of
each decoder (the KL = 0 limit: an LSTM LM and a transformer LM of the arms' sizes) with the
same steps, batch and learning rate, as one-thread workers side by side, and reports each
arm's KL, active units, reconstruction, the IW bound on the test NLL per sentence and its
perplexity per word (words and <eos>) beside the LM of its own decoder.

Goals: the plain VAE collapses (KL < 0.1 nat), and at least two remedies keep KL ≥ 2 nats
(Bowman et al. 2016 reported about 2) with a perplexity no worse than the LM's by more than 2%.
Longer runs (``--steps``) write their results and runs under names that carry the step count.

    PYTHONPATH=src .venv/bin/python benchmarks/text_collapse.py
    PYTHONPATH=src .venv/bin/python benchmarks/text_collapse.py --smoke --results /tmp/tc
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import text_setup as T
from pool import names, run_jobs, workers_machine
from xae.errors import XaeError
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
BUDGET_MIN = 90.0
COLLAPSED_KL, KEPT_KL, PPL_SLACK = 0.1, 2.0, 0.02


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arms", default=",".join(T.ARMS), help="comma-separated arms")
    ap.add_argument("--steps", type=int, default=T.STEPS, help="training steps per arm")
    ap.add_argument("--workers", type=int, default=2, help="one-thread worker processes")
    ap.add_argument("--k", type=int, default=T.K_IW, help="importance samples of the NLL bound")
    ap.add_argument("--test-n", type=int, default=None,
                    help="test sentences measured (default: all 3761)")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--smoke", action="store_true", help="30 steps, K = 2 on 100 test "
                    "sentences: checks the script, measures nothing")
    args = ap.parse_args()
    args.arms = names(ap, args.arms, T.ARMS, "arm(s)")
    if args.steps < 1 or args.workers < 1 or args.k < 1 or (args.test_n is not None
                                                           and args.test_n < 2):
        ap.error("--steps, --workers and --k must be ≥ 1, --test-n ≥ 2")
    return args


def main() -> None:
    args = _args()
    start = time.perf_counter()
    mach = workers_machine(args.workers)
    steps, k, test_n = (30, 2, 100) if args.smoke else (args.steps, args.k, args.test_n)
    tag = "_smoke" if args.smoke else ("" if steps == T.STEPS else f"_s{steps}")
    runs = args.results / f"text_collapse_runs{tag}"
    jobs = [T.Job(arm, steps, str(runs / arm), k, test_n) for arm in args.arms]

    def report(done: int, total: int, r: dict[str, Any]) -> None:
        print(f"[{done}/{total}] {r['arm']}: {'reused' if r['reused'] else 'trained'}, KL "
              f"{r['kl']:.3f}, perplexity {r['perplexity']:.1f}; "
              f"{(time.perf_counter() - start) / 60:.1f} min", flush=True)

    rows = {r["arm"]: r for r in run_jobs(T.work, jobs, args.workers, report)}
    goals = _table(rows, steps)
    spent = (time.perf_counter() - start) / 60
    print(f"budget  {spent:.1f} minutes of wall time: "
          f"{'within' if spent <= BUDGET_MIN else 'OVER'} the {BUDGET_MIN:g}-minute budget")
    if args.smoke:
        print("SMOKE SIZES: the figures above measure nothing; run without --smoke")
    write_json(args.results / f"text_collapse{tag}.json", {
        "arms": [rows[a] for a in args.arms if a in rows], "goals": goals,
        "sizes": {"steps": steps, "hidden": T.HIDDEN, "embed": T.EMBED, "max_len": T.MAX_LEN,
                  "batch": T.BATCH, "lr": T.LR, "k_iw": k, "test_n": test_n,
                  "warmup_steps": max(1, round(steps * T.WARMUP / T.STEPS))},
        "wall_minutes": spent, "budget_minutes": BUDGET_MIN,
        # the arms' own training and measuring, reused ones included (reuse shortens the wall)
        "worker_minutes": sum(r["train_s"] + r["eval_s"] for r in rows.values()) / 60,
        "within_budget": spent <= BUDGET_MIN, "machine": mach, "smoke": args.smoke})


def _vs_lm(rows: dict[str, dict[str, Any]], arm: str) -> float | None:
    """An arm's perplexity over its own decoder's LM's, minus 1 (None: no such LM measured)."""
    lm = rows.get(T.lm_of(arm))
    return None if lm is None or arm == T.lm_of(arm) else (
        rows[arm]["perplexity"] / lm["perplexity"] - 1)


def _table(rows: dict[str, dict[str, Any]], steps: int) -> dict[str, Any]:
    print(f"\nPTB (Mikolov's split, 10k vocabulary, sentences cut at {T.MAX_LEN} words), "
          f"{steps} steps of batch {T.BATCH}; NLL per sentence (IW bound, K = "
          f"{next(iter(rows.values()))['k']}; exact for the LMs), perplexity per word and "
          "<eos>; each arm against the LM of its own decoder")
    print("| arm | KL (nats) | active units | recon | −ELBO | NLL | perplexity | vs its LM |")
    print("|---|---|---|---|---|---|---|---|")
    for arm, r in rows.items():
        rel = _vs_lm(rows, arm)
        r["vs_lm"] = rel
        print(f"| {arm} | {r['kl']:.3f} | {r['active_units']} | {r['recon']:.2f} | "
              f"{r['neg_elbo']:.2f} | {r['nll']:.2f} | {r['perplexity']:.2f} | "
              f"{'' if rel is None else f'{rel:+.1%}'} |")
    out: dict[str, Any] = {}
    if "plain" in rows:
        out["plain_collapses"] = rows["plain"]["kl"] < COLLAPSED_KL
        print(f"goal  the plain VAE collapses (KL {rows['plain']['kl']:.3f} < {COLLAPSED_KL}): "
              f"{'met' if out['plain_collapses'] else 'NOT met'}")
    if any(_vs_lm(rows, a) is not None for a in rows):
        kept = [a for a, r in rows.items() if a not in ("plain", "transformer")
                and (rel := _vs_lm(rows, a)) is not None and r["kl"] >= KEPT_KL
                and rel <= PPL_SLACK]
        out["remedies_kept"] = kept
        out["two_remedies"] = len(kept) >= 2
        print(f"goal  ≥ 2 remedies keep KL ≥ {KEPT_KL} with perplexity ≤ their LM's + "
              f"{PPL_SLACK:.0%}: {kept or 'none'}: {'met' if out['two_remedies'] else 'NOT met'}")
    return out


if __name__ == "__main__":
    try:
        main()
    except XaeError as e:
        sys.exit(f"text_collapse.py: error: {e}")
