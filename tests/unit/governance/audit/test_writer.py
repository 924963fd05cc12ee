"""Group commit: concurrent appends share transactions, stay gapless, fail closed."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

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


def test_one_event_the_database_refuses_does_not_fail_its_batch(cofre: Container) -> None:
    """Hardening item 7: one unstorable event rolled back the whole shared batch,
    so unrelated, legitimate predictions answered 503."""
    from concurrent.futures import Future

    writer = AuditWriter(cofre.sessions, cofre.audit)
    bad = AuditEvent(kind="prediction", actor=SYSTEM, details={"latency": 0.5})  # floats refused
    batch = [(_event(1), Future()), (bad, Future()), (_event(2), Future())]
    writer._commit(batch)  # type: ignore[arg-type]
    good = [done.result(timeout=5) for index, (_, done) in enumerate(batch) if index != 1]
    assert [a.seq for a in good] == [good[0].seq, good[0].seq + 1]
    assert isinstance(batch[1][1].exception(timeout=5), AuditUnavailable)
    with cofre.read() as session:
        assert cofre.audit.verify(session).ok


def test_fields_are_cut_to_their_columns_before_the_database(cofre: Container) -> None:
    writer = AuditWriter(cofre.sessions, cofre.audit)
    long = AuditEvent(kind="prediction", actor=SYSTEM, model_name="m" * 10_000, purpose="p" * 999)
    seq = writer.append(long).seq
    with cofre.read() as session:
        from governance.audit.records import AuditRecord

        record = session.get(AuditRecord, seq)
        assert record is not None and len(record.model_name or "") == 128
        assert len(record.purpose or "") == 256 and cofre.audit.verify(session).ok


def _anonymous(index: int) -> AuditEvent:
    """A prediction about no one in particular (its rows share the day's key)."""
    row = PersonalRow(None, {"x": index, "p": index / 3})
    return replace(_event(index), model_version=1, details=None, rows=[row])


def test_rows_about_no_one_are_sealed_before_the_lock_once_the_day_key_is_known(
    cofre: Container,
) -> None:
    """The writer chains under the database's write lock, which every worker waits for;
    sealing and the canonical form are done before it wherever no key must be read."""
    from governance.audit.service import PreparedRecord

    writer = AuditWriter(cofre.sessions, cofre.audit)
    assert cofre.audit.prepare(_anonymous(0)) is None  # the day's key: not known yet
    writer.append(_anonymous(0))  # made and committed in the writer's transaction
    assert isinstance(cofre.audit.prepare(_anonymous(1)), PreparedRecord)
    assert cofre.audit.prepare(_event(1)) is None  # a subject's key is in the database
    no_rows = AuditEvent(kind="key.created", actor=SYSTEM, details={"n": 1})
    assert isinstance(cofre.audit.prepare(no_rows), PreparedRecord)
    with ThreadPoolExecutor(max_workers=8) as pool:
        appended = list(pool.map(lambda i: writer.append(_anonymous(i)), range(1, 60)))
    with cofre.read() as session:
        from governance.audit.records import AuditRecord

        assert cofre.audit.verify(session).ok
        for done, index in zip(appended, range(1, 60), strict=True):
            record = session.get(AuditRecord, done.seq)
            assert record is not None and record.hash == done.hash
            assert cofre.audit.decrypt_payload(session, record) == [{"x": index, "p": index / 3}]


def test_an_event_that_cannot_be_prepared_fails_its_caller_alone(cofre: Container) -> None:
    writer = AuditWriter(cofre.sessions, cofre.audit)
    with pytest.raises(AuditUnavailable):
        writer.append(AuditEvent(kind="prediction", actor=SYSTEM, details={"latency": 0.5}))
    assert writer.append(_anonymous(1)).seq > 0
