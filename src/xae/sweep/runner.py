"""Run a sweep's configs as ``python -m xae train`` subprocesses, several at a time.

Each run is an ordinary run folder (resumable with ``xae train --resume``). A child runs in
its own process group with ``threads`` CPU threads and no progress bar; its output goes to a
log, ``<run>/train.log`` (or ``<sweep>/logs/<run>.log`` when the run left no folder). A failed
run is reported with its log, never skipped; Ctrl-C (or SIGTERM) ends every child.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable

from xae.errors import XaeError
from xae.fileio import write_text
from xae.runfiles import METRICS, TRAIN_LOG
from xae.sweep.grid import Run, config_difference
from xae.train import checkpoint
from xae.train.checkpoint import has_checkpoint, read_config

log = logging.getLogger(__name__)
KILL_GRACE_S = 10.0  # how long children get to stop after SIGINT before SIGKILL


@dataclasses.dataclass
class Job:
    """A run to start: fresh, or (``resume``) continued from its folder's checkpoint."""

    run: Run
    path: Path
    resume: bool = False


@dataclasses.dataclass
class Result:
    """How a run ended. ``status`` is ``done``, ``reused`` (finished earlier) or ``failed``."""

    run: Run
    path: Path
    status: str
    returncode: int | None = None
    seconds: float = 0.0
    log: Path | None = None
    metrics: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("done", "reused")

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the run's log, indented, for an error message."""
        if self.log is None or not self.log.is_file():
            return "    (no log)"
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join("    " + line for line in text) or "    (the log is empty)"


def cpu_cores() -> int:
    """Cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def gpu_count(device: str) -> int:
    """GPUs the runs can use: 0 on ``cpu``; an error on ``cuda`` when there are none."""
    if not device.startswith("cuda"):
        return 0
    import torch

    if not torch.cuda.is_available():
        raise XaeError("train.device is cuda but no CUDA device is available; use --device cpu")
    return torch.cuda.device_count()


def read_metrics(path: Path) -> dict[str, Any]:
    """A finished run's ``metrics.json``, checked (:func:`xae.train.checkpoint.read_metrics`)."""
    metrics = checkpoint.read_metrics(path)
    if metrics is None:
        raise XaeError(f"{path / METRICS} is missing; delete the run folder and run the sweep "
                       f"again with --resume")
    return metrics


def _check_same(run: Run, path: Path) -> None:
    diff = config_difference(run.config, read_config(path))
    if diff:
        raise XaeError(f"'{path}' holds a run with another config ({', '.join(diff[:3])} "
                       f"differ); resume with the flags that started this sweep, or choose "
                       f"another --out")


def plan(runs: list[Run], out: Path, resume: bool) -> tuple[list[Job], list[Result]]:
    """Split ``runs`` into jobs to start and (with ``resume``) runs already finished in ``out``.

    With ``resume``, a finished run (``metrics.json``) is reused, one with a checkpoint is
    continued, and a folder without a checkpoint (killed before its first) is started over.
    A reused or continued run must have the same config as planned.
    """
    jobs, reused = [], []
    for run in runs:
        path = out / run.name
        if resume and (path / METRICS).is_file():
            _check_same(run, path)
            reused.append(Result(run, path, "reused", 0, log=path / TRAIN_LOG,
                                 metrics=read_metrics(path)))
        elif resume and has_checkpoint(path):
            _check_same(run, path)
            jobs.append(Job(run, path, resume=True))
        else:
            if resume and path.is_dir():
                shutil.rmtree(path)
            jobs.append(Job(run, path))
    return jobs, reused


@dataclasses.dataclass
class _Child:
    job: Job
    proc: subprocess.Popen
    log: Path
    log_file: IO[bytes]
    config_file: Path | None
    slot: int
    t0: float


def _adopt_log(out: Path, job: Job) -> Path:
    """Where ``job`` logs: ``<run>/train.log`` once the run folder exists (taking over the
    ``<sweep>/logs/<run>.log`` of an earlier attempt), else that one."""
    early = out / "logs" / f"{job.run.name}.log"
    if not job.path.is_dir():
        return early
    if early.is_file():
        with open(job.path / TRAIN_LOG, "ab") as f:
            f.write(early.read_bytes())
        early.unlink()
        with contextlib.suppress(OSError):  # logs/ goes once it is empty
            early.parent.rmdir()
    return job.path / TRAIN_LOG


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Pool:
    """At most ``jobs`` ``xae train`` children at once (see the module docstring).

    Parameters
    ----------
    out : Path
        The sweep folder (for the logs of runs that leave no folder).
    jobs, threads : int
        Children at once, and CPU threads per child (``OMP_NUM_THREADS`` and
        ``train.threads``).
    gpus : int
        With more than one, child slot ``i`` sees only GPU ``i % gpus``.
    """

    def __init__(self, out: Path, jobs: int, threads: int, gpus: int = 0) -> None:
        if jobs < 1:
            raise XaeError(f"--jobs must be at least 1, got {jobs}")
        self.out, self.jobs, self.threads, self.gpus = out, jobs, threads, gpus
        self.children: list[_Child] = []
        self._sigterm: Any = None

    def __enter__(self) -> Pool:
        try:  # SIGTERM ends the children too, as Ctrl-C does
            self._sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        except ValueError:  # not the main thread
            self._sigterm = None
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)

    @property
    def free(self) -> bool:
        return len(self.children) < self.jobs

    @property
    def busy(self) -> bool:
        return bool(self.children)

    def _env(self, slot: int) -> dict[str, str]:
        src = str(Path(__file__).resolve().parents[2])  # the xae this process runs
        path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": str(self.threads)}
        if self.gpus > 1:
            env["CUDA_VISIBLE_DEVICES"] = str(slot % self.gpus)
        return env

    def submit(self, job: Job) -> None:
        """Start ``job`` (the caller keeps to :attr:`free`)."""
        slot = min(set(range(self.jobs)) - {c.slot for c in self.children})
        cmd = [sys.executable, "-m", "xae", "train", "--no-progress"]
        config_file = None
        logfile = _adopt_log(self.out, job)
        if job.resume:
            cmd += ["--resume", str(job.path), "--set", f"train.threads={self.threads}"]
        else:
            cfg = dataclasses.replace(job.run.config, train=dataclasses.replace(
                job.run.config.train, threads=self.threads))
            fd, name = tempfile.mkstemp(prefix="xae-sweep-", suffix=".json")
            os.close(fd)
            config_file = Path(name)
            write_text(config_file, cfg.to_json())
            cmd += ["--config", str(config_file), "--out", str(job.path)]
        logfile.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(logfile, "ab")
        log_file.write(f"$ {' '.join(cmd)}\n".encode())
        log_file.flush()
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=self._env(slot),
                                start_new_session=True)
        self.children.append(_Child(job, proc, logfile, log_file, config_file, slot,
                                    time.monotonic()))

    def wait(self, poll_s: float = 0.1, timeout: float | None = None) -> list[Result]:
        """Block until at least one child ends (or ``timeout`` seconds pass); return the
        results of those that ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.children:
            ended = [c for c in self.children if c.proc.poll() is not None]
            if ended:
                self.children = [c for c in self.children if c not in ended]
                return [self._result(c) for c in ended]
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(poll_s)
        return []

    def _result(self, child: _Child) -> Result:
        child.log_file.close()
        if child.config_file is not None:
            child.config_file.unlink(missing_ok=True)
        job, logfile = child.job, _adopt_log(self.out, child.job)
        rc, seconds = child.proc.returncode, time.monotonic() - child.t0
        done = rc == 0 and (job.path / METRICS).is_file()
        return Result(job.run, job.path, "done" if done else "failed", rc, seconds, logfile,
                      read_metrics(job.path) if done else None)

    def kill(self) -> None:
        """Stop every child: SIGINT to its process group, SIGKILL after a grace period."""
        running = [c for c in self.children if c.proc.poll() is None]  # (poll reaps the rest)
        for c in running:
            _signal_group(c.proc, signal.SIGINT)
        deadline = time.monotonic() + KILL_GRACE_S
        for c in self.children:
            try:
                c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(c.proc, signal.SIGKILL)
                c.proc.wait()
            c.log_file.close()
            if c.config_file is not None:
                c.config_file.unlink(missing_ok=True)
            _adopt_log(self.out, c.job)
        if running:
            log.warning("stopped %d unfinished run(s); `xae sweep --resume` continues them",
                        len(running))
        self.children = []


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _log_result(result: Result) -> None:
    log.info("run %s: %s (exit %s) in %.1f s", result.run.name, result.status,
             result.returncode, result.seconds)


def run_all(jobs: list[Job], pool: Pool,
            notify: Callable[[Result], None] | None = None) -> list[Result]:
    """Run every job through ``pool`` (``pool.jobs`` at once); results in the jobs' order."""
    queue, results = list(jobs), {}
    while queue or pool.busy:
        while queue and pool.free:
            pool.submit(queue.pop(0))
        for result in pool.wait():
            results[result.run.name] = result
            (notify or _log_result)(result)
    return [results[j.run.name] for j in jobs]
