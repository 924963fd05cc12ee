"""Every kind of tampering with the audit log is detected by `cofre audit verify`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from governance.accounts.actor import SYSTEM
from governance.audit.chain import fields_of, record_hash
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent, PersonalRow
from server.cli import cli
from server.container import Container

RECORDS = 6


@pytest.fixture
def log(cofre: Container) -> Container:
    """A log with RECORDS events after init's own (user created) record."""
    with cofre.write() as session:
        head, _ = cofre.audit.head(session)
        for index in range(RECORDS - head):
            cofre.audit.append(
                session,
                AuditEvent(
                    kind="prediction",
                    actor=SYSTEM,
                    endpoint="native",
                    model_name="m",
                    model_version=1,
                    details={"rows": 1, "n": index},
                    rows=[PersonalRow(f"subject-{index}", {"input": {"x": index}})],
                ),
            )
    return cofre


def _verify(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["audit", "verify", *args])
    return result.exit_code, result.output


def _sql(cofre: Container, *statements: str, **params: object) -> None:
    with cofre.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), params)


def _checkpoint(runner: CliRunner, tmp_path: Path) -> Path:
    out = tmp_path / "checkpoint.json"
    result = runner.invoke(cli, ["audit", "checkpoint", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_intact_log_verifies(log: Container, runner: CliRunner) -> None:
    code, output = _verify(runner)
    assert code == 0, output
    assert f"OK: records 1..{RECORDS} verified" in output


def test_edited_field_is_detected(log: Container, runner: CliRunner) -> None:
    _sql(log, "UPDATE audit_records SET outcome = 'denied' WHERE seq = 3")
    code, output = _verify(runner)
    assert code == 1
    assert "FAILED at record 3" in output and "edited" in output


def test_deleted_record_is_detected(log: Container, runner: CliRunner) -> None:
    _sql(log, "DELETE FROM audit_records WHERE seq = 3")
    code, output = _verify(runner)
    assert code == 1
    assert "FAILED at record 4" in output and "gap" in output


def test_swapped_records_are_detected(log: Container, runner: CliRunner) -> None:
    _sql(
        log,
        "UPDATE audit_records SET seq = -1 WHERE seq = 3",
        "UPDATE audit_records SET seq = 3 WHERE seq = 4",
        "UPDATE audit_records SET seq = 4 WHERE seq = -1",
    )
    code, output = _verify(runner)
    assert code == 1
    assert "FAILED at record 3" in output


def test_inserted_record_is_detected(log: Container, runner: CliRunner) -> None:
    with log.write() as session:
        before = session.get(AuditRecord, 2)
        assert before is not None
        forged = AuditRecord(
            **{**fields_of(before), "seq": 3, "prev_hash": before.hash, "request_id": "forged"}
        )
        forged.hash = record_hash(fields_of(forged))
    for seq in range(RECORDS, 2, -1):  # make room, highest first
        _sql(log, "UPDATE audit_records SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)
    with log.write() as session:
        session.add(forged)
    code, output = _verify(runner)
    assert code == 1
    assert "FAILED at record 4" in output


def test_truncated_tail_needs_and_gets_the_checkpoint(
    log: Container, runner: CliRunner, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(runner, tmp_path)
    with log.read() as session:
        previous = session.get(AuditRecord, RECORDS - 1)
        assert previous is not None
        prev_hash = previous.hash
    # A careful attacker deletes the tail and rewinds the head to match.
    _sql(
        log,
        f"DELETE FROM audit_records WHERE seq = {RECORDS}",
        "UPDATE audit_head SET seq = :seq, hash = :hash",
        seq=RECORDS - 1,
        hash=prev_hash,
    )
    assert _verify(runner)[0] == 0  # without outside evidence the shorter log is consistent
    code, output = _verify(runner, "--checkpoint", str(checkpoint))
    assert code == 1
    assert "truncated" in output


def test_rewritten_tail_is_caught_by_the_checkpoint(
    log: Container, runner: CliRunner, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(runner, tmp_path)
    with log.write() as session:
        last = session.get(AuditRecord, RECORDS)
        assert last is not None
        last.outcome = "rejected"
        last.hash = record_hash(fields_of(last))
        session.execute(text("UPDATE audit_head SET hash = :hash"), {"hash": last.hash})
    assert _verify(runner)[0] == 0
    code, output = _verify(runner, "--checkpoint", str(checkpoint))
    assert code == 1
    assert f"FAILED at record {RECORDS}" in output and "rewritten" in output


def test_forged_checkpoint_is_refused(log: Container, runner: CliRunner, tmp_path: Path) -> None:
    checkpoint = _checkpoint(runner, tmp_path)
    data = json.loads(checkpoint.read_text())
    data["seq"] = 2
    checkpoint.write_text(json.dumps(data))
    code, output = _verify(runner, "--checkpoint", str(checkpoint))
    assert code == 1
    assert "signature is not valid" in output


def test_erased_subject_key_leaves_chain_verifiable(log: Container, runner: CliRunner) -> None:
    _sql(log, "UPDATE audit_data_keys SET wrapped = NULL, kek_id = NULL, pseudonym = NULL")
    assert _verify(runner)[0] == 0
    with log.read() as session:
        record = session.get(AuditRecord, RECORDS)
        assert record is not None
        assert log.audit.decrypt_payload(session, record) == [{"erased": True}]
