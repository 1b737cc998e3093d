"""Training in segments, for a time-to-quality curve and a wall-clock budget.

A run is trained by successive ``xae.train(..., resume=True)`` calls, each ending at a curve
point with a checkpoint: by steps (point i of P at i/P of the planned steps, via
``train.steps``) or, with a budget of M minutes, by training time (point i at i·M/P minutes,
via the trainer's ``train.max_minutes``, which counts the run's training time across resumes
and stops at a step boundary with a checkpoint). The cosine horizon stays the planned run
throughout, so a segmented run trains exactly as one uninterrupted call would. After each
segment ``measure`` evaluates the run as it stands; the points go to ``curve.jsonl`` in the
run folder as they come, so a killed run resumes with the points it has. Evaluation time is
not training time: the trainer's clock (``train_time_s``) runs only inside training steps.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import xae
from xae.config import Config, apply
from xae.data import Dataset

CURVE = "curve.jsonl"


@dataclass
class Plan:
    """The planned run's steps, the budget in minutes (0: none) and the curve points (0:
    none, one call to the end)."""

    steps: int
    minutes: float
    points: int

    @property
    def segments(self) -> int:
        return max(self.points, 1)

    def end(self, i: int) -> float:
        """Where segment ``i`` (1-based) ends: minutes of training, or steps."""
        if self.minutes:
            return self.minutes * i / self.segments
        return max(1, round(self.steps * i / self.segments))

    def segment(self, i: int) -> dict[str, object]:
        """The train.* keys that end segment ``i``."""
        if self.minutes:
            return {"train.steps": self.steps, "train.max_minutes": self.end(i)}
        return {"train.steps": int(self.end(i)), "train.max_minutes": 0.0}

    def first(self, points: list[dict[str, float]]) -> int | None:
        """The first segment still to train after the recorded ``points`` (a resumed run,
        perhaps with a larger budget), or None when the planned run is done."""
        if not points:
            return 1
        last = points[-1]
        if last["steps"] >= self.steps:
            return None
        done = last["train_s"] / 60 if self.minutes else last["steps"]
        return next((i for i in range(1, self.segments + 1) if self.end(i) > done), None)


def read_points(run: Path) -> list[dict[str, float]]:
    path = run / CURVE
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def trained(run: Path) -> dict[str, object]:
    """The run's metrics.json: steps, epochs, train_time_s (and ``stopped`` by the budget)."""
    return json.loads((run / "metrics.json").read_text())


def train_with_curve(cfg: Config, run: Path, data: Dataset, plan: Plan, resume: bool,
                     measure: Callable[[Path], dict[str, float]]) -> list[dict[str, float]]:
    """Train ``cfg`` into ``run`` segment by segment (continuing its checkpoint and its
    points with ``resume``) and return the curve's points."""
    points = read_points(run) if resume else []
    first = plan.first(points)
    if first is None:
        print(f"nothing to train: the run has its {len(points)} curve points (its planned "
              f"steps or its budget reached)")
        return points
    for i in range(first, plan.segments + 1):
        xae.train(apply(copy.deepcopy(cfg), plan.segment(i)), run, resume=resume or i > 1,
                  data=data)
        m = trained(run)
        if plan.points:
            point = {"train_s": m["train_time_s"], "steps": m["step"], "epochs": m["epochs"],
                     **measure(run)}
            points.append(point)
            with open(run / CURVE, "a") as f:
                f.write(json.dumps(point) + "\n")
            print(f"curve point {i}/{plan.points}: {point['train_s'] / 60:.2f} min, "
                  f"{m['step']} steps, NLL {point['nll_iw']:.2f}", flush=True)
        if m["step"] >= plan.steps and i < plan.segments:
            print(f"the planned run ended before the budget: {i} of {plan.points} points")
            break
    return points
