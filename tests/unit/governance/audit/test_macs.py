"""The audit MACs: logs written before them are adopted once, by the `cofre init` that
migrates them; afterwards every append carries a MAC and nothing re-adopts a head."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import select, text

from governance.accounts.actor import SYSTEM
from governance.audit.chain import GENESIS, HASHED_FIELDS, record_hash
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent
from governance.errors import AuditUnavailable
from governance.migrations import alembic_config
from server import create_app
from server.container import Container
from server.setup import initialise
from tests.conftest import ADMIN_PASSWORD, services_of

LEGACY = 4
SEALS = "0310_audit_seals"


@pytest.fixture
def legacy(overrides: dict[str, Any]) -> Iterator[Container]:
    """An appliance whose database is at every revision but the MACs', with a log of
    LEGACY records and a checkpoint at record 2 written the old way."""
    flask_app: Flask = create_app(overrides)
    container = services_of(flask_app)
    container.settings.home.mkdir(parents=True, exist_ok=True)
    container.keyring.ensure()
    config = alembic_config(container.engine)
    for head in ScriptDirectory.from_config(config).get_heads():
        if head != SEALS:
            command.upgrade(config, head)
    prev, hashes = GENESIS, {}
    with container.engine.begin() as connection:
        for seq in range(1, LEGACY + 1):
            fields: dict[str, Any] = dict.fromkeys(HASHED_FIELDS)
            fields |= {"seq": seq, "at": "2026-01-01T00:00:00Z", "request_id": f"r{seq}"}
            fields |= {"kind": "test.event", "outcome": "ok", "status": 0, "endpoint": "cli"}
            fields |= {"actor_type": "system", "actor_id": "system", "actor_role": "admin"}
            fields["prev_hash"] = prev
            prev = record_hash(fields)
            columns = ", ".join(fields) + ", hash"
            values = ", ".join(f":{name}" for name in fields) + ", :hash"
            connection.execute(
                text(f"INSERT INTO audit_records ({columns}) VALUES ({values})"),
                fields | {"hash": prev},
            )
            connection.execute(
                text("UPDATE audit_head SET seq = :seq, hash = :hash"), {"seq": seq, "hash": prev}
            )
            hashes[seq] = prev
    with container.write() as session:
        container.audit.sign_checkpoint(session, head=(2, hashes[2]))
    yield container
    container.close()


def test_a_log_from_before_macs_is_adopted_by_the_init_that_migrates_it(
    legacy: Container, overrides: dict[str, Any]
) -> None:
    changes, _ = initialise(legacy, SYSTEM, "admin", ADMIN_PASSWORD)
    assert any(f"audit head at record {LEGACY}" in line for line in changes), changes
    with legacy.write() as session:
        legacy.audit.append(session, AuditEvent(kind="test.event", actor=SYSTEM))
    with legacy.read() as session:
        report = legacy.audit.verify(session)
        macs = {r.seq: r.mac for r in session.scalars(select(AuditRecord))}
    assert report.ok, report
    assert all(macs[seq] is None for seq in range(1, LEGACY + 1))  # written before MACs
    assert all(macs[seq] for seq in macs if seq > LEGACY)
    again, _ = initialise(legacy, SYSTEM, "admin", ADMIN_PASSWORD)
    assert not any("audit head" in line for line in again)


def test_init_adopts_only_once_so_stripped_macs_stay_detected(legacy: Container) -> None:
    initialise(legacy, SYSTEM, "admin", ADMIN_PASSWORD)
    with legacy.engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET mac = NULL"))
        connection.execute(text("UPDATE audit_head SET mac = NULL"))
    initialise(legacy, SYSTEM, "admin", ADMIN_PASSWORD)  # a redeploy re-runs init
    with legacy.read() as session:
        assert not legacy.audit.verify(session).ok
    with pytest.raises(AuditUnavailable), legacy.write() as session:
        legacy.audit.append(session, AuditEvent(kind="test.event", actor=SYSTEM))


def test_a_fresh_appliance_verifies_from_its_first_record(cofre: Container) -> None:
    with cofre.read() as session:
        report = cofre.audit.verify(session)
        assert report.ok and report.last_seq
        assert all(r.mac for r in session.scalars(select(AuditRecord)))
