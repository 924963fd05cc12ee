"""Monitoring windows: lengths as text, and windows ending on step boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from governance.errors import InvalidInput
from governance.monitoring.windows import format_length, parse_length, window_ending

HOUR = timedelta(hours=1)


def test_lengths() -> None:
    assert parse_length("24h") == timedelta(hours=24)
    assert parse_length("7d") == timedelta(days=7)
    assert parse_length("30m") == timedelta(minutes=30)
    assert [format_length(parse_length(t)) for t in ("24h", "48h", "7d", "90m")] == [
        "24h",
        "2d",
        "7d",
        "90m",
    ]
    for bad in ("", "0h", "1w", "h", "-1h", "99999h"):
        with pytest.raises(InvalidInput):
            parse_length(bad)


def test_windows_end_on_the_next_step_and_slide_by_steps() -> None:
    now = datetime(2026, 12, 3, 6, 42, 17, tzinfo=UTC)
    window = window_ending(now, timedelta(hours=24), HOUR)
    assert window.end == datetime(2026, 12, 3, 7, tzinfo=UTC)
    assert window.start == datetime(2026, 12, 2, 7, tzinfo=UTC)
    assert window_ending(now + timedelta(minutes=10), timedelta(hours=24), HOUR) == window
    on_the_hour = window_ending(datetime(2026, 12, 3, 7, tzinfo=UTC), timedelta(hours=24), HOUR)
    assert on_the_hour.end == datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert len(window.buckets(HOUR)) == 24 and window.buckets(HOUR)[0].length == HOUR
