"""The diffusion-prior side of ``xae prior fit RUN`` (a run with a continuous code).

    xae prior fit runs/conv-vae-mnist --steps 4000
    xae prior fit runs/conv-vae-mnist --resume          # after an interrupted fit
    torchrun --nproc_per_node 2 -m xae prior fit runs/conv-vae-mnist --device cuda
"""
from __future__ import annotations

import argparse
from typing import Any

from xae.diffprior.config import FIT_KEYS, NET_KEYS, DiffusionPriorConfig
from xae.errors import XaeError

_D = DiffusionPriorConfig(latent_shape=(1,))  # the defaults
#: The options of this side; ``--batch-size``, ``--lr`` and ``--seed`` are shared with the code
#: prior and given here by their keys.
OPTIONS = tuple(k for k in FIT_KEYS if k not in ("batch_size", "lr", "seed"))
HELP = {"steps": "Adam updates", "sample_steps": "steps of the Heun sampler",
        "time_dim": "size of the time embedding",
        "checkpoint_every": "updates between checkpoints (what --resume starts from)",
        "mlp_hidden": "width of the MLP denoiser (flat codes)",
        "mlp_layers": "residual blocks of the MLP denoiser (flat codes)",
        "conv_channels": "channels of the conv denoiser (spatial codes)",
        "conv_blocks": "residual blocks of the conv denoiser (spatial codes)"}


def add_options(f: argparse.ArgumentParser) -> None:
    """Add the diffusion prior's options to the ``prior fit`` parser (defaults None: the
    command knows which were given)."""
    g = f.add_argument_group("diffusion prior (continuous codes)")
    for key in OPTIONS:
        g.add_argument("--" + key.replace("_", "-"), type=int, default=None,
                       help=f"{HELP[key]} (default {getattr(_D, key)})")
    g.add_argument("--resume", action="store_true", help="continue the interrupted fit in "
                   "RUN/diffusion_prior_fit/ with its own settings")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def settings_given(args: argparse.Namespace, latent_shape: tuple[int, ...]) -> dict[str, Any]:
    """The diffusion-prior settings given on the command line; an error for a denoiser's size
    that does not apply to a code of ``latent_shape``."""
    net = "mlp" if len(latent_shape) == 1 else "conv"
    other = "conv" if net == "mlp" else "mlp"
    given = {k: getattr(args, k) for k in (*OPTIONS, "batch_size", "lr", "seed")
             if getattr(args, k) is not None}
    wrong = [k for k in NET_KEYS[other] if k in given]
    if wrong:
        kind = "flat" if net == "mlp" else "spatial"
        raise XaeError(f"--{wrong[0].replace('_', '-')} sizes the {other} denoiser, but this "
                       f"run's code is {kind} (shape {list(latent_shape)}), which the {net} "
                       f"denoiser models; use --{NET_KEYS[net][0].replace('_', '-')} and "
                       f"--{NET_KEYS[net][1].replace('_', '-')}")
    return given


def cmd_fit(args: argparse.Namespace, latent_shape: tuple[int, ...]) -> int:
    from xae.diffprior.fit import fit_diffusion_prior
    from xae.train.distributed import is_main_process

    settings = settings_given(args, latent_shape)
    m = fit_diffusion_prior(args.run, resume=args.resume, device=args.device,
                            progress=not args.no_progress, log=print, **settings)
    if not is_main_process():
        return 0
    print(f"diffusion prior (flow matching) over latents of shape {m['latent_shape']}, scale "
          f"factor {m['scale']:.4g} (1/std), {m['steps']} steps in {m['time_s']:.1f} s")
    print(f"  test loss  {m['test_loss']:.4f} (before the fit {m['test_loss_initial']:.4f})")
    print(f"written to {m['path']}")
    return 0
