"""The KL weight of the KL-regularized autoencoder, measured: does it mainly set the latents' scale?

The seeds' argument: in the autoencoder of latent diffusion (L1 + perceptual + PatchGAN +
1e-6·KL) the KL is too weak to make a VAE of it and "mainly constrains the scale of the
latents". This trains the ``kl-ae`` preset with the KL weight β = 0, 1e-6, 1e-4, 1e-2 and 1
(``--betas``), everything else fixed (the sizes of :mod:`ldm_setup`: diffusers-layout nets
[16, 32, 32], ST-LPIPS alex, PatchGAN width 32 from half of the run, 1000 steps of batch
100, seed 0) on Fashion-MNIST (``--data mnist`` for MNIST), fits a diffusion prior to each
(``xae prior fit``'s Python entry point, 2000 steps) and measures on the 10,000 test images:
the rate (analytic KL, nats), PSNR, rFID (FID-LeNet of the reconstructions, Fashion-MNIST's
own LeNet: NOT Inception FID), the latents' scale (the posterior means pooled: std, largest
|z| = ``latent_abs_max``, the outlier mass = share of |z − mean| > 4·std, 6.3e-5 for a
Gaussian) and the sample FID of 5000 diffusion-prior samples. Then it says, from the
numbers, whichever way they go, whether "the KL mainly constrains the scale": how much the
latent std and the outliers change from β = 0 to β = 1e-6 (and on to 1e-2) against how much
rFID and PSNR change.

Budget: 5 runs × 1000 steps × 0.78 s (1 thread: 0.66 s per step with the GAN off, 0.89 with
it on; see :mod:`ldm_setup`) ≈ 65 min, plus 5 × ≈ 4.7 min of prior fit and evaluation ≈ 88
min on one thread, within 90 and less with ``--threads 2``. (``latent_diffusion.py`` trains
1200 steps, so its KL-AE row is not this script's β = 1e-6 row.) The wall time spent is
printed. Finished runs in ``--run-dir`` are reused (``--fresh`` retrains); ``--eval-only``
re-measures them.

    PYTHONPATH=src .venv/bin/python benchmarks/kl_weight.py --threads 2
    PYTHONPATH=src .venv/bin/python benchmarks/kl_weight.py --data mnist --threads 2
    PYTHONPATH=src .venv/bin/python benchmarks/kl_weight.py --eval-only --threads 2
    # a trial: seconds, into a temporary folder
    PYTHONPATH=src .venv/bin/python benchmarks/kl_weight.py --smoke --threads 1 --results /tmp/klw
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


import ldm_setup as L
import xae
from describe import architecture
from xae.errors import XaeError
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
BETAS = (0.0, 1e-6, 1e-4, 1e-2, 1.0)
STEPS = 1000


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    ap.add_argument("--betas", default=",".join(f"{b:g}" for b in BETAS),
                    help="comma-separated KL weights")
    ap.add_argument("--steps", type=int, default=STEPS, help="training steps per run")
    ap.add_argument("--prior-steps", type=int, default=L.PRIOR_STEPS)
    ap.add_argument("--fid-samples", type=int, default=L.FID_SAMPLES)
    ap.add_argument("--test-n", type=int, default=L.TEST_N, help="test images measured")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--run-dir", type=Path, default=None,
                    help="folder of the runs (default <results>/kl_weight_runs/<data>)")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--eval-only", action="store_true", help="measure the runs as they stand")
    ap.add_argument("--fresh", action="store_true", help="retrain finished runs")
    ap.add_argument("--refit-prior", action="store_true", help="refit existing priors")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: 6 steps, 10 prior steps, 200 test images, 100 samples")
    args = ap.parse_args()
    try:
        args.betas = [float(b) for b in args.betas.split(",")]
    except ValueError:
        ap.error(f"--betas must be comma-separated numbers, got {args.betas!r}")
    if any(b < 0 for b in args.betas):
        ap.error("--betas must be ≥ 0")
    return L.finish_args(ap, args, "kl_weight_runs")


def main() -> None:
    args = _args()
    start, mach = L.start(args.threads)
    data = L.data_set(args.data)
    results: dict[str, dict[str, Any]] = {}
    for beta in args.betas:
        cfg = L.config("kl-ae", {**L.LDM_LOSS, "beta.value": beta}, args.data, args.sizes,
                       args.threads)
        run, t0 = args.run_dir / f"beta_{beta:g}", time.perf_counter()
        if args.eval_only:
            if not (run / "metrics.json").is_file():
                raise XaeError(f"--eval-only: {run} holds no finished run; train it first")
            trained, now = json.loads((run / "metrics.json").read_text()), False
        else:
            trained, now = L.train(cfg, run, data, args.fresh)
        prior = L.fit_prior(run, args.sizes, data, refit=args.refit_prior)
        r = L.measure(run, data, args.sizes, own=False, fitted=True)
        r.update({"beta": beta, "architecture": architecture(xae.load(run)),
                  "steps": trained["step"], "train_s": trained["train_time_s"],
                  "trained_now": now,
                  "prior_fit": {k: v for k, v in prior.items() if k != "loss_curve"}})
        results[f"{beta:g}"] = r
        print(f"β = {beta:g}: {'trained' if now else 'reused'} ({trained['step']} steps, "
              f"{trained['train_time_s']:.0f} s of training), measured; "
              f"{time.perf_counter() - t0:.0f} s in all", flush=True)
    _table(args, results)
    verdict = _verdict(results)
    budget = L.budget_line(start, results)
    if args.smoke:
        print("SMOKE SIZES: the figures above measure nothing; run without --smoke")
    name = "kl_weight.json" if args.data == "fashion-mnist" else f"kl_weight_{args.data}.json"
    write_json(args.results / name, {
        "data": args.data, "runs": results, "verdict": verdict, "budget": budget,
        "machine": mach, "smoke": args.smoke, "sizes": vars(args.sizes),
        "perceptual": L.PERCEPTUAL, "block_out_channels": L.CHANNELS,
        "patchgan_width": L.PATCHGAN_WIDTH, "eval_only": args.eval_only,
        "measured_step_s_1_thread": L.MEASURED_STEP_S})


def _table(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    s = args.sizes
    print(f"\n{args.data}, kl-ae: {s.steps} steps of batch 100 per run; 4×7×7 code; "
          f"{s.test_n} test images; diffusion prior {s.prior_steps} steps, sample FID on "
          f"{s.fid_samples} samples; ST-LPIPS ({L.PERCEPTUAL}, not LPIPS)")
    print("| KL weight β | rate (nats) | PSNR | rFID | latent std | largest abs(z) | "
          "share abs(z) > 4 std | sample FID (diffusion prior) |")
    print("|---|---|---|---|---|---|---|---|")
    for b, r in results.items():
        print(f"| {b} | {L.fmt(r['rate_nats'], '.1f')} | {L.fmt(r['psnr'])} | "
              f"{L.fmt(r['rfid'])} | {L.fmt(r['latent_std'], '.3g')} | "
              f"{L.fmt(r['latent_abs_max'], '.3g')} | {L.fmt(r['outlier_share_4std'], '.2e')} | "
              f"{L.fmt(r.get('fid_fitted'))} |")
    print("FID-LeNet: " + next(iter(results.values()))["fid_net"])


def _change(results: dict, a: str, b: str, key: str) -> float | None:
    if a not in results or b not in results:
        return None
    x, y = results[a][key], results[b][key]
    return y / x if x else None


def _verdict(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the numbers say about "the KL mainly constrains the scale of the latents": the
    factor by which the latent std (and the largest |z|) moves between β = 0 and β = 1e-6,
    and between 1e-6 and 1e-2, against the factor by which rFID moves and the PSNR change.
    The claim is read as supported for a step when the scale moves by ≥ 2× while rFID moves
    by less than 1.5× and PSNR by less than 1 dB; the thresholds are printed with it."""
    out: dict[str, Any] = {"rule": "scale moves ≥ 2× while rFID moves < 1.5× and PSNR < 1 dB"}
    print(f"\nthe KL mainly constrains the scale of the latents? (per step: {out['rule']})")
    for a, b in (("0", "1e-06"), ("1e-06", "0.01"), ("0.01", "1")):
        std = _change(results, a, b, "latent_std")
        top = _change(results, a, b, "latent_abs_max")
        rfid = _change(results, a, b, "rfid")
        if std is None or rfid is None:
            print(f"  β {a} → {b}: not measured")
            continue
        dpsnr = results[b]["psnr"] - results[a]["psnr"]
        scale = max(std, 1 / std) if std > 0 else float("inf")
        fid_moved = max(rfid, 1 / rfid) if rfid > 0 else float("inf")
        yes = scale >= 2 and fid_moved < 1.5 and abs(dpsnr) < 1
        print(f"  β {a} → {b}: latent std ×{std:.3g}, largest |z| ×{top:.3g}; rFID ×{rfid:.3g}, "
              f"PSNR {dpsnr:+.2f} dB, rate {results[a]['rate_nats']:.1f} → "
              f"{results[b]['rate_nats']:.1f} nats: "
              + ("the scale moved, the reconstructions hardly: supports the claim" if yes else
                 "does not support the claim on this step (" +
                 ("the scale moved < 2×" if scale < 2 else "the reconstructions moved too") +
                 (", and neither did the reconstructions"
                  if scale < 2 and fid_moved < 1.5 and abs(dpsnr) < 1 else "") + ")"))
        out[f"{a}->{b}"] = {"latent_std_ratio": std, "abs_max_ratio": top, "rfid_ratio": rfid,
                            "psnr_change_db": dpsnr, "supports": yes}
    return out


if __name__ == "__main__":
    try:
        main()
    except XaeError as e:
        sys.exit(f"kl_weight.py: error: {e}")
