"""Group commit: concurrent appends share transactions, stay gapless, fail closed."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event

from governance.accounts.actor import SYSTEM
from governance.audit.service import AuditEvent, PersonalRow
from governance.audit.writer import AuditWriter
from governance.errors import AuditUnavailable
from server.container import Container


def _event(index: int) -> AuditEvent:
    return AuditEvent(
        kind="prediction",
        actor=SYSTEM,
        endpoint="native",
        model_name="m",
        details={"n": index},
        rows=[PersonalRow(f"s{index % 3}", {"x": index})],
    )


def test_concurrent_appends_are_gapless_and_batched(cofre: Container) -> None:
    writer = AuditWriter(cofre.sessions, cofre.audit)
    with cofre.read() as session:
        start = cofre.audit.head(session)[0]
    commits: list[int] = []
    event.listen(cofre.engine, "commit", lambda _conn: commits.append(1))
    with ThreadPoolExecutor(max_workers=16) as pool:
        appended = list(pool.map(lambda i: writer.append(_event(i)), range(200)))
    assert len(commits) < 200  # several records shared a transaction (group commit)
    assert sorted(a.seq for a in appended) == list(range(start + 1, start + 201))
    with cofre.read() as session:
        assert cofre.audit.verify(session).ok
        assert cofre.audit.head(session) == (start + 200, max(appended, key=lambda a: a.seq).hash)


def test_a_failed_batch_fails_every_caller(cofre: Container, overrides: dict) -> None:
    if cofre.engine.dialect.name != "sqlite":
        pytest.skip("the lock is taken with SQLite's own client here")
    writer = AuditWriter(cofre.sessions, cofre.audit, wait_seconds=30)
    writer.append(_event(0))  # thread running
    locker = sqlite3.connect(
        cofre.settings.database_url.removeprefix("sqlite:///"), isolation_level=None, timeout=0
    )
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(AuditUnavailable):
            writer.append(_event(1))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert writer.append(_event(2)).seq > 0  # the writer thread survived
