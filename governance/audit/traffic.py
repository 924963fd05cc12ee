"""Prediction traffic per model and version, computed from the audit records.

Every prediction (answered, refused or failed) has a record of kind
"prediction" with its outcome, HTTP status and `details.latency_ms`, so the log
is also the source of the traffic figures: no second counter to drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.scope import visible_to
from governance.clock import isoformat

PREDICTION = "prediction"


@dataclass
class Bucket:
    start: datetime
    requests: int = 0
    errors: int = 0
    latencies: list[int] = field(default_factory=list)

    @property
    def p95_ms(self) -> int | None:
        return percentile(self.latencies, 95)


@dataclass
class Series:
    """One model version's traffic over a window, in equal time buckets."""

    model_name: str
    model_version: int | None
    buckets: list[Bucket]
    requests: int = 0
    errors: int = 0  # outcome "error": the appliance failed
    refused: int = 0  # "denied" or "rejected": the caller was refused
    latencies: list[int] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def p50_ms(self) -> int | None:
        return percentile(self.latencies, 50)

    @property
    def p95_ms(self) -> int | None:
        return percentile(self.latencies, 95)


def traffic(
    session: Session, actor: Actor, now: datetime, window: timedelta, buckets: int
) -> list[Series]:
    """Series per (model, version) of prediction records in [now - window, now), of
    the models `actor` may see."""
    start = now - window
    width = window / buckets
    found: dict[tuple[str, int | None], Series] = {}
    for at, name, version, outcome, details in _records(session, actor, start, now):
        key = (name or "?", version)
        if key not in found:
            found[key] = Series(
                key[0], version, [Bucket(start + width * i) for i in range(buckets)]
            )
        index = min(buckets - 1, int((_parse(at) - start) / width))
        _count(found[key], found[key].buckets[index], outcome, details)
    return [found[key] for key in sorted(found, key=lambda k: (k[0], k[1] or 0))]


def _records(
    session: Session, actor: Actor, start: datetime, end: datetime
) -> list[tuple[Any, ...]]:
    stmt = select(
        AuditRecord.at,
        AuditRecord.model_name,
        AuditRecord.model_version,
        AuditRecord.outcome,
        AuditRecord.details,
    ).where(
        AuditRecord.kind == PREDICTION,
        AuditRecord.at >= isoformat(start),
        AuditRecord.at < isoformat(end),
        *visible_to(actor),
    )
    return [tuple(row) for row in session.execute(stmt.execution_options(yield_per=5000))]


def _count(series: Series, bucket: Bucket, outcome: str, details: dict[str, Any] | None) -> None:
    series.requests += 1
    bucket.requests += 1
    if outcome == "error":
        series.errors += 1
        bucket.errors += 1
    elif outcome != "ok":
        series.refused += 1
    latency = (details or {}).get("latency_ms")
    if isinstance(latency, int) and not isinstance(latency, bool):
        series.latencies.append(latency)
        bucket.latencies.append(latency)


def totals(series: list[Series]) -> tuple[int, int]:
    """(requests, errors) over every series."""
    return sum(s.requests for s in series), sum(s.errors for s in series)


def percentile(values: list[int], pct: int) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, (len(ordered) * pct) // 100)]


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))
