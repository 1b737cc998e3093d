"""``xae sweep --optuna``: search a space of config values with Optuna instead of a grid.

Trials go through Optuna's ask-and-tell interface and run in the same process pool as a
grid, so ``--jobs`` trials train at once; the sampler is TPE (Bergstra et al. 2011) seeded by
the sweep's seed. A space item is ``KEY=LO:HI`` (uniform), ``KEY=LO:HI:log`` (log-uniform;
integers for integer keys) or ``KEY=A,B,C`` (categorical). Needs the ``sweep`` extra.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from xae.config import Config, parse_overrides, resolve_key
from xae.errors import XaeError
from xae.fileio import write_json
from xae.runfiles import CONFIG
from xae.sweep.grid import Run, coerce, get_value, make_run, run_name, split_values
from xae.sweep.report import metric_value
from xae.sweep.runner import Job, Pool, Result, plan
from xae.train.checkpoint import read_config

TRIAL = "trial-"


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise XaeError("--optuna needs Optuna; install the sweep extra: "
                       "pip install 'xae[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _choice(value: Any) -> Any:
    """A config value as an Optuna choice (lists as their JSON text)."""
    return json.dumps(value) if isinstance(value, list) else value


def _range(base: Config, key: str, parts: list[str]) -> Any:
    dists = _optuna().distributions
    lo, hi = (coerce(base, key, p) for p in parts[:2])
    log = len(parts) == 3
    if isinstance(lo, bool) or not isinstance(lo, (int, float)):
        raise XaeError(f"--space {key}: a range LO:HI needs a numeric key, and {key} holds "
                       f"{type(lo).__name__}; list its values instead: {key}=A,B,C")
    if not lo < hi or (log and lo <= 0):
        raise XaeError(f"--space {key}={':'.join(parts)}: need LO < HI (and LO > 0 for log)")
    for v in (lo, hi):
        make_run(base, {key: v}, "check")
    if isinstance(lo, int):
        return dists.IntDistribution(lo, hi, log=log)
    return dists.FloatDistribution(lo, hi, log=log)


def parse_space(items: list[str] | None, base: Config) -> dict[str, Any]:
    """``--space`` items → ``{dotted key: Optuna distribution}``, every value checked."""
    dists = _optuna().distributions
    if not items:
        raise XaeError("--optuna needs a space: --space KEY=LO:HI[:log] or KEY=A,B,C, e.g. "
                       "--space beta.value=0.1:10:log")
    space: dict[str, Any] = {}
    for item in items:
        (key, text), = parse_overrides([item]).items()
        key = resolve_key(key)
        if key in space:
            raise XaeError(f"--space names '{key}' twice; give it once")
        parts = text.split(":")
        if ":" in text:
            if len(parts) not in (2, 3) or parts[2:] not in ([], ["log"]):
                raise XaeError(f"--space {item!r}: write KEY=LO:HI, KEY=LO:HI:log or "
                               f"KEY=A,B,C")
            space[key] = _range(base, key, parts)
            continue
        values = [coerce(base, key, raw) for raw in split_values(text)]
        if len(values) < 2:
            raise XaeError(f"--space {item!r} holds one value; give a range LO:HI or two or "
                           f"more values A,B,...")
        for v in values:
            make_run(base, {key: v}, "check")
        space[key] = dists.CategoricalDistribution([_choice(v) for v in values])
    return space


def _resumed(study: Any, base: Config, space: dict[str, Any], out: Path,
             metric: str) -> tuple[list[Result], list[Job]]:
    """Trials in ``out`` from an earlier search: finished ones join the study, the rest wait."""
    runs = []
    for path in sorted(p for p in out.glob(f"{TRIAL}*") if (p / CONFIG).is_file()):
        cfg = read_config(path)
        runs.append(make_run(base, {k: get_value(cfg, k) for k in space}, path.name))
    jobs, reused = plan(runs, out, resume=True)
    for r in reused:
        _record(study, None, r, space, metric)
    return reused, jobs


def _record(study: Any, trial: Any, result: Result, space: dict[str, Any],
            metric: str) -> None:
    """Tell the study how a trial ended (a resumed one is added as a finished trial)."""
    optuna = _optuna()
    value = metric_value(result, metric) if result.ok else math.nan
    state = optuna.trial.TrialState.COMPLETE if math.isfinite(value) \
        else optuna.trial.TrialState.FAIL
    if trial is not None:
        study.tell(trial, value if state == optuna.trial.TrialState.COMPLETE else None,
                   state=state)
        return
    params = {k: _choice(result.run.params[k]) for k in space}
    try:
        study.add_trial(optuna.trial.create_trial(
            state=state, value=value if math.isfinite(value) else None, params=params,
            distributions=space, user_attrs={"run": result.run.name}))
    except ValueError as e:
        raise XaeError(f"'{result.path}' does not fit the --space given ({e}); resume with "
                       f"the space that started this search, or choose another --out") from None


def _next_job(study: Any, base: Config, space: dict[str, Any], out: Path,
              index: int) -> tuple[Job, Any]:
    trial = study.ask(space)
    params = {k: coerce(base, k, v) for k, v in trial.params.items()}
    run: Run = make_run(base, params, run_name(params, f"{TRIAL}{index:03d},", digits=4))
    trial.set_user_attr("run", run.name)
    return Job(run, out / run.name), trial


def _trial_index(name: str) -> int:
    """``trial-007,beta=0.5`` → 7 (-1 for a name not written by a search)."""
    head = name[len(TRIAL):].split(",")[0]
    return int(head) if head.isdigit() else -1


def search(base: Config, space: dict[str, Any], trials: int, pool: Pool, out: Path, *,
           metric: str, how: str, seed: int, resume: bool,
           notify: Callable[[Result], None] | None = None) -> tuple[list[Result], Any]:
    """Run ``trials`` trials (counting those finished in ``out`` when resuming).

    Returns the results in the order they ended, and the Optuna study.
    """
    optuna = _optuna()
    earlier = sum(1 for _ in out.glob(f"{TRIAL}*")) if resume else 0
    # a resumed search draws new points, not the first search's again
    sampler = optuna.samplers.TPESampler(seed=seed + earlier)
    study = optuna.create_study(direction=how, sampler=sampler)
    notify = notify or (lambda result: None)
    results, pending = _resumed(study, base, space, out, metric) if resume else ([], [])
    for result in results:
        notify(result)
    index = 1 + max((_trial_index(p.name) for p in out.glob(f"{TRIAL}*")), default=-1)
    started, asked = len(results), {}
    while started < trials or pool.busy:
        while pool.free and started < trials:
            if pending:
                job, trial = pending.pop(0), None
            else:
                job, trial = _next_job(study, base, space, out, index)
                index += 1
            asked[job.run.name] = trial
            pool.submit(job)
            started += 1
        for result in pool.wait():
            _record(study, asked.pop(result.run.name), result, space, metric)
            results.append(result)
            notify(result)
    return results, study


def write_summary(out: Path, study: Any, space: dict[str, Any], results: list[Result],
                  metric: str) -> dict[str, Any]:
    """``optuna.json``: the space, every trial, and the best trial's params and run (its
    params as Optuna holds them if its run is not among ``results``, as in a shared study
    whose best trial ran into another folder)."""
    optuna = _optuna()
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if complete else None
    by_name = {r.run.name: r for r in results}
    best_run = by_name.get(best.user_attrs.get("run")) if best else None
    record = {
        "metric": metric, "direction": study.direction.name.lower(),
        "space": {k: json.loads(optuna.distributions.distribution_to_json(d))
                  for k, d in space.items()},
        "best_value": best.value if best else None,
        "best_run": best.user_attrs.get("run") if best else None,
        "best_params": (best_run.run.params if best_run else best.params) if best else None,
        "trials": [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
                    "run": t.user_attrs.get("run"), "params": t.params,
                    **{k: t.user_attrs[k] for k in ("worker", "replaces") if k in t.user_attrs}}
                   for t in study.trials],
    }
    write_json(out / "optuna.json", record)
    return record
