"""One-thread worker processes side by side: the benchmarks that train many small runs
(``disentanglement.py``, ``text_collapse.py``) hand each run to a pool of ``workers`` spawned
processes and print each result as it comes back."""
from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any


def run_jobs(work: Callable[[Any], dict[str, Any]], jobs: Iterable[Any], workers: int,
             report: Callable[[int, int, dict[str, Any]], None]) -> list[dict[str, Any]]:
    """``work(job)`` for every job in ``workers`` spawned processes (``work`` must be a
    module-level function of an importable module); ``report(done, total, result)`` after
    each. Returns the results in the order they finished."""
    jobs = list(jobs)
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        for future in as_completed([pool.submit(work, j) for j in jobs]):
            rows.append(future.result())
            report(len(rows), len(jobs), rows[-1])
    return rows


def names(ap: Any, text: str, table: Iterable[str], what: str) -> list[str]:
    """The comma-separated ``text`` as a list of names from ``table``; an argparse error
    naming the unknown ones."""
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in table]
    if unknown:
        ap.error(f"unknown {what} {unknown}; choose from {', '.join(table)}")
    return chosen


def workers_machine(workers: int) -> dict[str, Any]:
    """Print and return the machine's record for ``workers`` one-thread workers."""
    from describe import machine, machine_line

    mach = {**machine("cpu"), "threads": 1, "workers": workers}
    print(f"machine  {machine_line(mach)}; {workers} one-thread workers", flush=True)
    return mach
