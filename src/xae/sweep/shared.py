"""The work behind ``xae sweep --optuna --storage URL`` and ``xae sweep --join NAME``
(the command line, :mod:`xae.sweep.cli`, says what happens).

The first starts a study in the storage (or continues the one of that name, if it was started
with the same config, space, metric, direction and budget) and works on it; the second adds a
worker to a study from anywhere the storage and the data can be reached. Every worker writes
the report (``sweep.json``, tables, figures, ``optuna.json``) of the trial folders it sees
once the study has ended. See :mod:`xae.sweep.study` for how trials are shared.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from xae.config import Config, apply
from xae.config_legacy import from_saved
from xae.errors import XaeError
from xae.sweep import study as S
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


def start(args: argparse.Namespace, base: Config, space: dict[str, Any],
          default_out: Callable[[], Path]) -> tuple[S.Shared, Path, str]:
    """Start (or continue) the study of ``--optuna --storage``: the study, the sweep folder
    (``--out``, the one the study recorded, or ``default_out()`` for a new study) and what
    was done, ``started`` or ``continuing``."""
    from xae.evaluate.report import direction

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
        out = default_out().resolve()
        storage = storage or open_storage(args.storage)
        shared = S.start(storage, args.storage, name,
                         settings(str(_folder(out)), args.heartbeat or S.HEARTBEAT_S))
        return shared, out, "started"
    recorded = shared.settings
    diff = S.differences(recorded, settings(recorded["out"],
                                            args.heartbeat or recorded["heartbeat"]))
    diff += ["--heartbeat"] * (args.heartbeat not in (None, recorded["heartbeat"]))
    if diff:
        raise XaeError(f"study '{name}' in {shown(args.storage)} was started with other "
                       f"settings ({', '.join(diff)} differ); add a worker to it as it is "
                       f"with xae sweep --join {name} --storage URL, or give this search "
                       f"another --study")
    return shared, _folder(Path(args.out) if args.out else Path(recorded["out"])), "continuing"


def join(args: argparse.Namespace) -> tuple[S.Shared, Config, Path]:
    """``--join NAME``: the study NAME, the config it recorded (with this machine's
    ``--data-dir`` and ``--device``) and this worker's sweep folder."""
    storage = open_storage(args.storage, create=False)
    shared = S.join(storage, args.storage, args.join)
    flags = {"data.data_dir": args.data_dir, "train.device": args.device}
    base = apply(from_saved(shared.settings["config"]),
                 {k: v for k, v in flags.items() if v is not None})
    return shared, base, _folder(Path(args.out) if args.out else Path(shared.settings["out"]))


def work(shared: S.Shared, base: Config, out: Path, pool: Any,
         notify: Callable[[Any], None]) -> tuple[list[Any], dict | None, int]:
    """Run the study's trials in ``pool`` until none is left, then write the report of the
    trial folders in ``out``: the results there, the report's record (None when none of the
    study's trials is in ``out``) and how many trials ran into folders elsewhere."""
    from xae.sweep import optuna_search, worker
    from xae.sweep.report import write_report

    settings, space = shared.settings, S.space_of(shared.settings)
    try:
        own = worker.work(shared, base, space, pool, out, notify)
    except optuna_search._optuna().exceptions.StorageInternalError as e:
        raise XaeError(f"the study's storage {shown(shared.url)} failed ({e}); run this "
                       f"worker again once it can be reached") from None
    results, elsewhere = worker.results(shared, base, out, own)
    record = write_report(out, results, list(space), kind="optuna", metric=settings["metric"],
                          how=settings["direction"]) if results else None
    optuna_search.write_summary(out, shared.study, space, results, settings["metric"])
    return results, record, elsewhere
