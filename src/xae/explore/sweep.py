"""A sweep folder as the explorer sees it: ``xae explore SWEEP_DIR``, a slider over its runs.

The folder is one ``xae sweep`` wrote (grid or Optuna): its ``sweep.json`` lists every run
with its swept values and status. The members are put in the order of their swept values
(numbers in numeric order, other values in the order the report first lists them; several keys
are ordered as a tuple, in the sweep's key order), and each run that finished is loaded with
:func:`xae.explore.runs.load_run`. A member that failed to train, or whose folder cannot be
loaded, stays in the listing with the reason, and the others are shown.

The slider shows the same test points in every run, so the runs must share their data (the
whole ``data`` config but ``data.data_dir``, which only says where the files are); latent
sizes may differ, each run has its own plane. Each loaded run's map is turned, by the
orthogonal Procrustes solution (Schönemann 1966) of an orthogonal 2 × 2 map and a shift, onto
the previous loaded run's map as already turned, so that the picture does not jump between
neighbours; its plane is turned with it (:meth:`xae.plane.Plane.turned`), so every map point
still decodes the latent it stood for.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xae.errors import XaeError
from xae.explore.runs import RunView, load_run
from xae.plane import Plane
from xae.runfiles import SWEEP_REPORT

KINDS = ("grid", "optuna")  # what sweep.json's "kind" may say
LOADABLE = ("done", "reused")  # statuses of a run that finished
FAILED = "failed"


@dataclass
class Member:
    """One run of the sweep: its name, swept values and folder; ``view`` once loaded, else
    ``failed`` says why not."""

    name: str
    params: dict[str, Any]
    path: Path
    view: RunView | None = None
    failed: str | None = None


@dataclass
class SweepView:
    """The sweep folder ``path``: its kind, swept keys and members, in slider order."""

    path: Path
    kind: str
    keys: list[str]
    members: list[Member]

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def views(self) -> list[RunView]:
        """The loaded runs, in slider order."""
        return [m.view for m in self.members if m.view is not None]

    @property
    def failed(self) -> list[Member]:
        return [m for m in self.members if m.failed is not None]

    def to_json(self, views: list[RunView]) -> dict[str, Any]:
        """The ``sweep`` entry of ``runs.json``: each member's ``run`` is its index in
        ``views`` (the runs the page holds), null for a failed one."""
        index = {id(v): i for i, v in enumerate(views)}
        if any(id(v) not in index for v in self.views):
            raise ValueError("every loaded member of the sweep must be among the views")
        return {"folder": self.name, "kind": self.kind, "keys": list(self.keys),
                "members": [{"name": m.name, "params": m.params,
                             "run": index[id(m.view)] if m.view is not None else None,
                             "failed": m.failed} for m in self.members]}


def is_sweep(path: str | Path) -> bool:
    """Whether ``path`` is a folder ``xae sweep`` wrote its report in."""
    return Path(path).is_dir() and (Path(path) / SWEEP_REPORT).is_file()


def _bad(file: Path, what: str) -> XaeError:
    return XaeError(f"{file} is not a report `xae sweep` wrote ({what}); run the sweep's "
                    f"command again with --resume to rewrite it, or explore its runs by name: "
                    f"xae explore RUN [RUN ...]")


def _field(record: Any, key: str, kind: type, file: Path, where: str) -> Any:
    value = record.get(key) if isinstance(record, dict) else None
    if not isinstance(value, kind):
        raise _bad(file, f"{where} has no valid '{key}'")
    return value


def _failure(record: dict[str, Any], folder: Path) -> str:
    code = record.get("returncode")
    log = record.get("log")
    where = f"see {folder / log}" if isinstance(log, str) else "it left no log"
    return f"training failed ({'no exit code' if code is None else f'exit code {code}'}); {where}"


def _order(members: list[Member], keys: list[str]) -> list[Member]:
    """``members`` sorted by their swept values (see the module docstring); stable."""
    firsts: dict[str, list[str]] = {k: [] for k in keys}
    for m in members:
        for k in keys:
            text = json.dumps(m.params[k], sort_keys=True)
            if text not in firsts[k]:
                firsts[k].append(text)

    def rank(key: str, value: Any) -> tuple[int, float]:
        if isinstance(value, bool):
            return 1, float(value)
        if isinstance(value, (int, float)):
            return 0, float(value)
        return 2, float(firsts[key].index(json.dumps(value, sort_keys=True)))

    return sorted(members, key=lambda m: tuple(rank(k, m.params[k]) for k in keys))


def read_sweep(path: str | Path) -> SweepView:
    """The sweep folder ``path`` as its ``sweep.json`` lists it, members in slider order and
    none loaded yet (those that failed to train are marked failed)."""
    folder = Path(path)
    file = folder / SWEEP_REPORT
    try:
        record = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise XaeError(f"cannot read {file} ({e}); run the sweep's command again with "
                       f"--resume to rewrite it") from None
    kind = _field(record, "kind", str, file, "the report")
    if kind not in KINDS:
        raise XaeError(f"{file} is a sweep of kind '{kind}', and the explorer's sweep view "
                       f"knows {' and '.join(KINDS)} sweeps; explore its runs by name: "
                       f"xae explore RUN [RUN ...]")
    keys = _field(record, "swept", list, file, "the report")
    if not keys or not all(isinstance(k, str) for k in keys):
        raise _bad(file, "its 'swept' is not a list of config keys")
    members = []
    for i, rec in enumerate(_field(record, "runs", list, file, "the report")):
        where = f"run {i + 1} of its 'runs'"
        name = _field(rec, "name", str, file, where)
        params = _field(rec, "params", dict, file, where)
        status = _field(rec, "status", str, file, where)
        if status not in (*LOADABLE, FAILED):
            raise _bad(file, f"{where} has the status '{status}'")
        if any(k not in params for k in keys):
            raise _bad(file, f"{where} lacks a value of {', '.join(keys)}")
        member = Member(name, params, folder / _field(rec, "path", str, file, where))
        if status == FAILED:
            member.failed = _failure(rec, folder)
        members.append(member)
    if not members:
        raise XaeError(f"{file} lists no runs; run the sweep's command again with --resume")
    return SweepView(folder, kind, list(keys), _order(members, keys))


def _data(config: Any) -> dict[str, Any]:
    data = config.to_dict()["data"]
    data.pop("data_dir", None)  # where the files are, not which data
    return data


def check_same_data(sweep: SweepView, configs: dict[str, Any]) -> None:
    """An XaeError naming two members and their data when they were trained on different data
    (the sweep view shows every run on the same test points); ``configs``: each member's
    config by name, read before anything slow is loaded."""
    loaded = [m for m in sweep.members if m.name in configs]
    if not loaded:
        return
    first = _data(configs[loaded[0].name])
    for m in loaded[1:]:
        other = _data(configs[m.name])
        diff = [k for k in first.keys() | other.keys()
                if k != "name" and first.get(k) != other.get(k)]
        if not diff and first.get("name") == other.get("name"):
            continue

        def shown(d: dict[str, Any]) -> str:
            return ", ".join([f"data {d.get('name')}"] +
                             [f"data.{k}={json.dumps(d.get(k))}" for k in sorted(diff)])

        a = loaded[0]
        raise XaeError(f"the runs {a.name} ({shown(first)}) and {m.name} ({shown(other)}) of "
                       f"the sweep {sweep.path} were trained on different data, and the sweep "
                       f"view shows every run on the same test points; explore them as "
                       f"separate runs: xae explore {a.path} {m.path}")


def procrustes(a: np.ndarray, b: np.ndarray, *,
               flip_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The orthogonal ``R`` (2, 2) and shift ``t`` (2,) that minimise ‖a Rᵀ + t − b‖² over
    matching rows of the maps ``a`` and ``b`` (N, 2): both centred, ``Rᵀ = U Vᵀ`` from the
    SVD ``U S Vᵀ`` of their cross-covariance (Schönemann 1966). A rotation or a reflection,
    never a scaling.

    Parameters
    ----------
    flip_only : bool
        For a map of a 1-d latent (v = 0): only the sign of u may change and v is not shifted.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ca, cb = a.mean(0), b.mean(0)
    if flip_only:
        sign = -1.0 if (a[:, 0] - ca[0]) @ (b[:, 0] - cb[0]) < 0 else 1.0
        return np.diag([sign, 1.0]), np.array([cb[0] - sign * ca[0], 0.0])
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    r = (u @ vt).T
    return r, cb - ca @ r.T


def aligned(coords: np.ndarray, plane: Plane, target: np.ndarray) -> tuple[np.ndarray, Plane]:
    """``coords`` (N, 2) turned onto ``target`` (:func:`procrustes`; a 1-d latent's map only
    flips), and ``plane`` turned with them so that it maps each new point to the latent the
    old plane mapped the old point to."""
    if coords.shape != target.shape:
        raise XaeError(f"the maps to align hold different numbers of test points "
                       f"({len(coords)} and {len(target)}), so they do not show the same "
                       f"points; explore the runs as separate runs: xae explore RUN [RUN ...]")
    r, t = procrustes(coords, target, flip_only=not plane.basis[1].any())
    return (coords.astype(np.float64) @ r.T + t).astype(np.float32), plane.turned(r, t)


def align_views(views: list[RunView]) -> None:
    """Turn each view's map (and plane) onto the previous view's, as already turned; the
    first stays as it is."""
    for previous, view in zip(views, views[1:]):
        view.coords, view.plane = aligned(view.coords, view.plane, previous.coords)


def load_sweep(sweep: SweepView, *, max_points: int | None = None, seed: int = 0) -> list[RunView]:
    """Load every member of ``sweep`` that finished (a member that cannot be loaded is marked
    failed with the first line of the error), check that they share their data, align their
    maps, and return the loaded views in slider order. Runs of other data are refused from
    their configs, before any is loaded."""
    from xae.train.checkpoint import read_config

    def fail(m: Member, e: XaeError) -> None:
        m.failed = (str(e).strip().splitlines() or [type(e).__name__])[0]

    configs = {}
    for m in sweep.members:
        if m.failed is None:
            try:
                configs[m.name] = read_config(m.path)
            except XaeError as e:
                fail(m, e)
    check_same_data(sweep, configs)
    for m in sweep.members:
        if m.failed is None:
            try:
                m.view = load_run(m.path, max_points=max_points, seed=seed)
            except XaeError as e:
                fail(m, e)
    views = sweep.views
    if not views:
        reasons = " | ".join(f"{m.name}: {m.failed}" for m in sweep.members)
        raise XaeError(f"no run of the sweep {sweep.path} can be shown [{reasons}]; fix the "
                       f"cause and run the sweep's command again with --resume, which redoes "
                       f"the failed runs")
    align_views(views)
    return views
