"""Checkpoints are signed only over a chain that verifies, checked from the last one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import text

from governance.accounts.actor import SYSTEM
from governance.audit.checkpoints import ChainBroken
from governance.audit.service import AuditEvent
from server.cli import cli
from server.container import Container
from tests.support.readiness import readyz


def _append(cofre: Container, count: int) -> None:
    with cofre.write() as session:
        for _ in range(count):
            cofre.audit.append(session, AuditEvent(kind="test.event", actor=SYSTEM))


def test_verification_starts_from_the_last_checkpoint(cofre: Container) -> None:
    _append(cofre, 5)
    first, state = cofre.checkpoints.sign_verified()
    assert state.ok and state.from_seq == 0 and state.checked == first.seq
    _append(cofre, 3)
    second, state = cofre.checkpoints.sign_verified()
    assert state.ok and state.from_seq == first.seq and state.checked == 3
    assert second.seq == first.seq + 3
    with cofre.read() as session:
        assert (second.seq, second.hash) == cofre.audit.head(session)


def test_a_broken_chain_is_not_signed(
    cofre: Container, runner: CliRunner, client: FlaskClient, api_key: object
) -> None:
    _append(cofre, 4)
    cofre.checkpoints.sign_verified()
    _append(cofre, 2)
    with cofre.read() as session:
        seq = cofre.audit.head(session)[0]
    with cofre.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_records SET kind = 'forged' WHERE seq = :s"), {"s": seq}
        )
    with pytest.raises(ChainBroken, match=f"record {seq}"):
        cofre.checkpoints.sign_verified()
    result = runner.invoke(cli, ["audit", "checkpoint"])
    assert result.exit_code != 0 and f"does not verify at record {seq}" in result.output
    # A job's failures are retried; not 30 s apart here (the default delay).
    retry_soon = {"COFRE_JOB_RETRY_DELAY_SECONDS": "0.05"}
    job = runner.invoke(cli, ["jobs", "run", "audit-checkpoint"], env=retry_soon)
    assert job.exit_code != 0
    ready = readyz(client, cofre).json["checks"]["audit_chain"]
    assert not ready["ok"] and ready["advisory"] and "did not verify" in ready["detail"]
    assert client.get("/readyz").status_code == 200  # advisory: the node still serves


def test_a_rewritten_checkpointed_record_is_caught(cofre: Container) -> None:
    _append(cofre, 3)
    checkpoint, _ = cofre.checkpoints.sign_verified()
    with cofre.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_records SET outcome = 'x' WHERE seq = :s"), {"s": checkpoint.seq}
        )
    with cofre.read() as session:
        state = cofre.checkpoints.state(session)
    assert not state.ok and "rewritten" in (state.reason or "")
