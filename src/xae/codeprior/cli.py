"""``xae prior fit RUN``: fit a prior to a run's codes, of the kind the code calls for.

A discrete code (vq, rvq, fsq, lfq, gumbel) gets an autoregressive code prior
(:mod:`xae.codeprior`); a continuous one (a Gaussian or deterministic code, flat or spatial)
a diffusion prior (:mod:`xae.diffprior`). Options of the other kind are errors.

    xae prior fit runs/vq-vae-digits --epochs 20
    xae prior fit runs/fsq-mnist --layers 4 --dim 256 --heads 8 --device cuda
    xae prior fit runs/conv-vae-mnist --steps 4000
"""
from __future__ import annotations

import argparse
from typing import Any

from xae.codeprior.transformer import CodePriorConfig
from xae.errors import XaeError

_D = CodePriorConfig(vocab=2, length=1)  # the defaults of the size and training options
CODE_OPTIONS = ("epochs", "layers", "dim", "heads", "dropout")
SHARED = {"batch_size": _D.batch_size, "lr": _D.lr, "seed": _D.seed}


def add_parser(sub: Any) -> None:
    """Add the ``prior`` command (with its ``fit`` subcommand) to the ``xae`` parser's ``sub``."""
    from xae.diffprior.cli import add_options

    p = sub.add_parser("prior", help="learned priors over a run's codes",
                       description="Learned priors over the codes of a trained run: an "
                       "autoregressive prior for a discrete code, a diffusion prior for a "
                       "continuous one.")
    psub = p.add_subparsers(dest="prior_command", required=True)
    f = psub.add_parser(
        "fit", help="fit a prior to the run's training codes",
        description="Encode the run's training set and fit a prior to its codes, saved in the "
        "run folder. A discrete code (vq, rvq, fsq, lfq, gumbel): a causal transformer over "
        "the index grids, in RUN/code_prior/, reporting the test set's bits per image beside "
        "the uniform prior's. A continuous code (gaussian or deterministic, flat or spatial): "
        "a diffusion prior (flow matching) over the latent means scaled to unit variance, in "
        "RUN/diffusion_prior/, with checkpoints that --resume continues.")
    f.add_argument("run", help="a run folder")
    f.add_argument("--batch-size", type=int, default=None, help="default 128 (code prior), "
                   "256 (diffusion prior)")
    f.add_argument("--lr", type=float, default=None, help="peak learning rate, cosine decay "
                   f"(default {_D.lr})")
    f.add_argument("--seed", type=int, default=None, help=f"default {_D.seed}")
    f.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    g = f.add_argument_group("code prior (discrete codes)")
    g.add_argument("--epochs", type=int, default=None, help=f"default {_D.epochs}")
    g.add_argument("--layers", type=int, default=None, help=f"default {_D.layers}")
    g.add_argument("--dim", type=int, default=None, help=f"default {_D.dim}")
    g.add_argument("--heads", type=int, default=None, help=f"default {_D.heads}")
    g.add_argument("--dropout", type=float, default=None, help=f"default {_D.dropout}")
    add_options(f)
    f.set_defaults(fn=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the prior the run's code calls for; an option of the other kind is an error."""
    from xae.bottlenecks import BOTTLENECKS
    from xae.diffprior.cli import OPTIONS, cmd_fit as fit_diffusion
    from xae.train.checkpoint import read_config

    cfg = read_config(args.run)
    name = cfg.model.bottleneck
    if not BOTTLENECKS[name].discrete:
        code = [k for k in CODE_OPTIONS if getattr(args, k) is not None]
        if code:
            raise XaeError(f"--{code[0]} is an option of the code prior, for a discrete code; "
                           f"'{args.run}' has a continuous one (model.bottleneck = '{name}'), "
                           f"which gets a diffusion prior (see xae prior fit --help)")
        return fit_diffusion(args, _latent_shape(args.run))
    diff = [k for k in OPTIONS if getattr(args, k) is not None]
    if diff or args.resume or args.no_progress:
        flag = diff[0] if diff else ("resume" if args.resume else "no_progress")
        raise XaeError(f"--{flag.replace('_', '-')} is an option of the diffusion prior, for a "
                       f"continuous code; '{args.run}' has a discrete one (model.bottleneck = "
                       f"'{name}'), which gets the code prior (see xae prior fit --help)")
    return cmd_fit_code(args)


def _latent_shape(run: str) -> tuple[int, ...]:
    from xae.registry import build
    from xae.train.checkpoint import read_config

    return tuple(build(read_config(run)).latent_shape)


def cmd_fit_code(args: argparse.Namespace) -> int:
    from xae.codeprior.fit import fit_code_prior

    opts = {k: getattr(args, k) for k in (*CODE_OPTIONS, *SHARED)}
    opts = {k: (v if v is not None else getattr(_D, k)) for k, v in opts.items()}
    m = fit_code_prior(args.run, device=args.device, log=print, **opts)
    t, k = m["tokens"], m["codebook_size"]
    print(f"code prior over {t} tokens of {k} codes, {m['steps']} steps in {m['time_s']:.1f} s")
    print(f"  test     {m['test_bits_per_image']:8.2f} bits/image")
    print(f"  train    {m['train_bits_per_image']:8.2f} bits/image")
    print(f"  uniform  {m['uniform_bits_per_image']:8.2f} bits/image ({t} × log2 {k})")
    print(f"written to {m['path']}")
    return 0
