"""A study shared through ``--storage``: what it records, and its budget of trials as tickets.

The command that starts the study records everything a worker needs in the study's user
attribute ``xae.sweep``: the base config (the whole xae config), the space, the metric and
direction, the sweep folder, the budget of trials, the seed and the heartbeat. Any worker
(``xae sweep --join NAME --storage URL``) reads it from there.

The budget is enforced by the storage, not by counting. Counting trials and then asking for
one races: two workers that both see 9 of 10 trials both ask, and the study gets 11. Instead
the study starts with exactly ``trials`` tickets, trials in Optuna's WAITING state, and a
worker only ever takes a ticket, with the storage's compare-and-set from WAITING to RUNNING
(a row lock on PostgreSQL/MySQL, a serialized transaction on SQLite, the order of the log in
a journal): of two workers reaching for the same ticket one wins and the other takes the next
or none. No trial is created but these tickets (and the replacements below), so the trials
that count never exceed the budget, and each (its number names its folder) is run by one
worker only.

A worker marks each of its RUNNING trials every ``heartbeat`` seconds (the user attribute
``heartbeat``). A RUNNING trial whose mark has not changed for ``STALE_BEATS`` heartbeats, as
timed by the watching worker's own clock (so clocks of different machines need not agree),
has lost its worker (killed, or its machine gone): a watching worker sets it FAIL, again with
a compare-and-set, so only one worker does, and queues one new ticket (``replaces`` its
number) in its place. A worker that is stopped (Ctrl-C, an error) hands its trials back the
same way at once. The failed trial stays in the study, as Optuna keeps every trial; should
its worker come back, its result is not told (see :mod:`xae.sweep.worker`). (Optuna's
own heartbeat is not used: it exists for RDB storages only, works within ``study.optimize``
only, and compares times written by different machines.)
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from typing import Any

from xae.errors import XaeError
from xae.sweep.storage import shown

ATTR = "xae.sweep"
RUN, WORKER, BEAT, REPLACES = "run", "worker", "heartbeat", "replaces"
HEARTBEAT_S = 30.0
STALE_BEATS = 5
COMPARED = ("space", "metric", "direction", "trials")  # a restarted study must match these


@dataclasses.dataclass
class Shared:
    """An open shared study: its storage, the Optuna study, its name, URL and settings."""

    storage: Any
    study: Any
    study_id: int
    name: str
    url: str
    settings: dict[str, Any]

    def trials(self, *states: Any) -> list[Any]:
        """The study's trials (in those states), read fresh from the storage."""
        return self.storage.get_all_trials(self.study_id, deepcopy=False,
                                           states=states or None)

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)


def record(config: dict[str, Any], space: dict[str, Any], metric: str, direction: str,
           out: str, trials: int, seed: int, heartbeat: float) -> dict[str, Any]:
    """The settings a study records (``space``: Optuna distributions, stored as JSON)."""
    from optuna.distributions import distribution_to_json

    return {"config": config, "space": {k: json.loads(distribution_to_json(d))
                                        for k, d in space.items()},
            "metric": metric, "direction": direction, "out": out, "trials": trials,
            "seed": seed, "heartbeat": heartbeat}


def space_of(settings: dict[str, Any]) -> dict[str, Any]:
    """The recorded space as Optuna distributions."""
    from optuna.distributions import json_to_distribution

    return {k: json_to_distribution(json.dumps(d)) for k, d in settings["space"].items()}


def find(storage: Any, url: str, name: str) -> Shared | None:
    """The xae study ``name`` in ``storage``, or None if there is none of that name."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    settings = study.user_attrs.get(ATTR)
    if not isinstance(settings, dict):
        raise XaeError(f"study '{name}' in {shown(url)} was not started by xae sweep (or its "
                       f"start was cut short); choose another --study name")
    return Shared(storage, study, storage.get_study_id_from_name(name), name, url, settings)


def join(storage: Any, url: str, name: str) -> Shared:
    """The xae study ``name`` in ``storage`` (an error naming the studies there if absent)."""
    import optuna

    shared = find(storage, url, name)
    if shared is None:
        names = optuna.get_all_study_names(storage)
        there = f"the studies there: {', '.join(names)}" if names else "it holds no study"
        raise XaeError(f"there is no study '{name}' in {shown(url)} ({there}); check --join, "
                       f"or start it with xae sweep --optuna --space ... --storage URL "
                       f"--study {name}")
    return shared


def differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs between a recorded study and the one a command would start (as flags,
    and the config's differing keys)."""
    from xae.config_legacy import from_saved
    from xae.sweep.grid import config_difference

    diff = [f"--{k}" for k in COMPARED if recorded.get(k) != wanted[k]]
    keys = config_difference(from_saved(recorded["config"]), from_saved(wanted["config"]))
    return diff + [f"the config ({', '.join(keys[:3])})"] * bool(keys)


def start(storage: Any, url: str, name: str, settings: dict[str, Any]) -> Shared:
    """Create the study ``name`` with its tickets, then record ``settings`` (last: a study
    without them is not joinable, so a worker never sees one half made)."""
    import optuna

    try:
        study = optuna.create_study(storage=storage, study_name=name,
                                    direction=settings["direction"])
    except optuna.exceptions.DuplicatedStudyError:
        raise XaeError(f"study '{name}' in {shown(url)} was created just now by another "
                       f"command; run this one again to join it") from None
    for _ in range(settings["trials"]):
        study.enqueue_trial({})
    study.set_user_attr(ATTR, settings)
    return Shared(storage, study, storage.get_study_id_from_name(name), name, url, settings)


def claim(shared: Shared) -> int | None:
    """Take a ticket: the number of a WAITING trial this worker set RUNNING, None if none
    is left."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    for t in shared.trials(TrialState.WAITING):
        try:
            if shared.storage.set_trial_state_values(shared.trial_id(t.number),
                                                     TrialState.RUNNING):
                return t.number
        except UpdateFinishedTrialError:  # handed back and failed meanwhile
            continue
    return None


def mark(shared: Shared, number: int, **attrs: Any) -> bool:
    """Set user attributes of the RUNNING trial ``number`` (always a fresh heartbeat); False
    if it is no longer RUNNING (another worker took it as lost)."""
    from optuna.exceptions import UpdateFinishedTrialError

    trial_id = shared.trial_id(number)
    try:
        for key, value in {**attrs, BEAT: time.time()}.items():
            shared.storage.set_trial_user_attr(trial_id, key, value)
    except UpdateFinishedTrialError:
        return False
    return True


def release(shared: Shared, number: int) -> bool:
    """Fail the RUNNING trial ``number`` and queue a ticket in its place; False (and nothing
    done) if it has finished, or another worker released it first."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        if not shared.storage.set_trial_state_values(shared.trial_id(number), TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    shared.study.enqueue_trial({}, user_attrs={REPLACES: number})
    return True


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Watch:
    """Finds RUNNING trials of other workers whose heartbeat stopped (see the module doc)."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.grace = STALE_BEATS * float(shared.settings["heartbeat"])
        self.seen: dict[int, tuple[Any, float]] = {}

    def lost(self, mine: set[int]) -> list[int]:
        """The numbers of the trials, not in ``mine``, unmarked for the grace period."""
        from optuna.trial import TrialState

        now, lost, running = time.monotonic(), [], {}
        for t in self.shared.trials(TrialState.RUNNING):
            if t.number not in mine:
                running[t.number] = t.user_attrs.get(BEAT)
        self.seen = {n: self.seen[n] if n in self.seen and self.seen[n][0] == beat
                     else (beat, now) for n, beat in running.items()}
        for n, (_, since) in self.seen.items():
            if now - since >= self.grace:
                lost.append(n)
        return lost
