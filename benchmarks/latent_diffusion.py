"""First stages of latent diffusion against VAEs: one code size, one training budget, one table.

Five models with the same diffusers-layout encoder and decoder and the same 4×7×7 code, each
trained for the same number of steps (batch 100, Adam β = (0.5, 0.9), lr 4.5e-4, seed 0) on
Fashion-MNIST (``--data mnist`` for MNIST):

- ``vae``: β = 1, a Gaussian likelihood with a fixed σ = 0.1 (``--vae-sigma``; −log p(x|z) =
  ‖x − x̂‖²/(2σ²) + const, i.e. MSE weighed 50× per pixel against the KL), no critic;
- ``beta-vae``: the same with a small β = 0.01 (``--small-beta``);
- ``kl-ae-nogan``: the ``kl-ae`` preset's loss (L1 + ST-LPIPS over a learned variance, KL
  weight 1e-6) with ``model.critic = none``;
- ``kl-ae``: the ``kl-ae`` preset in full (the PatchGAN with the adaptive weight);
- ``vq-gan``: the ``vq-gan`` preset (512 codes of 4 values at 7×7 positions). Its own prior is
  the uniform code prior unless ``--code-prior-epochs`` > 0 fits the autoregressive code
  prior (``xae prior fit``), which then is its own prior; the table says which. A diffusion
  prior does not apply to a discrete code ("n/a").

Every continuous-code run gets a diffusion prior fitted by ``xae prior fit``'s Python entry
point (:func:`xae.diffprior.fit_diffusion_prior`: flow matching on the 60,000 training
latents scaled to unit variance). On the 10,000 test images: PSNR, SSIM, rFID (FID-LeNet
between the reconstructions and the test images, :func:`xae.evaluate.fid.recon_fid`), the
rate in nats (the analytic KL; for VQ-GAN the bits of its index stream × ln 2), and sample
FID of 5000 samples of the own prior and of the diffusion prior. FID-LeNet uses the data
set's own LeNet (Fashion-MNIST's for fashion-mnist): NOT Inception FID, and not comparable
with papers' figures. Goals: the full KL-AE's rFID at least 5× lower than the β = 1 VAE's;
diffusion-prior samples at least 2× lower FID than the VAE's own prior samples (printed for
the VAE's own diffusion prior and for the KL-AE's).

Sizes (see :mod:`ldm_setup` for the measured per-step times): the whole script fits 90
minutes on two cores, so the nets are ``block_out_channels`` [16, 32, 32] (the preset has
[32, 64, 64]), the perceptual term ST-LPIPS alex (the preset's VGG took 2.5× the step
time on CPU), the PatchGAN width 32 (preset 64) and it starts at half of the run, 1200 steps
per model, 2000 prior steps. Budget at 1 thread: training 1200 × (0.23 + 0.23 + 0.66 +
0.78 + 0.85) s ≈ 55 min (0.78 and 0.85: GAN off for the first half, on for the second),
evaluation ≈ 4 × 4.8 + 1 min ≈ 20 min: ≈ 75 min, within 90 on one core and less with
``--threads 2``. The wall time spent is printed against the 90 minutes.

Finished runs in ``--run-dir`` are reused (``--fresh`` retrains), so a killed script goes on
where it stopped; ``--eval-only`` re-measures the runs as they stand (fitting a diffusion
prior only where there is none; ``--refit-prior`` refits).

    PYTHONPATH=src .venv/bin/python benchmarks/latent_diffusion.py --threads 2
    PYTHONPATH=src .venv/bin/python benchmarks/latent_diffusion.py --data mnist --threads 2
    PYTHONPATH=src .venv/bin/python benchmarks/latent_diffusion.py --eval-only --threads 2
    PYTHONPATH=src .venv/bin/python benchmarks/latent_diffusion.py --models vae,kl-ae
    # a trial: seconds, into a temporary folder
    PYTHONPATH=src .venv/bin/python benchmarks/latent_diffusion.py --smoke --threads 1 \\
        --results /tmp/ldm
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
from xae.codeprior import fit_code_prior
from xae.errors import XaeError
from xae.fileio import write_json
from xae.runfiles import CODE_PRIOR

HERE = Path(__file__).resolve().parent
MODELS = ("vae", "beta-vae", "kl-ae-nogan", "kl-ae", "vq-gan")


def rows(args: argparse.Namespace) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each model's preset and keys."""
    vae = {"model.likelihood": "gaussian", "model.gaussian.scale": "fixed",
           "model.gaussian.sigma": args.vae_sigma, "model.critic": "none"}
    return {"vae": ("kl-ae", {**vae, "beta.value": 1.0}),
            "beta-vae": ("kl-ae", {**vae, "beta.value": args.small_beta}),
            "kl-ae-nogan": ("kl-ae", {**L.LDM_LOSS, "model.critic": "none"}),
            "kl-ae": ("kl-ae", L.LDM_LOSS),
            "vq-gan": ("vq-gan", L.LDM_LOSS)}


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated subset of {', '.join(MODELS)}")
    ap.add_argument("--steps", type=int, default=L.STEPS, help="training steps per model")
    ap.add_argument("--prior-steps", type=int, default=L.PRIOR_STEPS)
    ap.add_argument("--fid-samples", type=int, default=L.FID_SAMPLES)
    ap.add_argument("--test-n", type=int, default=L.TEST_N, help="test images measured")
    ap.add_argument("--vae-sigma", type=float, default=0.1, help="the VAEs' fixed σ")
    ap.add_argument("--small-beta", type=float, default=0.01, help="the β-VAE's β")
    ap.add_argument("--code-prior-epochs", type=int, default=0,
                    help="fit VQ-GAN's autoregressive code prior for this many epochs "
                         "(0: its own prior stays the uniform code prior)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--run-dir", type=Path, default=None,
                    help="folder of the runs (default <results>/latent_diffusion_runs/<data>)")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--eval-only", action="store_true", help="measure the runs as they stand")
    ap.add_argument("--fresh", action="store_true", help="retrain finished runs")
    ap.add_argument("--refit-prior", action="store_true", help="refit existing priors")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: 6 steps, 10 prior steps, 200 test images, 100 samples")
    args = ap.parse_args()
    args.models = args.models.split(",")
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    return L.finish_args(ap, args, "latent_diffusion_runs")


def main() -> None:
    args = _args()
    start, mach = L.start(args.threads)
    data = L.data_set(args.data)
    table = rows(args)
    cfgs = {m: L.config(*table[m], args.data, args.sizes, args.threads) for m in args.models}
    results: dict[str, dict[str, Any]] = {}
    for name, cfg in cfgs.items():
        run = args.run_dir / name
        t0 = time.perf_counter()
        if args.eval_only:
            if not (run / "metrics.json").is_file():
                raise XaeError(f"--eval-only: {run} holds no finished run; train it first")
            trained, now = json.loads((run / "metrics.json").read_text()), False
        else:
            trained, now = L.train(cfg, run, data, args.fresh)
        discrete = cfg.model.bottleneck == "vq"
        prior: dict | None = None
        if not discrete:
            prior = L.fit_prior(run, args.sizes, data, refit=args.refit_prior)
        elif args.code_prior_epochs and (args.refit_prior or not (run / CODE_PRIOR).is_dir()):
            prior = fit_code_prior(run, epochs=args.code_prior_epochs)
        r = L.measure(run, data, args.sizes, own=True, fitted=not discrete)
        r.update({"architecture": architecture(xae.load(run)), "steps": trained["step"],
                  "train_s": trained["train_time_s"], "trained_now": now,
                  "prior_fit": {k: v for k, v in (prior or {}).items() if k != "loss_curve"},
                  "keys": table[name][1], "preset": table[name][0]})
        results[name] = r
        print(f"{name}: {'trained' if now else 'reused'} ({trained['step']} steps, "
              f"{trained['train_time_s']:.0f} s of training), measured; "
              f"{time.perf_counter() - t0:.0f} s in all", flush=True)
    _report(args, results)
    goals = [L.ratio_goal("rFID: VAE (β = 1) ≥ 5× KL-AE full",
                          _get(results, "kl-ae", "rfid"), _get(results, "vae", "rfid"), 5),
             L.ratio_goal("sample FID: VAE own prior ≥ 2× VAE + diffusion prior",
                          _get(results, "vae", "fid_fitted"), _get(results, "vae", "fid_own"), 2),
             L.ratio_goal("sample FID: VAE own prior ≥ 2× KL-AE full + diffusion prior",
                          _get(results, "kl-ae", "fid_fitted"), _get(results, "vae", "fid_own"),
                          2)]
    budget = L.budget_line(start, results)
    if args.smoke:
        print("SMOKE SIZES: the figures above measure nothing; run without --smoke")
    name = "latent_diffusion.json" if args.data == "fashion-mnist" else \
        f"latent_diffusion_{args.data}.json"
    write_json(args.results / name, {
        "data": args.data, "models": results, "goals": goals, "budget": budget,
        "machine": mach, "smoke": args.smoke, "sizes": vars(args.sizes),
        "vae_sigma": args.vae_sigma, "small_beta": args.small_beta,
        "code_prior_epochs": args.code_prior_epochs, "perceptual": L.PERCEPTUAL,
        "block_out_channels": L.CHANNELS, "patchgan_width": L.PATCHGAN_WIDTH,
        "measured_step_s_1_thread": L.MEASURED_STEP_S, "eval_only": args.eval_only})


def _get(results: dict, row: str, key: str) -> float | None:
    return results.get(row, {}).get(key)


def _report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    s = args.sizes
    print(f"\n{args.data}: {s.steps} steps of batch 100 per model; 4×7×7 codes; "
          f"{s.test_n} test images; sample FID on {s.fid_samples} samples; diffusion prior "
          f"{s.prior_steps} steps; perceptual term ST-LPIPS ({L.PERCEPTUAL}, not LPIPS); VAE σ "
          f"{args.vae_sigma:g}, β-VAE β {args.small_beta:g}")
    print("| model | PSNR | SSIM | rFID | rate (nats) | sample FID (own prior) | "
          "sample FID (diffusion prior) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {L.fmt(r['psnr'])} | {L.fmt(r['ssim'], '.3f')} | "
              f"{L.fmt(r['rfid'])} | {L.fmt(r['rate_nats'], '.1f')} | "
              f"{L.fmt(r.get('fid_own'))} | {L.fmt(r.get('fid_fitted'))} |")
    print("\nFID-LeNet: " + next(iter(results.values()))["fid_net"])
    for name, r in results.items():
        print(f"  {name}: own prior = {r.get('own_prior')}; rate = {r['rate_is']}"
              + ("; diffusion prior n/a (a discrete code)" if "fid_fitted" not in r else ""))


if __name__ == "__main__":
    try:
        main()
    except XaeError as e:
        sys.exit(f"latent_diffusion.py: error: {e}")
