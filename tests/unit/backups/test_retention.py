"""Retention keeps the newest of each recent day, week and month, and the newest verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backups.retention import Candidate, Policy, to_keep

START = datetime(2026, 3, 31, 2, 0, tzinfo=UTC)


def _daily(days: int, verified: set[int] | None = None) -> list[Candidate]:
    return [
        Candidate(f"b{i:03d}", START - timedelta(days=i), i in (verified or set()))
        for i in range(days)
    ]


def test_daily_weekly_monthly() -> None:
    backups = _daily(100, verified={0})
    keep = to_keep(backups, Policy(daily=3, weekly=2, monthly=2))
    # three newest days; newest of this ISO week (b000) and the week before (b001,
    # since 2026-03-30 is a Monday); newest of March (b000) and February (b031).
    assert keep == {"b000", "b001", "b002", "b031"}


def test_the_newest_verified_backup_survives_any_policy() -> None:
    backups = _daily(10, verified={7})
    assert to_keep(backups, Policy(0, 0, 0)) == {"b007"}
    assert "b007" in to_keep(backups, Policy(daily=2, weekly=0, monthly=0))


def test_several_backups_in_one_day_keep_the_newest() -> None:
    backups = [Candidate(f"h{h}", START + timedelta(hours=h), False) for h in range(5)]
    assert to_keep(backups, Policy(daily=1, weekly=0, monthly=0)) == {"h4"}


def test_the_newest_drilled_backup_survives_beside_the_newest_verified() -> None:
    """Issue 14.16: prune deleted the only backup that had passed a drill, keeping an
    undrilled newer one."""
    backups = [
        Candidate("new", START, True, drilled=False),
        Candidate("drilled", START - timedelta(hours=1), True, drilled=True),
        Candidate("old", START - timedelta(hours=2), True, drilled=True),
    ]
    assert to_keep(backups, Policy(daily=1, weekly=0, monthly=0)) == {"new", "drilled"}
    assert to_keep(backups, Policy(0, 0, 0)) == {"new", "drilled"}
