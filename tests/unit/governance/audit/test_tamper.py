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
from governance.errors import AuditUnavailable
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


def _rewind_head_to(cofre: Container, seq: int) -> None:
    """A careful attacker's truncation: the tail deleted, the head moved back onto the
    record before it, with the MAC that record was committed with."""
    _sql(
        cofre,
        "DELETE FROM audit_records WHERE seq > :seq",
        "UPDATE audit_head SET seq = :seq, "
        "hash = (SELECT hash FROM audit_records WHERE seq = :seq), "
        "mac = (SELECT mac FROM audit_records WHERE seq = :seq)",
        seq=seq,
    )


def _forge_append(cofre: Container) -> int:
    """What someone who can write the database but holds no key can do: a record with
    a correct hash after the head, and the head moved onto it."""
    with cofre.write() as session:
        head_seq, head_hash = cofre.audit.head(session)
        last = session.get(AuditRecord, head_seq)
        assert last is not None
        forged = AuditRecord(
            **fields_of(last)
            | {"seq": head_seq + 1, "prev_hash": head_hash, "request_id": "forged"}
            | {"kind": "user.created", "details": {"user": "mallory"}}
        )
        forged.hash = record_hash(fields_of(forged))
        session.add(forged)
        session.execute(
            text("UPDATE audit_head SET seq = :seq, hash = :hash"),
            {"seq": forged.seq, "hash": forged.hash},
        )
    return head_seq + 1


def test_forged_append_is_detected_with_and_without_a_checkpoint(
    log: Container, runner: CliRunner, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(runner, tmp_path)
    forged = _forge_append(log)
    for args in ((), ("--checkpoint", str(checkpoint))):
        code, output = _verify(runner, *args)
        assert code == 1, args
        assert f"FAILED at record {forged}" in output and "without this appliance's" in output


def test_forged_append_is_not_built_upon(log: Container, runner: CliRunner) -> None:
    """The appliance refuses to chain onto a head it did not seal: a legitimate batch
    on top would otherwise vouch for the forged record under it."""
    forged = _forge_append(log)
    refused = pytest.raises(AuditUnavailable, match="not sealed by this appliance")
    with refused, log.write() as session:
        log.audit.append(session, AuditEvent(kind="test.event", actor=SYSTEM))
    code, output = _verify(runner)
    assert code == 1 and f"FAILED at record {forged}" in output


def test_forged_mac_is_detected(log: Container, runner: CliRunner) -> None:
    forged = _forge_append(log)
    _sql(log, "UPDATE audit_records SET mac = :mac WHERE seq = :seq", mac="0" * 64, seq=forged)
    _sql(log, "UPDATE audit_head SET mac = :mac", mac="0" * 64)
    code, output = _verify(runner)
    assert code == 1
    assert f"FAILED at record {forged}" in output and "MAC" in output


def test_truncation_below_a_stored_checkpoint_is_detected(
    log: Container, runner: CliRunner
) -> None:
    assert runner.invoke(cli, ["audit", "checkpoint"]).exit_code == 0  # stored in the database
    _rewind_head_to(log, RECORDS - 2)
    code, output = _verify(runner)
    assert code == 1
    assert f"FAILED at record {RECORDS - 1}" in output and "truncated" in output


def test_every_stored_checkpoint_is_checked(log: Container, runner: CliRunner) -> None:
    assert runner.invoke(cli, ["audit", "checkpoint"]).exit_code == 0
    _sql(log, "UPDATE audit_checkpoints SET hash = :h", h="1" * 64)
    code, output = _verify(runner)
    assert code == 1 and "signature" in output


def test_truncated_tail_without_stored_checkpoints_needs_the_exported_one(
    log: Container, runner: CliRunner, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(runner, tmp_path)
    # The attacker also deletes the stored checkpoints: the database alone then holds
    # a consistent earlier state; only a checkpoint kept elsewhere tells.
    _sql(log, "DELETE FROM audit_checkpoints")
    _rewind_head_to(log, RECORDS - 1)
    assert _verify(runner)[0] == 0
    code, output = _verify(runner, "--checkpoint", str(checkpoint))
    assert code == 1
    assert f"FAILED at record {RECORDS}" in output and "truncated" in output


def test_rewritten_tail_is_detected(log: Container, runner: CliRunner, tmp_path: Path) -> None:
    checkpoint = _checkpoint(runner, tmp_path)
    with log.write() as session:
        last = session.get(AuditRecord, RECORDS)
        assert last is not None
        last.outcome = "rejected"
        last.hash = record_hash(fields_of(last))
        session.execute(text("UPDATE audit_head SET hash = :hash"), {"hash": last.hash})
    for args in ((), ("--checkpoint", str(checkpoint))):
        code, output = _verify(runner, *args)
        assert code == 1, args
        assert f"FAILED at record {RECORDS}" in output


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
