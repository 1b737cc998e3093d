"""``xae prior fit RUN``: fit an autoregressive prior to a discrete run's codes.

    xae prior fit runs/vq-vae-digits --epochs 20
    xae prior fit runs/fsq-mnist --layers 4 --dim 256 --heads 8 --device cuda
"""
from __future__ import annotations

import argparse
from typing import Any

from xae.codeprior.transformer import CodePriorConfig

_D = CodePriorConfig(vocab=2, length=1)  # the defaults of the size and training options


def add_parser(sub: Any) -> None:
    """Add the ``prior`` command (with its ``fit`` subcommand) to the ``xae`` parser's ``sub``."""
    p = sub.add_parser("prior", help="learned priors over a discrete run's codes",
                       description="Learned priors over the codes of a run with a discrete "
                       "bottleneck (vq, rvq, fsq, lfq, gumbel).")
    psub = p.add_subparsers(dest="prior_command", required=True)
    f = psub.add_parser(
        "fit", help="fit a causal transformer to the run's training codes",
        description="Encode the run's training set to index grids, fit a causal transformer "
        "to them and save it in RUN/code_prior/; reports the test set's bits per image "
        "beside the uniform prior's.")
    f.add_argument("run", help="a run folder with a discrete bottleneck")
    f.add_argument("--epochs", type=int, default=_D.epochs, help=f"default {_D.epochs}")
    f.add_argument("--batch-size", type=int, default=_D.batch_size,
                   help=f"default {_D.batch_size}")
    f.add_argument("--lr", type=float, default=_D.lr, help=f"peak learning rate, cosine "
                   f"decay (default {_D.lr})")
    f.add_argument("--layers", type=int, default=_D.layers, help=f"default {_D.layers}")
    f.add_argument("--dim", type=int, default=_D.dim, help=f"default {_D.dim}")
    f.add_argument("--heads", type=int, default=_D.heads, help=f"default {_D.heads}")
    f.add_argument("--dropout", type=float, default=_D.dropout, help=f"default {_D.dropout}")
    f.add_argument("--seed", type=int, default=_D.seed, help=f"default {_D.seed}")
    f.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    f.set_defaults(fn=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    from xae.codeprior.fit import fit_code_prior

    m = fit_code_prior(args.run, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       layers=args.layers, dim=args.dim, heads=args.heads,
                       dropout=args.dropout, seed=args.seed, device=args.device, log=print)
    t, k = m["tokens"], m["codebook_size"]
    print(f"code prior over {t} tokens of {k} codes, {m['steps']} steps in {m['time_s']:.1f} s")
    print(f"  test     {m['test_bits_per_image']:8.2f} bits/image")
    print(f"  train    {m['train_bits_per_image']:8.2f} bits/image")
    print(f"  uniform  {m['uniform_bits_per_image']:8.2f} bits/image ({t} × log2 {k})")
    print(f"written to {m['path']}")
    return 0
