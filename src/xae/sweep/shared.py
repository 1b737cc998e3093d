"""``xae sweep --optuna --storage URL`` and ``xae sweep --join NAME --storage URL``.

The first starts a study in the storage (or continues the one of that name, if it was started
with the same config, space, metric, direction and budget) and works on it; the second adds a
worker to a study from anywhere the storage and the data can be reached. Every worker writes
the report (``sweep.json``, tables, figures, ``optuna.json``) of the trial folders it sees
once the study has ended. See :mod:`xae.sweep.study` for how trials are shared.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from xae.config import Config, apply, from_dict
from xae.errors import XaeError
from xae.sweep import study as S
from xae.sweep.cli import _out_dir, _progress, _summary
from xae.sweep.storage import local_file, open_storage, shown

REDO = ("a failed trial counts in the study's budget; fix the cause and start a new study "
        "(another --study name) to redo it")


def _folder(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise XaeError(f"the sweep folder '{path}' is a file; give this worker a folder with "
                       f"--out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise XaeError(f"cannot make the sweep folder '{path}' ({e.strerror}); give this "
                       f"worker a folder with --out") from None
    return path


def start(args: argparse.Namespace, base: Config, space: dict[str, Any]) -> int:
    """Start (or continue) the study of ``--optuna --storage``; work on it unless --jobs 0."""
    from xae.sweep.report import direction

    how = args.direction or direction(args.metric)
    name = args.study or f"sweep-{base.preset}-{base.data.name}"
    file = local_file(args.storage)
    storage = None if file is not None and not file.exists() else open_storage(args.storage)
    shared = S.find(storage, args.storage, name) if storage is not None else None

    def settings(out: str, heartbeat: float) -> dict[str, Any]:
        return S.record(base.to_dict(), space, args.metric, how, out, args.trials,
                        base.train.seed, heartbeat)

    if shared is None:
        if args.out and Path(args.out).is_dir() and any(Path(args.out).iterdir()):
            raise XaeError(f"sweep folder '{args.out}' is not empty, and a new study starts "
                           f"in an empty one; choose another --out")
        out = _out_dir(args, base).resolve()
        storage = storage or open_storage(args.storage)
        shared = S.start(storage, args.storage, name,
                         settings(str(_folder(out)), args.heartbeat or S.HEARTBEAT_S))
        print(f"sweep: started study '{name}' in {shown(args.storage)} ({args.trials} "
              f"trials)", flush=True)
    else:
        recorded = shared.settings
        diff = S.differences(recorded, settings(recorded["out"],
                                                args.heartbeat or recorded["heartbeat"]))
        diff += ["--heartbeat"] * (args.heartbeat not in (None, recorded["heartbeat"]))
        if diff:
            raise XaeError(f"study '{name}' in {shown(args.storage)} was started with other "
                           f"settings ({', '.join(diff)} differ); add a worker to it as it is "
                           f"with xae sweep --join {name} --storage URL, or give this search "
                           f"another --study")
        out = _folder(Path(args.out) if args.out else Path(recorded["out"]))
        print(f"sweep: continuing study '{name}' in {shown(args.storage)}", flush=True)
    if args.jobs == 0:
        print(f"no trials run here (--jobs 0); start workers with: xae sweep --join {name} "
              f"--storage {shown(args.storage)}")
        return 0
    return _work(shared, base, space, out, args.jobs)


def join(args: argparse.Namespace) -> int:
    """``--join NAME``: work on the study NAME with the settings it recorded."""
    storage = open_storage(args.storage, create=False)
    shared = S.join(storage, args.storage, args.join)
    flags = {"data.data_dir": args.data_dir, "train.device": args.device}
    base = apply(from_dict(shared.settings["config"]),
                 {k: v for k, v in flags.items() if v is not None})
    out = _folder(Path(args.out) if args.out else Path(shared.settings["out"]))
    return _work(shared, base, S.space_of(shared.settings), out, args.jobs)


def _work(shared: S.Shared, base: Config, space: dict[str, Any], out: Path,
          jobs: int | None) -> int:
    from xae.sweep import optuna_search, runner, worker
    from xae.sweep.report import write_report

    settings, keys = shared.settings, list(space)
    total, metric = int(settings["trials"]), settings["metric"]
    gpus = runner.gpu_count(base.train.device)
    jobs = jobs or max(1, min(total, gpus or runner.cpu_cores()))
    threads = base.train.threads or max(1, runner.cpu_cores() // jobs)
    print(f"sweep: study '{shared.name}', {total} trials of {base.preset} on "
          f"{base.data.name} over {', '.join(keys)}; this worker runs {jobs} at a time "
          f"({threads} thread(s) each), into {out}\n"
          f"add workers (any machine with the data): xae sweep --join {shared.name} "
          f"--storage {shown(shared.url)}", flush=True)
    notify = _progress(total, metric, ended=lambda: worker.finished(shared))
    try:
        with runner.Pool(out, jobs, threads, gpus=gpus) as pool:
            own = worker.work(shared, base, space, pool, out, notify)
    except optuna_search._optuna().exceptions.StorageInternalError as e:
        raise XaeError(f"the study's storage {shown(shared.url)} failed ({e}); run this "
                       f"worker again once it can be reached") from None
    results, elsewhere = worker.results(shared, base, out, own)
    if elsewhere:
        print(f"{elsewhere} trial(s) ran into folders not in {out}; optuna.json lists every "
              f"trial")
    if not results:
        optuna_search.write_summary(out, shared.study, space, results, metric)
        print(f"study '{shared.name}' has ended; none of its trials is in {out}")
        return 0
    record = write_report(out, results, keys, kind="optuna", metric=metric,
                          how=settings["direction"])
    optuna_search.write_summary(out, shared.study, space, results, metric)
    return _summary(results, keys, record, metric, out, redo=REDO)
