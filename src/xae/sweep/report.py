"""A sweep's report: ``sweep.json``, ``table.md``/``table.csv``, and its two figures.

``sweep.json`` holds every run (swept values, status, log, all test metrics) and the best run
by the sweep's metric; the tables hold the swept values and every scalar test metric, the
usual ones first. Failed runs stay in the report with their status, never dropped.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from xae.errors import XaeError
from xae.fileio import write_json, write_text
from xae.runfiles import SWEEP_REPORT
from xae.sweep.runner import Result

PREFERRED = ("neg_elbo", "distortion", "rate", "active_units", "bits_per_dim", "loss")


def scalars(test: dict[str, Any]) -> dict[str, float]:
    """The scalar entries of a run's test metrics (per-dimension lists are left to JSON)."""
    return {k: v for k, v in test.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def metric_value(result: Result, metric: str) -> float:
    """The run's test ``metric``; an :class:`XaeError` naming the choices if it has none."""
    test = scalars(result.metrics["test"]) if result.metrics else {}
    if metric not in test:
        raise XaeError(f"--metric '{metric}' is not a test metric of the runs; choose one of "
                       f"{', '.join(test)} (finished runs are kept: run the same command "
                       f"with --resume and that --metric)")
    return float(test[metric])


def best(results: list[Result], metric: str, how: str) -> Result | None:
    """The finished run with the best finite ``metric`` (``how``: minimize or maximize)."""
    scored = [(metric_value(r, metric), r) for r in results if r.ok]
    scored = [(v, r) for v, r in scored if math.isfinite(v)]
    if not scored:
        return None
    pick = min if how == "minimize" else max
    return pick(scored, key=lambda vr: vr[0])[1]


def metric_columns(results: list[Result], only_preferred: bool = False) -> list[str]:
    """Scalar test metrics of the finished runs: the usual ones first, then the rest."""
    seen: dict[str, None] = {}
    for r in results:
        if r.ok:
            seen.update(dict.fromkeys(scalars(r.metrics["test"])))
    first = [k for k in PREFERRED if k in seen]
    return first if only_preferred else first + [k for k in seen if k not in first]


def _cell(v: Any, digits: str, exact: bool = False) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return repr(v) if exact else format(v, digits)
    return json.dumps(v) if isinstance(v, list) else str(v)


def rows(results: list[Result], keys: list[str], columns: list[str],
         exact: bool = False) -> list[list[str]]:
    """A header and one row per run: name, swept values, status, metrics (``exact``: floats
    in full, for the CSV)."""
    out = [["run", *keys, "status", *columns]]
    for r in results:
        test = scalars(r.metrics["test"]) if r.ok else {}
        swept = [_cell(r.run.params[k], ".6g", exact) for k in keys]
        metrics = [_cell(test.get(c), ".4f", exact) for c in columns]
        out.append([r.run.name, *swept, r.status, *metrics])
    return out


def markdown(table: list[list[str]]) -> str:
    """A Markdown table with aligned columns (numbers right-aligned), readable as plain text."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    numeric = [all(_is_number(row[i]) for row in table[1:] if row[i]) for i in range(len(widths))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if n else c.ljust(w)
                                 for c, w, n in zip(row, widths, numeric)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if n else "-") for w, n in zip(widths, numeric))
    return "\n".join([line(table[0]), rule + "|", *map(line, table[1:])])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv(table: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(table)
    return buf.getvalue()


def _run_record(r: Result, out: Path) -> dict[str, Any]:
    rec = {"name": r.run.name, "path": _relative(r.path, out), "params": r.run.params,
           "status": r.status, "returncode": r.returncode, "seconds": round(r.seconds, 3),
           "log": _relative(r.log, out) if r.log is not None else None}
    if r.metrics:
        rec.update({k: r.metrics[k] for k in ("step", "epochs", "train_time_s")
                    if k in r.metrics})
        rec["test"] = r.metrics["test"]
    return rec


def _relative(path: Path, out: Path) -> str:
    try:
        return str(path.relative_to(out))
    except ValueError:
        return str(path)


def write_report(out: Path, results: list[Result], keys: list[str], *, kind: str,
                 metric: str, how: str) -> dict[str, Any]:
    """Write ``sweep.json``, ``table.md``, ``table.csv`` and (if a run finished) the figures.

    Returns the ``sweep.json`` record. The figures are ``rate_distortion.png`` and
    ``latent_maps.png`` (see :mod:`xae.sweep.figures`), and on data with known factors
    ``factor_structure.png`` (:mod:`xae.sweep.factor_figure`).
    """
    from xae.sweep import figures
    from xae.sweep.factor_figure import factor_structure

    top = best(results, metric, how)
    done = [r for r in results if r.ok]
    cfg = results[0].run.config
    record = {"kind": kind, "swept": keys, "preset": cfg.preset, "data": cfg.data.name,
              "metric": metric, "direction": how, "best": top.run.name if top else None,
              "runs_total": len(results), "runs_failed": len(results) - len(done),
              "runs": [_run_record(r, out) for r in results]}
    columns = metric_columns(results)
    write_text(out / "table.md", markdown(rows(results, keys, columns)) + "\n")
    write_text(out / "table.csv", _csv(rows(results, keys, columns, exact=True)))
    if done:
        figures.rate_distortion(results, keys, out / "rate_distortion.png")
        figures.latent_maps(results, keys, out / "latent_maps.png")
        factor_structure(results, keys, out / "factor_structure.png")
    write_json(out / SWEEP_REPORT, record)
    return record
