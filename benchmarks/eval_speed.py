"""Speed of the importance-weighted test NLL: xae against pythae's per-datum ``get_nll`` loop.

The model is pythae's default MLP VAE for MNIST (784-512-16, ReLU, Bernoulli), trained briefly
with xae and copied weight for weight into pythae 0.1.2's ``VAE`` (default encoder/decoder), so
both estimate log p(x) of the same model on the same statically binarized 10,000 test images
with K = 1000. pythae's ``get_nll`` takes one datum at a time and re-encodes it for every batch
of samples (run here under ``torch.no_grad``, which only helps it); xae encodes each datum
once and decodes large batches of samples. Prints both times, the speed-up (target ≥ 1.8× on
CPU, ≥ 20× on a GPU), both NLLs (they must agree to sampling noise), and the achieved fraction
of the measured fp32 matrix-multiply rate. Writes ``benchmarks/results/eval_speed.json``.

    PYTHONPATH=src .venv/bin/python benchmarks/eval_speed.py [--n 10000] [--k 1000] [--threads 2]
    PYTHONPATH=src .venv/bin/python benchmarks/eval_speed.py --device cuda
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import xae
from train_throughput import gemm_rate
from xae.data import load as load_data
from xae.fileio import write_json

HERE = Path(__file__).resolve().parent
PIXELS, HIDDEN, LATENT = 784, 512, 16
ENC_FLOPS = 2 * (PIXELS * HIDDEN + HIDDEN * 2 * LATENT)   # per datum
DEC_FLOPS = 2 * (LATENT * HIDDEN + HIDDEN * PIXELS)       # per sample


def trained_xae_model(data: object, epochs: int, device: str) -> xae.Autoencoder:
    cfg = xae.preset("vae", data="mnist", latent_dim=LATENT, **{
        "model.mlp.hidden": [HIDDEN], "data.binarize": "static", "train.epochs": epochs,
        "train.batch_size": 100, "train.progress": False, "train.figures": False,
        "train.device": device})
    with tempfile.TemporaryDirectory() as tmp:
        return xae.load(xae.train(cfg, Path(tmp) / "run", data=data), device=device)


def pythae_copy(model: xae.Autoencoder, device: str):
    """pythae's default-architecture VAE holding ``model``'s weights."""
    from pythae.models import VAE, VAEConfig

    p = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"))
    enc, proj, dec = model.encoder.net[1], model.bottleneck.proj, model.decoder.net
    with torch.no_grad():
        p.encoder.layers[0][0].weight.copy_(enc.weight)
        p.encoder.layers[0][0].bias.copy_(enc.bias)
        p.encoder.embedding.weight.copy_(proj.weight[:LATENT])
        p.encoder.embedding.bias.copy_(proj.bias[:LATENT])
        p.encoder.log_var.weight.copy_(proj.weight[LATENT:])
        p.encoder.log_var.bias.copy_(proj.bias[LATENT:])
        p.decoder.layers[0][0].weight.copy_(dec[0].weight)
        p.decoder.layers[0][0].bias.copy_(dec[0].bias)
        p.decoder.layers[1][0].weight.copy_(dec[2].weight)
        p.decoder.layers[1][0].bias.copy_(dec[2].bias)
    return p.to(device).eval()


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="test images")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=5, help="xae training before the timing")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_data(xae.preset("vae", data="mnist", **{"data.binarize": "static"}).data)
    model = trained_xae_model(data, args.epochs, args.device)
    x = data.test_x[: args.n].to(args.device)
    pmodel = pythae_copy(model, args.device)
    torch.manual_seed(0)
    with torch.no_grad():
        nll_pythae, t_pythae = timed(lambda: -pmodel.get_nll(x, n_samples=args.k, batch_size=100))
    rep, t_xae = timed(lambda: xae.likelihood_report(model, x, k=args.k, seed=0).summary())
    peak = max(gemm_rate(s, s, s, 3, 1.0)[0] for s in (1024, 2048)) if args.device == "cpu" \
        else float("nan")
    flops_xae = args.n * (ENC_FLOPS + args.k * DEC_FLOPS)
    flops_pythae = args.n * args.k * (ENC_FLOPS + DEC_FLOPS)
    rate_xae, rate_pythae = flops_xae / t_xae / 1e9, flops_pythae / t_pythae / 1e9
    print(f"model      pythae's default MLP VAE 784-512-16 (Bernoulli), {args.n} test images, "
          f"K = {args.k}, {args.threads} threads, {args.device}")
    print(f"pythae     get_nll        {t_pythae:7.1f} s   NLL {nll_pythae:.2f} nats   "
          f"{rate_pythae:6.1f} GFLOP/s")
    print(f"xae        log_likelihood {t_xae:7.1f} s   NLL {rep['nll_iw']:.2f} ± "
          f"{rep['nll_iw_se']:.2f} nats   {rate_xae:6.1f} GFLOP/s")
    print(f"speed-up   {t_pythae / t_xae:.2f}× (target ≥ {1.8 if args.device == 'cpu' else 20}×); "
          f"the work saved alone gives {flops_pythae / flops_xae:.2f}×, the rest is "
          f"matrix-multiply efficiency")
    if args.device == "cpu":
        print(f"matmul     peak {peak:.0f} GFLOP/s: xae at {100 * rate_xae / peak:.0f}%, "
              f"pythae at {100 * rate_pythae / peak:.0f}%")
    write_json(HERE / "results" / "eval_speed.json", {
        "n": args.n, "k": args.k, "threads": args.threads, "device": args.device,
        "pythae_s": t_pythae, "xae_s": t_xae, "speedup": t_pythae / t_xae,
        "nll_pythae": nll_pythae, "nll_xae": rep["nll_iw"], "nll_xae_se": rep["nll_iw_se"],
        "xae_gflops": rate_xae, "pythae_gflops": rate_pythae, "peak_gflops": peak})


if __name__ == "__main__":
    main()
