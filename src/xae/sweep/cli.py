"""``xae sweep``: train one run per config value, in parallel, and compare them in one folder.

    xae sweep --beta 0.1,0.25,0.5,1,2,4,8 --preset vae --data mnist
    xae sweep --grid model.latent_dim=2,8,32 --grid beta.value=0.5,1 --steps 2000
    xae sweep --optuna --trials 20 --space beta.value=0.1:10:log --metric neg_elbo
    xae sweep --optuna --trials 20 --space beta.value=0.1:10:log --storage sqlite:///sweep.db
    xae sweep --join sweep-vae-digits --storage sqlite:///sweep.db     # another worker
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
    s.add_argument("--preset", help="the model every run starts from (default vae)")
    s.add_argument("--config", help="a TOML or JSON config file (applied over the preset)")
    s.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="overrides for every run")
    s.add_argument("--data", help="digits (default), mnist, fashion-mnist, arrays, "
                                   "linear-gaussian, dsprites, ptb, text")
    s.add_argument("--data-dir", help="folder with the data files (mnist, fashion-mnist)")
    s.add_argument("--beta", metavar="LIST", help="β values, e.g. 0.1,1,8 (shorthand for "
                   "--grid beta.value=LIST)")
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2,...", help="values of any "
                   "config key; repeat for a cartesian product")
    s.add_argument("--optuna", action="store_true", help="search --space with Optuna instead "
                   "of a grid (needs: pip install 'xae[sweep]')")
    s.add_argument("--trials", type=int, help="Optuna trials (default 20)")
    s.add_argument("--space", action="append", metavar="KEY=LO:HI[:log]|KEY=A,B,C",
                   help="a dimension of the Optuna search; repeatable")
    s.add_argument("--metric", help="test metric that picks the best run (default neg_elbo)")
    s.add_argument("--direction", choices=["minimize", "maximize"],
                   help="default: maximize the metrics where more is better (active_units, "
                   "psnr, ssim, recon_accuracy, code_usage, …), else minimize")
    s.add_argument("--jobs", type=int, help="runs at once (default: as many as the cores or "
                   "GPUs allow; 0 with --storage: start the study, leave it to --join workers)")
    s.add_argument("--storage", metavar="URL", help="keep the --optuna study in this Optuna "
                   "storage, so that workers on other machines can --join it: "
                   "sqlite:///sweep.db, postgresql://..., mysql://..., or a journal file "
                   "(journal:///sweep.log or a path ending in .log/.jsonl)")
    s.add_argument("--study", metavar="NAME", help="the study's name in --storage (default "
                   "sweep-<preset>-<data>); the same name and settings continue it")
    s.add_argument("--join", metavar="NAME", help="add a worker to the study NAME in --storage: "
                   "it reads the config, space, metric, budget and folder from the study")
    s.add_argument("--heartbeat", type=float, metavar="SECONDS", help="with --storage: how "
                   "often workers mark their running trials; one unmarked for 5 of these has "
                   "lost its worker, and is failed and replaced (default 30)")
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


def _check_join(args: argparse.Namespace) -> None:
    if not args.storage:
        raise XaeError("--join needs --storage, the URL of the study's storage (as given to "
                       "the command that started it)")
    fixed = {"--preset": args.preset, "--config": args.config, "--set": args.set,
             "--data": args.data, "--beta": args.beta, "--grid": args.grid,
             "--optuna": args.optuna or None, "--trials": args.trials, "--space": args.space,
             "--metric": args.metric, "--direction": args.direction,
             "--resume": args.resume or None, "--epochs": args.epochs, "--steps": args.steps,
             "--seed": args.seed, "--study": args.study, "--heartbeat": args.heartbeat}
    given = [flag for flag, value in fixed.items() if value is not None]
    if given:
        raise XaeError(f"--join takes the config, space, metric and budget from the study; "
                       f"drop {', '.join(given)} (a worker sets only --out, --jobs, --data-dir "
                       f"and --device)")
    if args.jobs is not None and args.jobs < 1:
        raise XaeError(f"--jobs must be at least 1, got {args.jobs}")


def _check_storage(args: argparse.Namespace) -> None:
    if not args.storage:
        for flag, value in (("--study", args.study), ("--heartbeat", args.heartbeat)):
            if value is not None:
                raise XaeError(f"{flag} goes with --storage URL, where a shared study lives")
        return
    if not args.optuna:
        raise XaeError("--storage holds an Optuna study: start one with --optuna --space "
                       "KEY=LO:HI --storage URL, or add a worker to one with --join NAME "
                       "--storage URL")
    if args.resume:
        raise XaeError("a study in --storage continues without --resume: run the same "
                       "command again, or xae sweep --join NAME --storage URL")
    if args.heartbeat is not None and not args.heartbeat > 0:
        raise XaeError(f"--heartbeat must be a positive number of seconds, got "
                       f"{args.heartbeat}")


def _check_flags(args: argparse.Namespace) -> None:
    _check_storage(args)
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
    if args.jobs is not None and args.jobs < (0 if args.storage else 1):
        raise XaeError(f"--jobs must be at least 1 (or 0 with --storage, to leave the study "
                       f"to --join workers), got {args.jobs}")
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


def _progress(total: int, metric: str,
              ended: Callable[[], int] | None = None) -> Callable[[Any], None]:
    """A printer of one line per ended run (``ended``: how many have ended, when others count
    too); checks --metric on the first finished run."""
    from xae.sweep.report import metric_value

    count = [0]

    def notify(result: Any) -> None:
        count[0] += 1
        head = f"[{ended() if ended else count[0]}/{total}] {result.run.name}:"
        if result.ok:
            print(f"{head} {result.status} in {result.seconds:.1f} s, {metric} "
                  f"{metric_value(result, metric):.4f}", flush=True)
        else:
            print(f"{head} FAILED (exit {result.returncode}) after {result.seconds:.1f} s; "
                  f"log: {result.log}", flush=True)

    return notify


REDO = "fix the cause and run the same command with --resume to redo only these"


def _report_failures(failed: list[Any], total: int, redo: str = REDO) -> None:
    lines = [f"xae: error: {len(failed)} of {total} runs failed:"]
    for r in failed:
        lines += [f"  {r.run.name} (exit {r.returncode}); the end of its log {r.log}:",
                  r.log_tail()]
    lines.append(redo)
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
             out: Path, redo: str = REDO) -> int:
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
        _report_failures(failed, len(results), redo)
        return 1
    return 0


def _pool(out: Path, base: Any, total: int, jobs: int | None) -> Any:
    """The process pool of a sweep: ``--jobs`` runs at a time (default: one per GPU, or per
    CPU core, at most ``total``), the cores shared out among them."""
    from xae.sweep import runner

    gpus = runner.gpu_count(base.train.device)
    jobs = jobs or max(1, min(total, gpus or runner.cpu_cores()))
    threads = base.train.threads or max(1, runner.cpu_cores() // jobs)
    return runner.Pool(out, jobs, threads, gpus=gpus)


def _shared_sweep(args: argparse.Namespace, base: Any, space: dict) -> int:
    """``--storage``: start or continue the study and work on it, or (``--join``) add a
    worker to one."""
    from xae.sweep import shared
    from xae.sweep.storage import shown

    if args.join is not None:
        study, base, out = shared.join(args)
    else:
        study, out, done = shared.start(args, base, space, lambda: _out_dir(args, base))
        print(f"sweep: {done} study '{study.name}' in {shown(args.storage)}", flush=True)
        if args.jobs == 0:
            print(f"no trials run here (--jobs 0); start workers with: xae sweep --join "
                  f"{study.name} --storage {shown(args.storage)}")
            return 0
    total, metric = int(study.settings["trials"]), study.settings["metric"]
    keys = list(study.settings["space"])
    with _pool(out, base, total, args.jobs) as pool:
        print(f"sweep: study '{study.name}', {total} trials of {base.preset} on "
              f"{base.data.name} over {', '.join(keys)}; this worker runs {pool.jobs} at a "
              f"time ({pool.threads} thread(s) each), into {out}\nadd workers (any machine "
              f"with the data): xae sweep --join {study.name} --storage {shown(study.url)}",
              flush=True)
        from xae.sweep import worker

        notify = _progress(total, metric, ended=lambda: worker.finished(study))
        results, record, elsewhere = shared.work(study, base, out, pool, notify)
    if elsewhere:
        print(f"{elsewhere} trial(s) ran into folders not in {out}; optuna.json lists every "
              f"trial")
    if record is None:
        print(f"study '{study.name}' has ended; none of its trials is in {out}")
        return 0
    return _summary(results, keys, record, metric, out, redo=shared.REDO)


def cmd_sweep(args: argparse.Namespace) -> int:
    from xae.evaluate.report import direction
    from xae.sweep import optuna_search, runner
    from xae.sweep.report import write_report

    if args.join is not None:
        _check_join(args)
        return _shared_sweep(args, None, {})
    args.preset, args.metric = args.preset or "vae", args.metric or "neg_elbo"
    args.trials = 20 if args.trials is None else args.trials
    _check_flags(args)
    base = _base_config(args)
    keys, runs, space, total = _plan(args, base)
    if args.storage:
        return _shared_sweep(args, base, space)
    out = _out_dir(args, base)
    how = args.direction or direction(args.metric)
    todo, reused = ([], []) if args.optuna else runner.plan(runs, out, args.resume)
    out.mkdir(parents=True, exist_ok=True)
    notify = _progress(total, args.metric)
    with _pool(out, base, total, args.jobs) as pool:
        print(f"sweep: {total} runs of {base.preset} on {base.data.name} over "
              f"{', '.join(keys)}, {pool.jobs} at a time ({pool.threads} thread(s) each), "
              f"into {out}", flush=True)
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
