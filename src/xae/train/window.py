"""The log window: running sums of whatever a model logs between two lines of metrics.jsonl,
kept in the checkpoint so that a resumed run's log matches an uninterrupted one."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from xae.outputs import LossOutput


@dataclass
class Window:
    """Running sums of the logged values between two log lines (kept in the checkpoint so
    resumed logs match): whatever loss terms, metrics and losses the model returns."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # steps that logged each value
    n: int = 0
    codes: torch.Tensor | None = None  # (S, K) code counts of a discrete bottleneck
    t0: float = field(default_factory=time.perf_counter)

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        self.n += 1

    def add_codes(self, counts: torch.Tensor) -> None:
        self.codes = counts if self.codes is None else self.codes + counts

    def state(self) -> dict[str, object]:
        return {"sums": dict(self.sums), "counts": dict(self.counts), "n": self.n,
                "codes": self.codes}

    @classmethod
    def from_state(cls, w: dict, device: torch.device) -> "Window":
        sums = w.get("sums")
        if sums is None:  # a checkpoint of the fixed-term layout
            sums = {k: w[k] for k in ("loss", "distortion", "rate")}
            if w.get("ess"):
                sums["ess"] = w["ess"]
        codes = w.get("codes")
        counts = w.get("counts") or {k: int(w["n"]) for k in sums}
        return cls(dict(sums), dict(counts), int(w["n"]),
                   codes.to(device) if codes is not None else None)


def logged_values(out: LossOutput) -> dict[str, torch.Tensor]:
    """The batch means a log line shows, by name: the loss, the totals of distortion and
    rate, every named term, every metric, and each other optimizer's loss
    (``<optimizer>_loss``)."""
    values = {"loss": out.loss}
    for total in ("distortion", "rate"):  # a term of that name is the whole total already
        t = out.terms.get(total)
        values[total] = (t.value if t is not None else getattr(out, total)).mean()
    values.update({name: t.value.mean() for name, t in out.terms.items() if name not in values})
    values.update({name: m.mean() for name, m in out.metrics.items()})
    values.update({f"{name}_loss": v for name, v in out.losses.items()})
    return values
