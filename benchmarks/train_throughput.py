"""Training throughput of xae's trainer on the reference MLP VAE, against the machine and pythae.

Network: encoder 784-512 (ReLU) -> (μ, log σ²) of 16 each; decoder 16-512 (ReLU)-784 logits;
Bernoulli likelihood; batch 100; Adam (lr 1e-3); MNIST (grayscale, no binarization); 2 threads.
Prints samples/s of ``xae.train``, of pythae's ``BaseTrainer`` on the same network and batch, the
machine's fp32 matmul rate and the fraction of it the trainer achieves.
Target: xae ≥ 1.3× pythae (issue 14: the open core may not make training slower).

    PYTHONPATH=src .venv/bin/python benchmarks/train_throughput.py [--steps 3000] [--rounds 2]
        [--skip-pythae] [--threads 2]
    PYTHONPATH=src .venv/bin/python benchmarks/train_throughput.py --quick      # smoke check
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import xae
from xae.data import load as load_data

BATCH, LATENT, HIDDEN, PIXELS = 100, 16, 512, 784
# (in, out) of every Linear layer: encoder, bottleneck (μ and log σ² together), decoder.
LAYERS = [(PIXELS, HIDDEN), (HIDDEN, 2 * LATENT), (LATENT, HIDDEN), (HIDDEN, PIXELS)]
FWD_FLOPS = sum(2 * i * o for i, o in LAYERS)  # per sample; elementwise work ignored
TRAIN_FLOPS = 3 * FWD_FLOPS  # forward + grad wrt inputs + grad wrt weights (the usual 3×)
RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"


def gemm_rate(m: int, k: int, n: int, reps: int, min_s: float) -> tuple[float, float]:
    """Best GFLOP/s and the matching seconds per call of an (m,k)@(k,n) fp32 matmul."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    best = math.inf
    for _ in range(reps):
        calls, t0 = 0, time.perf_counter()
        while (dt := time.perf_counter() - t0) < min_s:
            for _ in range(10):
                a @ b
            calls += 10
        best = min(best, dt / calls)
    return 2 * m * k * n / best / 1e9, best


def machine_rate(reps: int, min_s: float) -> dict:
    """Square matmuls (the machine's peak) and the GEMMs one training step runs at batch 100."""
    square = {f"{s}x{s}x{s}": round(gemm_rate(s, s, s, reps, min_s)[0], 1) for s in (1024, 2048)}
    layers, step_s = {}, 0.0
    for idx, (i, o) in enumerate(LAYERS):
        # forward x@Wᵀ, weight grad gᵀ@x, input grad g@W (autograd skips it for the first layer)
        shapes = [(BATCH, i, o), (o, BATCH, i)] + ([(BATCH, o, i)] if idx else [])
        for m, k, n in shapes:
            rate, sec = gemm_rate(m, k, n, reps, min_s / 4)
            layers[f"{m}x{k}x{n}"] = round(rate, 1)
            step_s += sec
    gemm_flops = sum(2 * m * k * n for m, k, n in (map(int, s.split("x")) for s in layers))
    return {"square_gflops": square, "peak_gflops": max(square.values()), "layer_gflops": layers,
            "step_gemm_gflops": round(gemm_flops / step_s / 1e9, 1),
            "gemm_bound_samples_per_s": round(BATCH / step_s)}


def xae_throughput(data: xae.data.Dataset, steps: int, threads: int) -> dict:
    """Run the real ``xae.train`` for ``steps`` steps and read samples/s from its run folder."""
    cfg = xae.preset("vae", data="mnist", latent_dim=LATENT, **{
        "model.mlp.hidden": [HIDDEN], "model.likelihood": "bernoulli", "data.binarize": "none",
        "train.batch_size": BATCH, "train.lr": 1e-3, "train.steps": steps,
        "train.threads": threads, "train.progress": False, "train.figures": False,
        "train.log_every": max(steps // 20, 10)})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = xae.train(cfg, Path(tmp) / "run", data=data)
        wall = time.perf_counter() - t0
        windows = [json.loads(line)["samples_per_s"]
                   for line in (run / "metrics.jsonl").read_text().splitlines()]
        final = json.loads((run / "metrics.json").read_text())
    torch.set_flush_denormal(False)  # the trainer sets it process-wide; pythae runs without it
    return {"samples_per_s": round(statistics.median(windows[1:] or windows)),
            "overall_samples_per_s": round(final["train_samples_per_s"]), "steps": steps,
            "train_time_s": final["train_time_s"], "wall_s": round(wall, 1),
            "windows": len(windows), "test_neg_elbo": round(final["test"]["neg_elbo"], 2)}


def pythae_throughput(train_x: torch.Tensor, epochs: int, threads: int) -> dict:
    """pythae 0.1.2's VAE + BaseTrainer on the same network; epoch times after the first."""
    try:
        from pythae.data.datasets import BaseDataset
        from pythae.models import VAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
        from pythae.trainers import BaseTrainer, BaseTrainerConfig
        from pythae.trainers.training_callbacks import TrainingCallback
    except ImportError as e:
        return {"error": f"pythae is not importable ({e}); "
                         f"pip install --constraint constraints.txt -r benchmarks/requirements.txt"}

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(PIXELS, HIDDEN),
                                           torch.nn.ReLU())
            self.mu, self.logvar = torch.nn.Linear(HIDDEN, LATENT), torch.nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = self.net(x)
            return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(LATENT, HIDDEN), torch.nn.ReLU(),
                                           torch.nn.Linear(HIDDEN, PIXELS), torch.nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).view(-1, 1, 28, 28))

    class EpochTimer(TrainingCallback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_epoch_begin(self, training_config, **kwargs):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.times.append(time.perf_counter() - self.t0)

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as null, \
            contextlib.redirect_stderr(null), contextlib.redirect_stdout(null):
        tcfg = BaseTrainerConfig(output_dir=tmp, per_device_train_batch_size=BATCH,
                                 num_epochs=epochs, learning_rate=1e-3, optimizer_cls="Adam",
                                 steps_saving=None, steps_predict=None, no_cuda=True)
        logging.disable(logging.INFO)  # pythae's console logger was bound at import time
        try:
            trainer = BaseTrainer(model, BaseDataset(train_x, torch.zeros(len(train_x))),
                                  eval_dataset=None, training_config=tcfg, callbacks=[timer])
            t0 = time.perf_counter()
            trainer.train()
            wall = time.perf_counter() - t0
        finally:
            logging.disable(logging.NOTSET)
    timed = timer.times[1:] or timer.times
    return {"samples_per_s": round(len(train_x) * len(timed) / sum(timed)),
            "epochs": epochs, "subset": len(train_x), "timed_s": round(sum(timed), 1),
            "wall_s": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3000, help="xae training steps (batch 100)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-pythae", action="store_true", help="do not run pythae's trainer")
    ap.add_argument("--quick", action="store_true", help="tiny run for a smoke check (< 30 s)")
    ap.add_argument("--rounds", type=int, default=2, help="alternate pythae/xae; keep the best")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    steps, rounds = (200, 1) if args.quick else (args.steps, args.rounds)
    reps, min_s = (2, 0.05) if args.quick else (5, 0.25)
    load0 = os.getloadavg()[0]

    torch.set_num_threads(args.threads)
    mach = machine_rate(reps, min_s)
    data = load_data(xae.preset("vae", data="mnist").data)
    # pythae first: it sees the process as a fresh one would (no flush-denormal from xae).
    subset = 2000 if args.quick else 10000
    epochs = 1 + math.ceil(steps * BATCH / subset)  # ≈ as many timed samples as xae's run
    py, ours = {"skipped": True}, {"samples_per_s": 0}
    for _ in range(rounds):  # alternate the two; keep each one's best (noise only slows)
        if not args.skip_pythae:
            p = pythae_throughput(data.train_x[:subset].clone(), epochs, args.threads)
            py = p if p.get("samples_per_s", 0) >= py.get("samples_per_s", 0) else py
        o = xae_throughput(data, steps, args.threads)
        ours = o if o["samples_per_s"] >= ours["samples_per_s"] else ours

    sps = ours["samples_per_s"]
    achieved = sps * TRAIN_FLOPS / 1e9
    res = {"threads": args.threads, "batch": BATCH, "rounds": rounds,
           "torch": torch.__version__,
           "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
           "train_flops_per_sample": TRAIN_FLOPS, "matmul": mach, "xae": ours, "pythae": py,
           "achieved_gflops": round(achieved, 1),
           "fraction_of_peak": round(achieved / mach["peak_gflops"], 3),
           "fraction_of_gemm_bound": round(sps / mach["gemm_bound_samples_per_s"], 3)}
    ratio = sps / py["samples_per_s"] if "samples_per_s" in py else None
    res["ratio_vs_pythae"] = round(ratio, 2) if ratio else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")

    rows = [("xae samples/s (median of log windows)", f"{sps:,}"),
            ("xae samples/s (whole run, incl. checkpoints)", f"{ours['overall_samples_per_s']:,}")]
    if ratio:
        rows += [("pythae samples/s (BaseTrainer, epochs after the 1st)",
                  f"{py['samples_per_s']:,}"),
                 ("ratio xae / pythae (target >= 1.3)", f"{ratio:.2f}"
                  + ("  OK" if ratio >= 1.3 else "  BELOW TARGET"))]
    else:
        rows.append(("pythae", py.get("error", "skipped (--skip-pythae)")))
    rows += [("matmul peak GFLOP/s (best square)", f"{mach['peak_gflops']:.1f}"),
             ("matmul GFLOP/s at the VAE's GEMM shapes", f"{mach['step_gemm_gflops']:.1f}"),
             ("achieved GFLOP/s (3x fwd = %.2f MFLOP/sample)" % (TRAIN_FLOPS / 1e6),
              f"{achieved:.1f}"),
             ("fraction of matmul peak", f"{res['fraction_of_peak']:.1%}"),
             (f"fraction of GEMM-only bound ({mach['gemm_bound_samples_per_s']:,} samples/s)",
              f"{res['fraction_of_gemm_bound']:.1%}")]
    print(f"MLP VAE 784-512-16, batch {BATCH}, {args.threads} threads, torch {torch.__version__}, "
          f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
