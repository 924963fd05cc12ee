"""Prediction traffic per model version, read from the monitoring rollups.

Every prediction (answered, refused or failed) has an audit record with its
outcome and latency; the monitoring job counts them per window and per step
(hour) inside it (metric `traffic`), so the traffic page and the dashboard read
those counts instead of scanning the log. The figures are as fresh as the job's
last run (`computed_at`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.monitoring.figures import TRAFFIC
from governance.monitoring.records import MonitoringRollup
from governance.monitoring.windows import Window


@dataclass
class Bucket:
    start: datetime
    requests: int = 0
    errors: int = 0
    p95_ms: float | None = None


@dataclass
class Series:
    """One model version's traffic over a window, in step-long buckets."""

    model_name: str
    model_version: int
    window: Window
    buckets: list[Bucket] = field(default_factory=list)
    requests: int = 0
    rows: int = 0
    errors: int = 0  # outcome "error": the appliance failed
    refused: int = 0  # "denied" or "rejected": the caller was refused
    p50_ms: float | None = None
    p95_ms: float | None = None
    computed_at: datetime | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def series(
    session: Session, windows: dict[tuple[str, int], Window], step: timedelta
) -> list[Series]:
    """Each version's traffic in its window, with the window's step buckets."""
    found = []
    for (name, version), window in sorted(windows.items()):
        whole = Series(name, version, window)
        _fill(whole, _rollups(session, name, version, window.start, window.end, window))
        buckets: dict[datetime, Bucket] = {}
        for rollup in _rollups(session, name, version, window.start, window.end, None):
            if rollup.window_end - rollup.window_start != step:
                continue
            bucket = buckets.setdefault(rollup.window_start, Bucket(rollup.window_start))
            _count(bucket, rollup)
        whole.buckets = [buckets.get(b.start, Bucket(b.start)) for b in window.buckets(step)]
        found.append(whole)
    return found


def since(session: Session, start: datetime, step: timedelta) -> list[Series]:
    """Each version's traffic summed over the step buckets starting at or after `start`."""
    stmt = select(MonitoringRollup).where(
        MonitoringRollup.metric == TRAFFIC, MonitoringRollup.window_start >= start
    )
    grouped: dict[tuple[str, int], list[MonitoringRollup]] = defaultdict(list)
    for rollup in session.scalars(stmt):
        if rollup.window_end - rollup.window_start == step:
            grouped[(rollup.model_name, rollup.model_version)].append(rollup)
    found = []
    for (name, version), rollups in sorted(grouped.items()):
        ends = [r.window_end for r in rollups]
        summed = Series(name, version, Window(start, max(ends)))
        for rollup in rollups:
            _add(summed, rollup)
        found.append(summed)
    return found


def totals(found: list[Series]) -> tuple[int, int]:
    """(requests, errors) over every series."""
    return sum(s.requests for s in found), sum(s.errors for s in found)


def _rollups(
    session: Session, name: str, version: int, start: datetime, end: datetime, exact: Window | None
) -> Iterable[MonitoringRollup]:
    stmt = select(MonitoringRollup).where(
        MonitoringRollup.model_name == name,
        MonitoringRollup.model_version == version,
        MonitoringRollup.metric == TRAFFIC,
        MonitoringRollup.window_start >= start,
        MonitoringRollup.window_end <= end,
    )
    if exact is not None:
        stmt = stmt.where(
            MonitoringRollup.window_start == exact.start, MonitoringRollup.window_end == exact.end
        )
    return session.scalars(stmt)


def _fill(whole: Series, rollups: Iterable[MonitoringRollup]) -> None:
    for rollup in rollups:
        whole.computed_at = rollup.computed_at
        if rollup.method == "latency_p50_ms":
            whole.p50_ms = rollup.value
        elif rollup.method == "latency_p95_ms":
            whole.p95_ms = rollup.value
        else:
            _add(whole, rollup)


def _add(whole: Series, rollup: MonitoringRollup) -> None:
    value = int(rollup.value or 0)
    if rollup.method in ("requests", "rows", "errors", "refused"):
        setattr(whole, rollup.method, getattr(whole, rollup.method) + value)


def _count(bucket: Bucket, rollup: MonitoringRollup) -> None:
    if rollup.method == "requests":
        bucket.requests = int(rollup.value or 0)
    elif rollup.method == "errors":
        bucket.errors = int(rollup.value or 0)
    elif rollup.method == "latency_p95_ms":
        bucket.p95_ms = rollup.value
