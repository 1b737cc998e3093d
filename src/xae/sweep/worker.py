"""A worker of a shared study: take tickets, train each trial into the sweep folder, tell.

Each trial is named, and its folder ``trial-NNN,<values>`` numbered, by its Optuna trial
number, which the storage hands out once; its values are drawn by TPE (with the constant
liar, so that workers running at once spread out), seeded by the study's seed plus that
number. The worker keeps going while any trial of the study is waiting or running, so that a
trial that loses its worker elsewhere is taken over (see :mod:`xae.sweep.study`); then
:func:`results` gathers the finished trials whose folders it can see, for the report.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from xae.config import Config
from xae.errors import XaeError
from xae.runfiles import CONFIG, METRICS, TRAIN_LOG
from xae.sweep import study as S
from xae.sweep.grid import Run, coerce, make_run, run_name
from xae.sweep.optuna_search import TRIAL, _optuna, _record
from xae.sweep.runner import Job, Pool, Result, read_metrics
from xae.train.checkpoint import read_config

POLL_S = 5.0  # at most this long between looks at the study


def _suggest(trial: Any, key: str, dist: Any) -> Any:
    dists = _optuna().distributions
    if isinstance(dist, dists.FloatDistribution):
        return trial.suggest_float(key, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, dists.IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, log=dist.log, step=dist.step)
    return trial.suggest_categorical(key, dist.choices)


def _job(shared: S.Shared, number: int, base: Config, space: dict[str, Any],
         out: Path) -> tuple[Job, Any]:
    """The run of the claimed trial ``number``: its values drawn, its folder marked on it."""
    optuna = _optuna()
    shared.study.sampler = optuna.samplers.TPESampler(
        seed=int(shared.settings["seed"]) + number, constant_liar=True)
    trial = optuna.trial.Trial(shared.study, shared.trial_id(number))
    params = {k: coerce(base, k, _suggest(trial, k, d)) for k, d in space.items()}
    run = make_run(base, params, run_name(params, f"{TRIAL}{number:03d},", digits=4))
    if (out / run.name).exists():
        raise XaeError(f"'{out / run.name}' already exists, so {out} holds another study's "
                       f"trials; give this worker its own folder with --out")
    S.mark(shared, number, **{S.RUN: run.name, S.WORKER: S.worker_name()})
    return Job(run, out / run.name), trial


def _tell(shared: S.Shared, number: int, trial: Any, result: Result,
          space: dict[str, Any], metric: str) -> bool:
    """Tell the study how trial ``number`` ended; False if it is no longer this worker's
    (another worker failed it as lost: a finished trial is never told twice)."""
    optuna = _optuna()
    state = shared.storage.get_trial(shared.trial_id(number)).state
    if state != optuna.trial.TrialState.RUNNING:
        return False
    try:
        _record(shared.study, trial, result, space, metric)
    except optuna.exceptions.UpdateFinishedTrialError:  # failed as lost a moment ago
        return False
    return True


def _take_over(shared: S.Shared, watch: S.Watch, mine: set[int],
               say: Callable[[str], None]) -> None:
    for number in watch.lost(mine):
        if S.release(shared, number):
            say(f"trial {number} lost its worker (no heartbeat for {watch.grace:g} s): "
                f"failed it and queued a new trial in its place")


def work(shared: S.Shared, base: Config, space: dict[str, Any], pool: Pool, out: Path,
         notify: Callable[[Result], None],
         say: Callable[[str], None] = print) -> dict[str, Result]:
    """Run trials of ``shared`` through ``pool`` until none is waiting or running; returns
    this worker's results by run name. Trials still running when it stops (an error, Ctrl-C)
    are handed back to the study."""
    trial_state = _optuna().trial.TrialState
    metric, heartbeat = shared.settings["metric"], float(shared.settings["heartbeat"])
    mine: dict[str, tuple[int, Any]] = {}  # run name → (trial number, Optuna trial)
    own: dict[str, Result] = {}
    watch, beaten, waiting = S.Watch(shared), time.monotonic(), False
    try:
        while True:
            while pool.free and (number := S.claim(shared)) is not None:
                try:
                    job, trial = _job(shared, number, base, space, out)
                except BaseException:
                    S.release(shared, number)
                    raise
                mine[job.run.name] = (number, trial)
                pool.submit(job)
            _take_over(shared, watch, {n for n, _ in mine.values()}, say)
            if not pool.busy:
                left = shared.trials(trial_state.WAITING, trial_state.RUNNING)
                if not left:
                    return own
                if not any(t.state == trial_state.WAITING for t in left):
                    if not waiting:
                        say(f"waiting for trial(s) {', '.join(str(t.number) for t in left)}, "
                            f"running on other workers")
                    waiting = True
                    time.sleep(min(heartbeat, POLL_S))
                continue
            for result in pool.wait(timeout=min(heartbeat, POLL_S)):
                number, trial = mine[result.run.name]
                if _tell(shared, number, trial, result, space, metric):
                    own[result.run.name] = result
                    notify(result)
                else:
                    say(f"trial {number} was taken over by another worker while it ran (no "
                        f"heartbeat for {watch.grace:g} s); its result is not counted")
                del mine[result.run.name]
            if time.monotonic() - beaten >= heartbeat:
                for number, _ in mine.values():
                    S.mark(shared, number)
                beaten = time.monotonic()
    finally:
        for number, _ in mine.values():
            try:
                S.release(shared, number)
            except Exception as e:  # noqa: BLE001 - the storage itself failed; say so, go on
                say(f"could not hand trial {number} back ({type(e).__name__}); other workers "
                    f"take it over after {watch.grace:g} s without its heartbeat")


def finished(shared: S.Shared) -> int:
    """Trials of the study that have ended, not counting those lost and replaced."""
    trial_state = _optuna().trial.TrialState
    ended = shared.trials(trial_state.COMPLETE, trial_state.FAIL)
    return len(ended) - sum(S.REPLACES in t.user_attrs for t in shared.trials())


def results(shared: S.Shared, base: Config, out: Path,
            own: dict[str, Result]) -> tuple[list[Result], int]:
    """The study's ended trials (those lost and replaced left out), by number, whose folders
    or logs are in ``out`` (this worker's own results as they are); and how many others
    ended into folders not here."""
    trial_state = _optuna().trial.TrialState
    trials = shared.trials()
    lost = {t.user_attrs[S.REPLACES] for t in trials if S.REPLACES in t.user_attrs}
    found, elsewhere = [], 0
    for t in sorted(trials, key=lambda t: t.number):
        name = t.user_attrs.get(S.RUN)
        if not t.state.is_finished() or t.number in lost or name is None:
            continue
        if name in own:
            found.append(own[name])
            continue
        path = out / name
        logs = [p for p in (path / TRAIN_LOG, out / "logs" / f"{name}.log") if p.is_file()]
        done = t.state == trial_state.COMPLETE and (path / METRICS).is_file()
        if not done and not (t.state == trial_state.FAIL and logs):
            elsewhere += 1
            continue
        params = {k: coerce(base, k, v) for k, v in t.params.items()}
        run = Run(name, params, read_config(path) if (path / CONFIG).is_file() else base)
        seconds = t.duration.total_seconds() if t.duration else 0.0
        found.append(Result(run, path, "done" if done else "failed", 0 if done else None,
                            seconds, logs[0] if logs else None,
                            read_metrics(path) if done else None))
    return found, elsewhere
