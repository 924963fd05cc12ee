"""Rollup rows written directly, as the monitoring job would store them, for alert tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from governance.monitoring.records import WHOLE_MODEL, MonitoringRollup

START = datetime(2026, 3, 1, tzinfo=UTC)


def window(index: int, hours: int = 1) -> tuple[datetime, datetime]:
    """The index-th window of `hours` hours from START."""
    start = START + timedelta(hours=hours * index)
    return start, start + timedelta(hours=hours)


def write(
    session: Session,
    model: str,
    version: int,
    index: int,
    values: dict[str, float | None],
    metric: str = "drift",
    method: str = "psi",
    hours: int = 1,
    rows: int = 500,
) -> None:
    """One figure per feature in window `index` (WHOLE_MODEL for whole-model figures)."""
    start, end = window(index, hours)
    for feature, value in values.items():
        session.add(
            MonitoringRollup(
                model_name=model,
                model_version=version,
                window_start=start,
                window_end=end,
                feature=feature,
                metric=metric,
                method=method,
                value=value,
                rows=rows,
                computed_at=end,
                details={},
            )
        )


def whole(value: float | None) -> dict[str, float | None]:
    return {WHOLE_MODEL: value}
