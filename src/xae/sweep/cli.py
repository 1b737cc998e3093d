"""``xae sweep``: train one run per config value, in parallel, and compare them in one folder.

    xae sweep --beta 0.1,0.25,0.5,1,2,4,8 --preset vae --data mnist
    xae sweep --grid model.latent_dim=2,8,32 --grid beta.value=0.5,1 --steps 2000
    xae sweep --optuna --trials 20 --space beta.value=0.1:10:log --metric neg_elbo
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from xae.errors import XaeError


def add_parser(sub: Any) -> None:
    """Add the ``sweep`` subcommand to the ``xae`` parser's ``sub``."""
    s = sub.add_parser(
        "sweep", help="train one run per config value (grid or Optuna) and compare them",
        description="Train one run per config value (a grid over any keys, or an Optuna "
        "search) in parallel processes, then compare them in one folder: sweep.json, "
        "table.md/.csv, rate_distortion.png, latent_maps.png.")
    s.add_argument("--preset", default="vae", help="the model every run starts from")
    s.add_argument("--config", help="a TOML or JSON config file (applied over the preset)")
    s.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="overrides for every run")
    s.add_argument("--data", help="digits (default), mnist, arrays, linear-gaussian")
    s.add_argument("--data-dir", help="folder with the data files (mnist)")
    s.add_argument("--beta", metavar="LIST", help="β values, e.g. 0.1,1,8 (shorthand for "
                   "--grid beta.value=LIST)")
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2,...", help="values of any "
                   "config key; repeat for a cartesian product")
    s.add_argument("--optuna", action="store_true", help="search --space with Optuna instead "
                   "of a grid (needs: pip install 'xae[sweep]')")
    s.add_argument("--trials", type=int, default=20, help="Optuna trials (default 20)")
    s.add_argument("--space", action="append", metavar="KEY=LO:HI[:log]|KEY=A,B,C",
                   help="a dimension of the Optuna search; repeatable")
    s.add_argument("--metric", default="neg_elbo", help="test metric that picks the best run "
                   "(default neg_elbo)")
    s.add_argument("--direction", choices=["minimize", "maximize"],
                   help="default: maximize log-likelihoods and active units, else minimize")
    s.add_argument("--jobs", type=int, help="runs at once (default: as many as the cores or "
                   "GPUs allow)")
    s.add_argument("--out", help="sweep folder (default runs/sweep-<preset>-<data>[-N])")
    s.add_argument("--resume", action="store_true", help="reuse the finished runs in --out "
                   "and continue the others")
    s.add_argument("--epochs", type=int)
    s.add_argument("--steps", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--device", choices=["cpu", "cuda"])
    s.set_defaults(fn=cmd_sweep)


def _base_config(args: argparse.Namespace) -> Any:
    """What every run shares: built exactly as ``xae train`` builds its config."""
    from xae.cli import config_from_args

    train_args = argparse.Namespace(
        resume=None, preset=args.preset, config=args.config, data=args.data,
        data_dir=args.data_dir, device=args.device, seed=args.seed, epochs=args.epochs,
        steps=args.steps, no_progress=True, set=args.set)
    return config_from_args(train_args)


def _check_flags(args: argparse.Namespace) -> None:
    gridded = args.beta is not None or bool(args.grid)
    if args.optuna and gridded:
        raise XaeError("--optuna searches --space; drop --beta/--grid (or drop --optuna)")
    if args.space and not args.optuna:
        raise XaeError("--space goes with --optuna; for a grid use --grid KEY=V1,V2,...")
    if not (args.optuna or gridded):
        raise XaeError("nothing to sweep: pass --beta 0.5,1,2, --grid KEY=V1,V2,... or "
                       "--optuna --space KEY=LO:HI")
    if args.resume and not args.out:
        raise XaeError("--resume needs --out, the sweep folder to continue")
    if args.jobs is not None and args.jobs < 1:
        raise XaeError(f"--jobs must be at least 1, got {args.jobs}")
    if args.optuna and args.trials < 1:
        raise XaeError(f"--trials must be at least 1, got {args.trials}")


def _out_dir(args: argparse.Namespace, cfg: Any) -> Path:
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise XaeError(f"--out '{out}' is a file; choose a folder")
        if out.is_dir() and any(out.iterdir()) and not args.resume:
            raise XaeError(f"sweep folder '{out}' is not empty; pass --resume to reuse its "
                           f"finished runs and continue the others, or choose another --out")
        return out
    from xae import cli  # its first free runs/<preset>-<data>[-N], named sweep-<preset>-…

    named = argparse.Namespace(preset=f"sweep-{cfg.preset}", data=cfg.data)
    return cli.out_dir_from_args(argparse.Namespace(resume=None, out=None), named)


def _progress(total: int, metric: str) -> Callable[[Any], None]:
    """A printer of one line per ended run; checks --metric on the first finished run."""
    from xae.sweep.report import metric_value

    count = [0]

    def notify(result: Any) -> None:
        count[0] += 1
        head = f"[{count[0]}/{total}] {result.run.name}:"
        if result.ok:
            print(f"{head} {result.status} in {result.seconds:.1f} s, {metric} "
                  f"{metric_value(result, metric):.4f}", flush=True)
        else:
            print(f"{head} FAILED (exit {result.returncode}) after {result.seconds:.1f} s; "
                  f"log: {result.log}", flush=True)

    return notify


def _report_failures(failed: list[Any], total: int) -> None:
    lines = [f"xae: error: {len(failed)} of {total} runs failed:"]
    for r in failed:
        lines += [f"  {r.run.name} (exit {r.returncode}); the end of its log {r.log}:",
                  r.log_tail()]
    lines.append("fix the cause and run the same command with --resume to redo only these")
    print("\n".join(lines), file=sys.stderr)


def _plan(args: argparse.Namespace, base: Any) -> tuple[list[str], list[Any], dict, int]:
    """The swept keys, the grid's runs (none for Optuna), Optuna's space, the run count."""
    from xae.config import parse_overrides
    from xae.sweep import grid as G

    if args.optuna:
        from xae.sweep.optuna_search import parse_space

        space = parse_space(args.space, base)
        return list(space), [], space, args.trials
    grid = G.parse_grid(args.beta, args.grid)
    G.check_not_set(list(grid), parse_overrides(args.set or []))
    runs = G.grid_runs(base, grid)
    return list(grid), runs, {}, len(runs)


def _summary(results: list[Any], keys: list[str], record: dict, metric: str,
             out: Path) -> int:
    """Print the table, the best run and the folder; report failures (status 1)."""
    from xae.sweep.report import markdown, metric_columns, rows

    columns = metric_columns(results, only_preferred=True)
    columns += [metric] if record["best"] and metric not in columns else []
    print(markdown(rows(results, keys, columns)))
    if record["best"]:
        print(f"best by {metric} ({record['direction']}): {record['best']}")
    print(f"sweep written to {out}")
    failed = [r for r in results if not r.ok]
    if failed:
        _report_failures(failed, len(results))
        return 1
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from xae.sweep import optuna_search, runner
    from xae.sweep.report import direction, write_report

    _check_flags(args)
    base = _base_config(args)
    keys, runs, space, total = _plan(args, base)
    out = _out_dir(args, base)
    gpus = runner.gpu_count(base.train.device)
    jobs = args.jobs or max(1, min(total, gpus or runner.cpu_cores()))
    threads = base.train.threads or max(1, runner.cpu_cores() // jobs)
    how = args.direction or direction(args.metric)
    todo, reused = ([], []) if args.optuna else runner.plan(runs, out, args.resume)
    out.mkdir(parents=True, exist_ok=True)
    print(f"sweep: {total} runs of {base.preset} on {base.data.name} over {', '.join(keys)}, "
          f"{jobs} at a time ({threads} thread(s) each), into {out}", flush=True)
    notify = _progress(total, args.metric)
    with runner.Pool(out, jobs, threads, gpus=gpus) as pool:
        if args.optuna:
            results, study = optuna_search.search(
                base, space, args.trials, pool, out, metric=args.metric, how=how,
                seed=base.train.seed, resume=args.resume, notify=notify)
        else:
            for r in reused:
                notify(r)
            done = {r.run.name: r for r in reused + runner.run_all(todo, pool, notify)}
            results = [done[r.name] for r in runs]
    record = write_report(out, results, keys, kind="optuna" if args.optuna else "grid",
                          metric=args.metric, how=how)
    if args.optuna:
        optuna_search.write_summary(out, study, space, results, args.metric)
    return _summary(results, keys, record, args.metric, out)
