"""The ``xae`` command: train, eval, sample, reconstruct, info.

User errors print one line, ``xae: error: …``, with no traceback, and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

from xae.errors import XaeError, positive_int
from xae.fileio import output_file
from xae.runfiles import (DECODER_ONNX, DIFFUSERS_EXPORT, ENCODER_ONNX, EVAL, EXPORT, EXPORT_META,
                          FACTOR_MI_PNG, FIGURES)

log = logging.getLogger("xae")
# Subcommands that live beside their code: each module has ``add_parser(subparsers)``, which
# adds its parser and sets ``fn`` (a function of the parsed args returning the exit status).
COMMAND_MODULES: tuple[str, ...] = ("xae.sweep.cli", "xae.check.cli", "xae.codeprior.cli",
                                   "xae.explore.cli", "xae.diffusers_cli", "xae.edits.cli",
                                   "xae.compress.cli", "xae.anomaly.cli", "xae.text_cli",
                                   "xae.embed_cli")


def _preset_and_file(args: argparse.Namespace) -> Any:
    """The preset (named by --preset or by the config file's ``preset`` key, which must agree)
    with the config file applied over it."""
    from xae import config as C
    from xae.presets import preset

    updates = C.read_file(args.config) if args.config else {}
    named = updates.pop("preset", None)
    if named is not None and not isinstance(named, str):
        raise XaeError(f"config file '{args.config}': preset must be a preset's name, "
                       f"got {named!r} (see xae info --presets)")
    if named is not None and args.preset is not None and named != args.preset:
        raise XaeError(f"--preset {args.preset} and the config file's preset '{named}' "
                       f"disagree; give the preset once")
    return C.apply(preset(args.preset or named or "vae"), updates)


def config_from_args(args: argparse.Namespace) -> Any:
    """The run's config: preset, then --config file, then flags, then --set overrides; every
    value checked once at the end."""
    from xae import config as C

    if args.resume:
        if args.preset or args.config:
            raise XaeError("--resume continues a run with its own config; drop --preset and "
                           "--config (--set still applies, e.g. train.epochs=20)")
        from xae.train.checkpoint import read_config

        cfg = read_config(args.resume)
    else:
        cfg = _preset_and_file(args)
    flags = {"data.name": args.data, "data.data_dir": args.data_dir, "train.device": args.device,
             "train.seed": args.seed, "train.epochs": args.epochs, "train.steps": args.steps}
    C.apply(cfg, {k: v for k, v in flags.items() if v is not None})
    if args.no_progress:
        cfg.train.progress = False
    return C.validate(C.apply(cfg, C.parse_overrides(args.set or [])))


def out_dir_from_args(args: argparse.Namespace, cfg: Any) -> Path:
    if args.resume:
        return Path(args.resume)
    if args.out:
        return Path(args.out)
    return first_free(Path("runs") / f"{cfg.preset}-{cfg.data.name}")


def first_free(base: Path) -> Path:
    """``base`` if nothing is there yet, else the first free ``base-N`` (N = 2, 3, …)."""
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def cmd_train(args: argparse.Namespace) -> int:
    from xae.train.checkpoint import read_metrics
    from xae.train.distributed import is_main_process
    from xae.train.loop import train

    from xae.cpu import configure_cpu

    cfg = config_from_args(args)
    if cfg.train.device == "cpu":  # the CLI, not the library, sets process-wide state
        configure_cpu(cfg.train.threads)
    out = train(cfg, out_dir_from_args(args, cfg), resume=bool(args.resume))
    final = read_metrics(out) if is_main_process() else None  # one result block under DDP
    if final is not None:
        print(f"run written to {out}")
        print(format_table(final["test"]))
    return 0


def format_table(metrics: dict[str, Any]) -> str:
    rows = [(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in metrics.items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _load(args: argparse.Namespace) -> Any:
    import xae

    return xae.load(args.run, device=args.device)


def cmd_eval(args: argparse.Namespace) -> int:
    from xae.data import load
    from xae.data.factors import factor_source
    from xae.evaluate.disentanglement import add_to_report
    from xae.evaluate.disentanglement.counts import parse as parse_counts
    from xae.evaluate.report import full_report
    from xae.fileio import write_json
    from xae.schedules import value_at
    from xae.train.checkpoint import read_metrics

    if args.k is not None and args.k < 0:
        raise XaeError(f"--k must be a non-negative integer (0 skips the likelihood), got {args.k}")
    if args.fid_samples < 2:
        raise XaeError(f"--fid-samples must be at least 2, got {args.fid_samples}")
    model = _load(args)
    run = Path(args.run)
    data = load(model.config.data)
    counts = parse_counts(args.disentanglement_counts or [])
    if counts and not args.disentanglement:
        raise XaeError("--disentanglement-counts sets the counts of --disentanglement; "
                       "add --disentanglement")
    if args.disentanglement:  # before anything is computed: the data must have factors
        factor_source(data.info, "--disentanglement")
    final = read_metrics(run)
    steps = final["step"] if final is not None else 0
    rep = full_report(model, data, beta=value_at(model.config.beta, steps), k=args.k,
                      seed=args.seed, images=not args.no_images, fid_samples=args.fid_samples,
                      progress=not args.no_progress)
    extra = (add_to_report(rep.metrics, model, data, args.seed, counts,
                           figure=run / FIGURES / FACTOR_MI_PNG)
             if args.disentanglement else {})
    write_json(run / EVAL, {**rep.to_json(), "k": args.k, "seed": args.seed, **extra})
    if args.json:
        print(json.dumps(rep.metrics, indent=2))
    else:
        print(format_table(rep.metrics))
        for what, why in rep.skipped.items():
            print(f"  ({what} not measured: {why})")
        for note in rep.notes:
            print(f"  (note: {note})")
        if extra:
            print(f"factor × latent MI heat map: {extra['disentanglement']['figure']}")
        print(f"written to {run / EVAL}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from xae.diffprior.choice import choose, describe
    from xae.viz import save_grid

    positive_int(args.n, "-n")
    model = _load(args)
    if model.conditional:  # sentences: printed (or -o FILE.txt)
        from xae import text_cli

        return text_cli.sample(args, model)
    _images_only(args)
    output = output_file(args.output or "samples.png", ".png", "-o")
    source = choose(model, args.prior)
    if args.sample_steps is not None:
        if source != "fitted":
            raise XaeError("--sample-steps sets the steps of the fitted diffusion prior's "
                           "sampler, and this command samples the model's own prior; drop it "
                           "or add --prior fitted")
        model.prior.fitted.config.sample_steps = positive_int(args.sample_steps,
                                                              "--sample-steps")
    level = _level(model, args.level)
    c = None if level is None else torch.full((args.n,), level, dtype=torch.long,
                                              device=next(model.parameters()).device)
    torch.manual_seed(args.seed)
    path = save_grid(model.sample(args.n, args.temperature, source, c=c).cpu(), output,
                     title=f"{args.n} samples" + (f" at temperature {args.temperature:g}"
                                                  if args.temperature != 1 else "")
                     + (f" at {model.config.model.covariate} {args.level}" if c is not None
                        else ""))
    print(f"wrote {path}: {args.n} samples from {describe(model, source)}")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from xae.data import covariates, load
    from xae.viz import reconstructions

    positive_int(args.n, "-n")
    model = _load(args)
    if model.conditional:  # sentences: printed (or -o FILE.txt)
        from xae import text_cli

        return text_cli.reconstruct(args, model)
    _images_only(args)
    output = output_file(args.output or "reconstructions.png", ".png", "-o")
    data = load(model.config.data).to(args.device)
    c = covariates.for_model(model, data, "test")
    path = reconstructions(model, data.test_x[: args.n], output,
                           None if c is None else c[: args.n])
    print(f"wrote {path}")
    return 0


def _level(model: Any, name: str | None) -> int | None:
    """The code of the covariate level ``name`` for a run that has a covariate (which needs
    one), None for a run without (where naming one is an error)."""
    levels = list(model.config.model.covariate_levels) if model.covariates else []
    if not levels:
        if name is not None:
            raise XaeError("--level picks a level of a run's covariate; this run has none "
                           "(model.covariate=none): drop --level")
        return None
    if name not in levels:
        raise XaeError(f"this run is conditioned on its {model.config.model.covariate} "
                       f"({len(levels)} levels): choose one with --level, one of "
                       f"{', '.join(levels[:20])}{' …' if len(levels) > 20 else ''}"
                       + ("" if name is None else f" (got {name!r})"))
    return levels.index(name)


def _images_only(args: argparse.Namespace) -> None:
    if args.decode is not None:
        raise XaeError("--decode chooses how sentences are written; this run's data are not "
                       "text")


def cmd_export(args: argparse.Namespace) -> int:
    from xae.export import FORMATS, export_onnx

    if args.format not in FORMATS:  # argparse's choices also catch this; kept for the API
        raise XaeError(f"--format {args.format} is unknown; use one of {', '.join(FORMATS)}")
    if args.format == "diffusers":
        from xae.diffusers_cli import cmd_export_diffusers

        return cmd_export_diffusers(args, _load(args))
    model = _load(args)
    out = Path(args.out) if args.out else Path(args.run) / EXPORT
    meta = export_onnx(model, out, seed=args.seed, protect=[args.run])
    diffs = ", ".join(f"{k} {v:.2e}" for k, v in meta["max_abs_diff"].items() if v is not None)
    print(f"wrote {out / DECODER_ONNX}, {out / ENCODER_ONNX} and {out / EXPORT_META}")
    if diffs:
        print(f"onnxruntime against torch, largest difference: {diffs}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from xae.config import describe_keys
    from xae.presets import PRESETS
    from xae.train.checkpoint import read_metrics

    if args.keys:
        print(describe_keys())
        return 0
    if args.presets or not args.run:
        from xae.data import SOURCES

        print("presets: " + ", ".join(PRESETS))
        if not args.presets:
            print("data sets: " + ", ".join(SOURCES))
        return 0
    model = _load(args)
    print(f"run         {args.run}")
    print(f"preset      {model.config.preset}")
    print(f"data        {model.config.data.name} {tuple(model.data_shape)}")
    print(f"latent_dim  {model.latent_dim}")
    print(f"parameters  {model.num_parameters():,}")
    m = read_metrics(Path(args.run))
    if m is not None:
        print(f"trained     {m['step']} steps ({m['epochs']} epochs) in {m['train_time_s']:.1f} s")
        print("test metrics:\n" + format_table(m["test"]))
    print("config:\n" + model.config.to_json())
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors (``xae: error: …``, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"xae: error: {self.prog.removeprefix('xae ')}: {message} (see {self.prog} "
              f"--help)", file=sys.stderr)
        sys.exit(2)


def seed_arg(text: str) -> int:
    """An argparse type: a seed from 0 to 2³² − 1 (what every generator here accepts)."""
    from xae.checks import SEED, SEED_MAX

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: use an integer") from None
    if SEED(value):
        raise argparse.ArgumentTypeError(f"the seed must be from 0 to {SEED_MAX}, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="xae", description="Regularized autoencoders: train, "
                                "evaluate, sample and inspect.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model into a run folder")
    t.add_argument("--preset", help="a preset name (default vae, or the config file's "
                   "preset; see xae info --presets)")
    t.add_argument("--config", help="a TOML or JSON config file (applied over the preset)")
    t.add_argument("--set", nargs="+", metavar="KEY=VALUE",
                   help="dotted overrides, e.g. model.latent_dim=2 train.epochs=5")
    t.add_argument("--data", help="digits (default), mnist, fashion-mnist, arrays, "
                                   "linear-gaussian, dsprites, ptb, text, h5ad, pbmc, "
                                   "synthetic-counts")
    t.add_argument("--data-dir", help="folder with the data files (mnist, fashion-mnist)")
    t.add_argument("--out", help="run folder (default runs/<preset>-<data>[-N])")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    t.add_argument("--epochs", type=int)
    t.add_argument("--steps", type=int)
    t.add_argument("--seed", type=seed_arg)
    t.add_argument("--device", choices=["cpu", "cuda"])
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.set_defaults(fn=cmd_train)
    for name, fn, text in [("eval", cmd_eval, "evaluate a run on its test set"),
                           ("sample", cmd_sample, "decode samples from the prior into a grid"),
                           ("reconstruct", cmd_reconstruct, "test images and reconstructions"),
                           ("info", cmd_info, "a run's config, size and final metrics"),
                           ("export", cmd_export, "the decoder and encoder as ONNX graphs, "
                            "or the model as a diffusers AutoencoderKL")]:
        s = sub.add_parser(name, help=text)
        s.add_argument("run", nargs="?" if name == "info" else None, help="a run folder")
        s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        s.add_argument("--seed", type=seed_arg, default=0)
        s.set_defaults(fn=fn)
        if name == "eval":
            s.add_argument("--k", type=int, help="importance samples for log p(x) (default "
                           "100 for models with a posterior; 0 skips it)")
            s.add_argument("--no-images", action="store_true",
                           help="skip MSE/PSNR/SSIM and FID-LeNet")
            s.add_argument("--fid-samples", type=int, default=10_000,
                           help="prior samples for FID-LeNet (1x28x28 data only)")
            s.add_argument("--json", action="store_true", help="print the metrics as JSON")
            s.add_argument("--disentanglement", action="store_true", help="add the BetaVAE "
                           "and FactorVAE scores, MIG, DCI and SAP (data with known factors)")
            s.add_argument("--disentanglement-counts", nargs="+", metavar="METRIC=TRAIN/EVAL",
                           help="lower a metric's sample counts (default 10000/5000 each, "
                           "about 20 min per model on dSprites), e.g. beta_vae=300/150 "
                           "factor_vae=300/150 dci=2000/1000 mig=10000")
            s.add_argument("--no-progress", action="store_true", help="hide the progress bars "
                           "(shown on stderr by default, with rate and ETA)")
        if name == "sample":
            s.add_argument("-n", type=int, default=64, help="number of samples")
            s.add_argument("-o", "--output", help="PNG to write (default samples.png); for "
                           "sentences a .txt (default: printed)")
            s.add_argument("--temperature", type=float, default=1.0, help="scale every "
                           "spread of a Gaussian prior (< 1: NVAE's sharper samples)")
            s.add_argument("--prior", default="auto", choices=["auto", "own", "fitted"],
                           help="the model's own prior, or the diffusion prior fitted by "
                           "`xae prior fit`; auto (default): the fitted one when the run has "
                           "one. The output says which was used")
            s.add_argument("--sample-steps", type=int, help="steps of the fitted prior's "
                           "sampler (default: the value it was fitted with)")
            s.add_argument("--level", help="a run with a covariate (model.covariate): the "
                           "level to draw at, e.g. a class or a batch name")
        if name == "reconstruct":
            s.add_argument("-n", type=int, default=32, help="number of test images")
            s.add_argument("-o", "--output", help="PNG to write (default "
                           "reconstructions.png); for sentences a .txt (default: printed)")
        if name in ("sample", "reconstruct"):
            s.add_argument("--decode", choices=["greedy", "sample"], help="sentences: the "
                           "most likely word at each step (default) or a draw")
        if name == "export":
            s.add_argument("--format", default="onnx", choices=["onnx", "diffusers"],
                           help="onnx (the decoder z → mean of p(x|z) and the encoder x → "
                           "latent mean) or diffusers (an AutoencoderKL folder, for diffusers "
                           "nets with a gaussian code)")
            s.add_argument("--out", help=f"folder to write (default RUN/{EXPORT}, or "
                           f"RUN/{DIFFUSERS_EXPORT} for diffusers)")
        if name == "info":
            s.add_argument("--keys", action="store_true", help="list every config section and key")
            s.add_argument("--presets", action="store_true", help="list the presets")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="xae: %(message)s")
    args = _parser().parse_args(argv)
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        code = fn(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here
        return code
    except XaeError as e:
        print(f"xae: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xae: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `xae info RUN | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except MemoryError:
        print("xae: error: out of memory; make the model or the batches smaller (e.g. "
              "model.latent_dim, model.mlp.hidden, train.batch_size)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
