"""How personal rows are sealed: subject rows one by one under their subject's key,
rows about nobody as one block under their model version's key of the day."""

from __future__ import annotations

import copy
import threading
import time

import pytest
from sqlalchemy import func, select, text

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditDataKey, AuditRecord
from governance.audit.service import AuditEvent, AuditLog, PersonalRow, row_key_ids
from governance.errors import IntegrityError
from server.container import Container


def _append(cofre: Container, subjects: list[str | None], version: int = 1) -> AuditRecord:
    rows = [PersonalRow(s, {"input": {"x": i}, "output": i % 2}) for i, s in enumerate(subjects)]
    event = AuditEvent(
        kind="prediction", actor=SYSTEM, model_name="m", model_version=version, rows=rows
    )
    with cofre.write() as session:
        seq = cofre.audit.append(session, event).seq
    with cofre.read() as session:
        record = session.get(AuditRecord, seq)
        assert record is not None
        return record


def _keys(cofre: Container) -> int:
    with cofre.read() as session:
        return int(session.scalar(select(func.count()).select_from(AuditDataKey)) or 0)


def test_rows_about_nobody_are_one_block_under_the_days_key(cofre: Container) -> None:
    first = _append(cofre, [None] * 100)
    keys = _keys(cofre)
    second = _append(cofre, [None, None])
    assert len(first.payload or []) == 1 and first.payload[0]["rows"] == 100  # type: ignore[index]
    assert _keys(cofre) == keys  # the day's key again: no key row per request
    assert row_key_ids(first) == [first.payload[0]["k"]] * 100  # type: ignore[index]
    assert row_key_ids(second)[0] == row_key_ids(first)[0]
    with cofre.read() as session:
        rows = cofre.audit.decrypt_payload(session, first)
        assert [r["input"]["x"] for r in rows] == list(range(100))
    assert _append(cofre, [None], version=2).payload[0]["k"] != row_key_ids(first)[0]  # type: ignore[index]


def test_mixed_rows_are_sealed_one_by_one(cofre: Container) -> None:
    record = _append(cofre, ["ana", None, "ana"])
    ids = row_key_ids(record)
    assert len(record.payload or []) == 3 and ids[0] == ids[2] != ids[1]
    with cofre.read() as session:
        rows = cofre.audit.decrypt_payload(session, record)
        assert [r["input"]["x"] for r in rows] == [0, 1, 2]


def test_a_block_bound_to_another_record_or_row_count_does_not_open(cofre: Container) -> None:
    block = _append(cofre, [None] * 3)
    other = _append(cofre, [None] * 3)
    with cofre.read() as session:
        moved = copy.copy(other)
        moved.payload = block.payload  # same key, another request id
        with pytest.raises(IntegrityError):
            cofre.audit.decrypt_payload(session, moved)
        recounted = copy.copy(block)
        recounted.payload = [dict(block.payload[0], rows=2)]  # type: ignore[index]
        with pytest.raises(IntegrityError):
            cofre.audit.decrypt_payload(session, recounted)


def test_a_days_key_is_shared_with_other_threads_only_once_committed(cofre: Container) -> None:
    """Rows sealed under a key whose transaction rolled back open with no key: another
    thread must not take a day's key from memory before it is committed (seen on
    PostgreSQL as feedback refused on rows 'erased' while nobody was)."""
    rows = [PersonalRow(None, {"input": {"x": 1}, "output": 0})]
    event = AuditEvent(kind="prediction", actor=SYSTEM, model_name="m", model_version=1, rows=rows)

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), cofre.write() as session:
        cofre.audit.append(session, event)
        assert cofre.audit._day_keys == {}  # made, not yet shared
        raise Abandoned
    assert cofre.audit._day_keys == {} and _keys(cofre) == 0
    with cofre.write() as session:
        cofre.audit.append(session, event)
        assert cofre.audit._day_keys == {}
    assert len(cofre.audit._day_keys) == 1 and _keys(cofre) == 1
    ((key_id, _),) = cofre.audit._day_keys.values()
    assert row_key_ids(_append(cofre, [None]))[0] == key_id


def test_two_processes_opening_one_days_key_at_once_seal_under_the_one_stored(
    cofre: Container,
) -> None:
    """Another process (its own AuditLog, its own memory) opens the same day's key while
    this one's insert is uncommitted: it waits, loses, and seals under the stored key.
    An INSERT's rowcount told it (wrongly) that its own key went in, and its rows were
    sealed under a key never stored: feedback on them was refused as 'erased'."""
    other = AuditLog(cofre.audit.keyring)
    rows = [PersonalRow(None, {"input": {"x": 1}, "output": 0})]
    event = AuditEvent(kind="prediction", actor=SYSTEM, model_name="m", model_version=1, rows=rows)
    seqs: dict[str, int] = {}

    def loser() -> None:
        with cofre.write() as session:
            seqs["other"] = other.append(session, event).seq

    with cofre.write() as session:
        seqs["first"] = cofre.audit.append(session, event).seq
        thread = threading.Thread(target=loser)
        thread.start()
        if session.get_bind().dialect.name == "postgresql":
            _until_a_backend_waits_for_a_lock(cofre)
    thread.join(timeout=30)
    with cofre.read() as session:
        first, second = (session.get(AuditRecord, seqs[k]) for k in ("first", "other"))
        assert first is not None and second is not None
        assert row_key_ids(second) == row_key_ids(first)
        assert _keys(cofre) == 1
        assert cofre.audit.decrypt_payload(session, second)[0]["input"] == {"x": 1}


def _until_a_backend_waits_for_a_lock(cofre: Container) -> None:
    deadline = time.monotonic() + 10
    with cofre.read() as session:
        while time.monotonic() < deadline:
            waiting = session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            )
            session.rollback()  # a new snapshot for the next look
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the other process never waited for the key's insert")
