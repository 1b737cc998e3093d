"""The commands of diffusers interop: ``xae export RUN --format diffusers``
(:mod:`xae.export_diffusers`; the parser is ``xae export``'s) and ``xae import diffusers DIR
--out RUN`` (:mod:`xae.import_diffusers`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from xae.runfiles import DIFFUSERS_EXPORT, DIFFUSERS_META


def cmd_export_diffusers(args: argparse.Namespace, model: Any) -> int:
    from xae.export_diffusers import export_diffusers
    from xae.import_diffusers import pipeline_keys

    out = Path(args.out) if args.out else Path(args.run) / DIFFUSERS_EXPORT
    meta = export_diffusers(model, out, seed=args.seed, protect=[args.run],
                            pipeline=pipeline_keys(args.run))
    print(f"wrote {out} (AutoencoderKL.from_pretrained loads it; the conventions are in "
          f"{DIFFUSERS_META})")
    print(f"  encode reads {meta['encoder_input']}")
    print(f"  decode gives {meta['decoder_output']}")
    print(f"  scaling_factor = {meta['scaling_factor_note']}")
    if meta["max_abs_diff"] is not None:
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in meta["max_abs_diff"].items())
        print(f"  diffusers against xae, largest difference: {diffs}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from xae.config import parse_overrides
    from xae.import_diffusers import import_diffusers

    meta = import_diffusers(args.folder, args.out, parse_overrides(args.set or []))
    print(f"wrote the run {args.out} from the AutoencoderKL in {args.folder}")
    print(f"  data convention: {meta['pixel_range']}")
    print(f"  likelihood: {meta['likelihood']}")
    if meta["ignored"]:
        keys = ", ".join(f"{k}={v}" for k, v in meta["ignored"].items())
        print(f"  kept in imported.json, {meta['ignored_why']}: {keys}")
    if not args.set:
        shape = "×".join(str(s) for s in meta["data_shape"])
        print(f"  to run `xae eval` on it, import again with --set data.name=arrays "
              f"data.path=FILE (a .npy of {shape} images in [0, 1])")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="another library's autoencoder as a run folder")
    p.add_argument("source", choices=["diffusers"], help="diffusers: an AutoencoderKL folder")
    p.add_argument("folder", help="the folder save_pretrained wrote (config.json and "
                   "diffusion_pytorch_model.safetensors)")
    p.add_argument("--out", required=True, help="the run folder to write (new or empty)")
    p.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="data.* settings, the data "
                   "`xae eval` reads, e.g. data.name=arrays data.path=images.npy")
    p.set_defaults(fn=cmd_import)
