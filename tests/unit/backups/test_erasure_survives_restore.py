"""Erasure survives restores, on SQLite and PostgreSQL: a backup taken before an
erasure, restored, keeps the erased rows unreadable while its chain verifies; the
restore drill re-applies the journal too; a broken chain is marked in the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.audit.service import AuditLog
from governance.db import make_engine, make_session_factory, read_session
from governance.subjects.caller import Caller
from server.cli import cli
from server.container import Container
from tests.support.databases import empty_databases
from tests.support.publishing import publish
from tests.support.scoring import IRIS_ROW, rows_of, score


def _restored_rows(url: str, audit: AuditLog, request_id: str) -> tuple[list[Any], bool]:
    engine = make_engine(url)
    try:
        with read_session(make_session_factory(engine)) as session:
            record = session.scalars(
                select(AuditRecord).where(
                    AuditRecord.request_id == request_id, AuditRecord.payload.is_not(None)
                )
            ).one()
            return audit.decrypt_payload(session, record), audit.verify(session).ok
    finally:
        engine.dispose()


@pytest.fixture
def target(database_url: str, request: pytest.FixtureRequest) -> Any:
    """Restore targets: None (a file in the new home) for SQLite, else empty databases."""
    if database_url.startswith("sqlite"):
        yield lambda: None
        return
    with empty_databases(request.getfixturevalue("postgres_server")) as make:
        yield make


def test_a_restored_older_backup_keeps_the_erasure(
    cofre: Container, tmp_path: Path, target: Any
) -> None:
    publish(cofre, "iris", aliases=["production"])
    erased_later = score(cofre, ["ana", "bruno"])
    entry = cofre.backups.run(SYSTEM)  # taken before the erasure
    cofre.subjects.erase(Caller(SYSTEM), "ana", "request 9")
    rescored = score(cofre, ["ana"])  # a new epoch: must survive the next restore
    newer = cofre.backups.run(SYSTEM)

    report = cofre.backups.restore(entry.id, tmp_path / "old", SYSTEM, target())
    assert report.erasures_reapplied == 1
    rows, verifies = _restored_rows(report.database_url, cofre.audit, erased_later)
    assert rows[0] == {"erased": True} and rows[1]["input"] == IRIS_ROW
    assert verifies

    report = cofre.backups.restore(newer.id, tmp_path / "new", SYSTEM, target())
    assert report.erasures_reapplied == 0  # destroyed in this backup already
    rows, verifies = _restored_rows(report.database_url, cofre.audit, rescored)
    assert rows[0]["input"] == IRIS_ROW and verifies
    assert rows_of(cofre, erased_later)[0] == {"erased": True}


def test_the_drill_reapplies_the_journal(cofre: Container) -> None:
    publish(cofre, "iris", aliases=["production"])
    score(cofre, ["ana"])
    cofre.backups.run(SYSTEM)
    cofre.subjects.erase(Caller(SYSTEM), "ana", "request 10")
    report = cofre.backups.drill(SYSTEM)
    assert report.erasures_reapplied == 1


def test_a_backup_of_a_broken_chain_is_marked(
    cofre: Container, overrides: dict[str, Any], app: Any
) -> None:
    publish(cofre, "iris", aliases=["production"])
    score(cofre, ["ana"])
    with cofre.engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET endpoint = 'forged' WHERE seq = 2"))
    entry = cofre.backups.run(SYSTEM)
    manifest = entry.state["manifest"]
    assert manifest["audit_chain_ok"] is False
    assert manifest["audit_chain_problem"].startswith("record 2:")
    env = {
        f"COFRE_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in overrides.items()
    }
    listed = CliRunner(env=env).invoke(cli, ["backup", "list"])
    assert listed.exit_code == 0 and "chain=BROKEN" in listed.output
