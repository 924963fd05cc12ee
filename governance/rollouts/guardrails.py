"""Guardrail rules (`error_rate<0.05`, `p99_ms<300`, ...) and the check that trips them.

A rule bounds one figure of the candidate; the rollout is aborted the first time a
figure is over its bound once the candidate has answered `min_requests` requests
(a bound checked on three requests would trip on the first unlucky one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from governance.errors import FieldError, InvalidInput

# metric -> what it bounds
METRICS = {
    "error_rate": "share of the candidate's requests that failed",
    "p99_ms": "the candidate's 99th percentile latency, milliseconds",
    "disagreement": "share of rows where the candidate's output differs from the champion's",
    "drift": "largest drift statistic (PSI) of the candidate's inputs, from monitoring rollups",
}
_RULE = re.compile(r"^\s*([a-z0-9_]+)\s*<\s*([0-9]*\.?[0-9]+)\s*$")


@dataclass(frozen=True)
class Guardrail:
    metric: str
    limit: float

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "limit": self.limit}

    def __str__(self) -> str:
        return f"{self.metric}<{self.limit:g}"


def parse(rule: str) -> Guardrail:
    """`METRIC<LIMIT`, METRIC one of METRICS."""
    match = _RULE.match(rule)
    if not match or match.group(1) not in METRICS:
        raise InvalidInput(
            "a guardrail reads METRIC<LIMIT",
            [FieldError("guardrails", f"METRIC one of {', '.join(METRICS)}; e.g. error_rate<0.05")],
        )
    return Guardrail(match.group(1), float(match.group(2)))


def from_dicts(items: list[dict[str, Any]]) -> list[Guardrail]:
    return [Guardrail(str(item["metric"]), float(item["limit"])) for item in items]


def breached(
    rules: list[Guardrail], candidate: dict[str, Any], min_requests: int
) -> tuple[Guardrail, float] | None:
    """The first rule the candidate's figures break, with the figure; None if none."""
    if candidate.get("requests", 0) < min_requests:
        return None
    for rule in rules:
        value = candidate.get(rule.metric)
        if value is not None and value > rule.limit:
            return rule, float(value)
    return None
