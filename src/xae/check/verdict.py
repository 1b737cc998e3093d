"""PASS/FAIL against a stated tolerance: what every check prints after its table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Verdict:
    """One compared quantity: the measured ``value`` and the ``limit`` it is held to, from
    above (``value ≤ limit``) or, with ``at_least``, from below. A value that is not a number
    (NaN) fails either way."""

    quantity: str
    value: float
    limit: float
    at_least: bool = False

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    @property
    def bound(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.limit:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "value": self.value, "tolerance": self.bound,
                "passed": self.passed}


def verdict_lines(verdicts: list[Verdict], check: str) -> str:
    """One line per quantity (value, tolerance, PASS/FAIL), then the overall verdict."""
    width = max(len(v.quantity) for v in verdicts)
    lines = [f"  {v.quantity:<{width}}  {v.value:>10.4g}  {v.bound:<8}  "
             f"{'PASS' if v.passed else 'FAIL'}" for v in verdicts]
    passed = sum(v.passed for v in verdicts)
    overall = "PASS" if passed == len(verdicts) else "FAIL"
    lines.append(f"{check}: {overall} ({passed} of {len(verdicts)} within tolerance)")
    return "\n".join(lines)


def exit_status(verdicts: list[Verdict]) -> int:
    """0 when every quantity is within its tolerance, else 1."""
    return 0 if all(v.passed for v in verdicts) else 1
