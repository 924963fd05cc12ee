"""Admin actions are audit events, and `cofre audit verify` vouches for the chain."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select, update

from governance.audit.records import AuditRecord
from server.cli import cli
from server.container import Container
from tests.support.models import iris_classifier

CARD = ["--purpose", "p", "--legal-basis", "l"]


def _kinds(cofre: Container) -> list[tuple[str, str, int | None]]:
    with cofre.read() as session:
        records = session.scalars(select(AuditRecord).order_by(AuditRecord.seq))
        return [(r.kind, r.actor_type, r.model_version) for r in records]


def test_every_admin_action_is_an_event_and_the_chain_verifies(
    runner: CliRunner,
    client: FlaskClient,
    cofre: Container,
    api_key: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    artifact = tmp_path / "m.skops"
    artifact.write_bytes(iris_classifier())
    password = tmp_path / "pw"
    password.write_text("a long enough password")
    commands = [
        ["models", "publish", str(artifact), "--name", "iris", *CARD],
        ["models", "publish", str(artifact), "--name", "iris", *CARD, "--allow-duplicate"],
        ["models", "alias", "iris", "1", "production"],
        ["models", "alias", "iris", "2", "production"],
        ["models", "rollback", "iris", "production"],
        ["users", "create", "ana", "--role", "auditor", "--password-file", str(password)],
        ["users", "disable", "ana"],
        ["keys", "create", "--name", "k", "--role", "predictor"],
        ["keys", "revoke", "1"],
    ]
    for command in commands:
        result = runner.invoke(cli, command)
        assert result.exit_code == 0, (command, result.output)
    admin = api_key("admin")  # key 2, created through the service
    client.post(
        "/api/v1/users",
        json={"username": "bo", "role": "publisher", "password": "another long password"},
        headers=admin,
    )
    client.put("/api/v1/models/iris/aliases/staging", json={"version": 1}, headers=admin)
    assert [k for k, _, _ in _kinds(cofre)] == [
        "user.created",  # the first admin, by `cofre init`
        "model.published",
        "model.compiled",  # proven equal and compiled to ONNX, in the same transaction
        "model.published",
        "model.compiled",
        "alias.moved",
        "alias.moved",
        "alias.rolled_back",
        "user.created",
        "user.disabled",
        "key.created",
        "key.revoked",
        "key.created",
        "user.created",
        "alias.moved",
    ]
    assert _kinds(cofre)[-1][1:] == ("key", 1)  # the API key is the actor, version 1
    verified = runner.invoke(cli, ["audit", "verify", "--json"])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)  # the progress label goes to stderr
    assert report["ok"] is True and report["checked"] == 15
    assert "OK: records 1..15 verified" in runner.invoke(cli, ["audit", "verify"]).output


def test_audit_verify_names_the_first_bad_record(runner: CliRunner, cofre: Container) -> None:
    runner.invoke(cli, ["keys", "create", "--name", "k", "--role", "predictor"])
    with cofre.write() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(outcome="edited"))
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert "FAILED at record 2" in result.output
