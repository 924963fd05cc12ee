"""The scheduler's parts: cron parsing, recorded runs with retries, the single-instance lock,
and the advisory backups check on /readyz."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from governance.errors import CofreError, InvalidInput
from server.container import Container
from server.jobs import parse_cron, run_recorded
from server.scheduler import AdvisoryLock, FileLock
from tests.support.readiness import readyz

MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("30 3 * * 0", datetime(2026, 11, 29, 3, 30, tzinfo=UTC)),  # 0 = Sunday, as in crontab
        ("30 3 * * 7", datetime(2026, 11, 29, 3, 30, tzinfo=UTC)),
        ("0 9 * * 1-5", datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        ("0 9 * * 0-2", datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        ("0 2 * * *", datetime(2026, 11, 24, 2, 0, tzinfo=UTC)),
        ("*/20 * * * * *", datetime(2026, 11, 23, 12, 0, 20, tzinfo=UTC)),
    ],
)
def test_cron_is_crontab(expression: str, expected: datetime) -> None:
    assert parse_cron(expression).get_next_fire_time(None, MONDAY.replace(second=1)) == expected


@pytest.mark.parametrize("expression", ["every day", "61 * * * *", "* * * *"])
def test_bad_cron_is_refused(expression: str) -> None:
    with pytest.raises(InvalidInput):
        parse_cron(expression)


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return overrides | {"job_retries": 2, "job_retry_delay_seconds": 0}


def _runs(cofre: Container) -> list[tuple[str, str, int, str]]:
    with cofre.read() as session:
        return [(r.job, r.outcome, r.attempts, r.message) for r in cofre.jobs.recent(session)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failing_job_is_retried_recorded_and_never_raises(app: Flask, cofre: Container) -> None:
    calls: list[int] = []

    def broken(_: Container) -> str:
        calls.append(1)
        raise CofreError("the disk is full")

    end = run_recorded(app, "backup", broken, scheduled=True)
    assert (end.outcome, end.attempts, len(calls)) == ("failed", 3, 3)
    assert _runs(cofre) == [("backup", "failed", 3, "the disk is full")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_job_that_recovers_on_retry_is_ok(app: Flask, cofre: Container) -> None:
    calls: list[int] = []

    def flaky(_: Container) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("temporary")
        return "done"

    assert run_recorded(app, "restore-drill", flaky).outcome == "ok"
    assert _runs(cofre) == [("restore-drill", "ok", 2, "done")]


def test_file_lock_is_exclusive(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "s.lock"), FileLock(tmp_path / "s.lock")
    assert first.try_acquire() and not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


@pytest.mark.postgres
def test_advisory_lock_is_exclusive(postgres_url: str) -> None:
    first, second = AdvisoryLock(postgres_url), AdvisoryLock(postgres_url)
    try:
        assert first.try_acquire() and not second.try_acquire()
        assert first.held()
        first.release()
        assert second.try_acquire()
    finally:
        first.release()
        second.release()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failed_backup_shows_on_readyz_without_flipping_it(app: Flask, cofre: Container) -> None:
    client = app.test_client()
    before = readyz(client, cofre).get_json()["checks"]["backups"]
    assert before["ok"] and "no backup has run yet" in before["detail"]

    def broken(_: Container) -> str:
        raise CofreError("pg_dump failed: permission denied")

    run_recorded(app, "backup", broken)
    response = readyz(client, cofre)
    check = response.get_json()["checks"]["backups"]
    assert response.status_code == 200
    assert check["ok"] is False and check["advisory"] is True
    assert "last backup FAILED" in check["detail"] and "permission denied" in check["detail"]


def test_only_the_scheduler_module_imports_apschedulers_schedulers() -> None:
    """import-linter cannot forbid a subpackage of an outside package: read the sources."""
    import server

    root = Path(server.__file__).parent
    importing = sorted(
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if "apscheduler.schedulers" in path.read_text()
    )
    assert importing == ["server/scheduler.py"]
