"""The one source of "now" for the governed state (UTC, aware), replaceable in tests."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Current time in UTC with microseconds, timezone-aware."""
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """Canonical text form of a moment: UTC, microseconds, `Z` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
