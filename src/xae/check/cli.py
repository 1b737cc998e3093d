"""``xae check ppca`` and ``xae check gradients``: the checks of :mod:`xae.check` on the command
line. Each prints a table, then every compared quantity with its tolerance and PASS/FAIL and
an overall verdict, writes its JSON and figure into an output folder, and exits with status 0
when everything passed and 1 when something failed (2 on a usage error)."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from xae.check.verdict import exit_status, verdict_lines
from xae.errors import XaeError
from xae.runfiles import CHECKS

PPCA_DEFAULT_OUT = Path("runs") / "check-ppca"
GRADIENTS_DEFAULT_OUT = Path("runs") / "check-gradients"
EXIT_STATUS = ("Exit status: 0 when every compared quantity is within its tolerance (printed "
               "with PASS/FAIL after the table), 1 when one is not, 2 on a usage error.")


def add_parser(sub: Any) -> None:
    """Add ``check`` with its subcommands ``ppca`` and ``gradients`` to the ``xae`` parser."""
    p = sub.add_parser("check", help="check models against closed-form answers (ppca, gradients)")
    checks = p.add_subparsers(dest="check", required=True)
    pp = checks.add_parser("ppca", help="train a linear VAE on linear-gaussian data and compare "
                           "it with maximum-likelihood probabilistic PCA and its exact log p(x)",
                           description="Train a linear VAE on linear-gaussian data and compare "
                           "it with maximum-likelihood probabilistic PCA and its exact log p(x): "
                           "the largest principal angle, the noise variance and the IW "
                           "estimate at the largest K, each against a stated tolerance. "
                           + EXIT_STATUS)
    pp.add_argument("--out", help=f"output folder; the model trains into OUT/run (default "
                    f"{PPCA_DEFAULT_OUT}[-N])")
    pp.add_argument("--run", help="check this trained linear-VAE run instead of training one")
    pp.add_argument("--epochs", type=int, help="training epochs (default 2000, in batches of 1600: one "
                    "step per epoch on the default 1600 training points)")
    pp.add_argument("--n", type=int, help="data points, train and test (data.n, default 2000)")
    pp.add_argument("--dim", type=int, help="data dimension (data.dim, default 20)")
    pp.add_argument("--latent-dim", type=int, help="latent dimensions of the data and the model "
                    "(data.true_latent_dim and model.latent_dim, default 2)")
    pp.add_argument("--k", default="1,10,100,1000,5000",
                    help="importance-sample counts, comma-separated (default 1,10,100,1000,5000)")
    pp.add_argument("--seed", type=int, default=0, help="data, training and Monte Carlo seed")
    pp.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="more config overrides")
    pp.set_defaults(fn=cmd_ppca)
    g = checks.add_parser("gradients", help="variance of the reparameterization and "
                          "score-function gradients of E_q[log p(x|z)] for a trained VAE",
                          description="Variance of the reparameterization and score-function "
                          "(REINFORCE, without and with a baseline) gradients of "
                          "E_q[log p(x|z)] for a trained VAE (a run, or without one a small "
                          "VAE trained on the digits for the check), with verdicts: the "
                          "estimators agree in mean, and their variances are ordered "
                          "reparameterization < score+baseline < score. " + EXIT_STATUS)
    g.add_argument("run", nargs="?", help="a run folder with a Gaussian bottleneck (default: "
                   "train a small VAE on the digits in a temporary folder, removed after)")
    g.add_argument("--out", help=f"output folder (default RUN/{CHECKS}, or without a run "
                   f"{GRADIENTS_DEFAULT_OUT}[-N])")
    g.add_argument("--samples", type=int, default=200,
                   help="single-draw estimates per estimator (default 200)")
    g.add_argument("--batch", type=int, default=100, help="test data in the batch (default 100)")
    g.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (and, without a run, "
                   "the data and training seed)")
    g.set_defaults(fn=cmd_gradients)


def _table(rows: dict[str, Any]) -> str:
    from xae.cli import format_table

    return format_table({k: f"{v:.5g}" if isinstance(v, float) else v for k, v in rows.items()})


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,10,100"`` -> ``(1, 10, 100)``; XaeError unless every entry is an integer ≥ 1."""
    try:
        ks = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        ks = ()
    if not ks or min(ks) < 1:
        raise XaeError(f"--k takes comma-separated positive integers like 1,10,100, got '{text}'")
    return ks


def _ppca_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from xae.config import parse_overrides

    flags = {"train.epochs": args.epochs, "data.n": args.n, "data.dim": args.dim,
             "data.true_latent_dim": args.latent_dim, "model.latent_dim": args.latent_dim,
             "data.seed": args.seed, "train.seed": args.seed}
    return {**{k: v for k, v in flags.items() if v is not None},
            **parse_overrides(args.set or [])}


def _fresh_dir(out: str | None) -> Path:
    """``out`` if it is absent or empty (XaeError otherwise); else a new runs/check-ppca[-N]."""
    if out:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise XaeError(f"output folder '{path}' already exists and is not empty; choose "
                           f"another --out (or check its run with --run {path / 'run'})")
        return path
    from xae.cli import first_free

    return first_free(PPCA_DEFAULT_OUT)


def _train_linear_vae(args: argparse.Namespace) -> tuple[Any, Path]:
    """Check the config (a linear-Gaussian model), then train it into OUT/run."""
    import xae
    from xae.check.ppca import check_config, linear_gaussian

    cfg = check_config(_ppca_overrides(args))
    linear_gaussian(xae.build(cfg))  # every config error before anything is written
    out = _fresh_dir(args.out)
    created = not out.exists()
    try:
        run = xae.train(cfg, out / "run")
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # train() removed its half-written run; leave no empty folder
        raise
    return xae.load(run), out


def cmd_ppca(args: argparse.Namespace) -> int:
    import xae
    from xae.check import ppca
    from xae.data import load

    ks = parse_ks(args.k)
    if args.run:
        given = [f for f in ("epochs", "n", "dim", "latent_dim", "set")
                 if getattr(args, f) is not None]
        if given:
            raise XaeError(f"--{given[0].replace('_', '-')} sets up training, but --run checks a "
                           f"trained model; drop one of them")
        model, out = xae.load(args.run), Path(args.out or Path(args.run) / CHECKS)
        ppca.linear_gaussian(model)
    else:
        model, out = _train_linear_vae(args)
        print(f"run written to {out / 'run'}")
    result = ppca.check_ppca(model, load(model.config.data), ks=ks, seed=args.seed)
    paths = ppca.write(result, out)
    print(_table(result.summary()))
    print("wrote " + ", ".join(map(str, paths)))
    print(verdict_lines(result.verdicts(), "check ppca"))
    return exit_status(result.verdicts())


def _train_small_vae(seed: int) -> Any:
    """The model of :func:`xae.check.gradients.check_config`, trained in a temporary folder
    that is removed before this returns (the loaded model lives on in memory)."""
    import xae
    from xae.check.gradients import check_config

    cfg = check_config(seed)
    print(f"training a small VAE on the digits ({cfg.train.steps} steps, seed {seed}) in a "
          f"temporary folder", flush=True)
    with tempfile.TemporaryDirectory(prefix="xae-check-gradients-") as tmp:
        return xae.load(xae.train(cfg, Path(tmp) / "run"))


def cmd_gradients(args: argparse.Namespace) -> int:
    import xae
    from xae.check import gradients
    from xae.cli import first_free
    from xae.data import load

    if args.samples < 2 or args.batch < 1:
        raise XaeError(f"--samples must be ≥ 2 and --batch ≥ 1, got {args.samples} and "
                       f"{args.batch}")
    if args.run is None:
        model = _train_small_vae(args.seed)
        out = Path(args.out or first_free(GRADIENTS_DEFAULT_OUT))
    else:
        model, out = xae.load(args.run), Path(args.out or Path(args.run) / CHECKS)
    if not model.stochastic:
        raise XaeError(f"'{args.run}' has a deterministic bottleneck, so there is no q(z|x) to "
                       f"differentiate through; check a VAE-type run (model.bottleneck=gaussian)")
    data = load(model.config.data)
    x = data.test_x if data.test_x.shape[0] else data.train_x
    result = gradients.gradient_check(model, x[:args.batch], samples=args.samples,
                                      seed=args.seed)
    paths = gradients.write(result, out)
    print(f"{result.objective}\n{_table(result.summary())}")
    print("wrote " + ", ".join(map(str, paths)))
    print(verdict_lines(result.verdicts(), "check gradients"))
    return exit_status(result.verdicts())
