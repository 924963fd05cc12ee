"""Four-eyes promotion (promotion_approvals = 1): a move of production, by the CLI,
the API or a rollout's promotion, waits for a different person with publisher or
admin role; self-approval is refused and audited; history names both people."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.audit.records import AuditRecord
from server.cli import cli
from server.container import Container
from tests.support.models import iris_classifier, iris_classifier_v2
from tests.support.publishing import publish


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return overrides | {"promotion_approvals": 1}


@pytest.fixture
def iris(cofre: Container) -> Container:
    publish(cofre, aliases=["production"])  # the service itself: the test's setup
    publish(cofre, artifact=iris_classifier_v2())
    return cofre


def _as(runner: CliRunner, login: str, *args: str) -> Any:
    return runner.invoke(cli, list(args), env={"LOGNAME": login, "USER": login})


def _production(cofre: Container) -> int:
    with cofre.read() as session:
        return cofre.registry.resolve(session, "iris").version


def _kinds(cofre: Container) -> list[str]:
    with cofre.read() as session:
        stmt = select(AuditRecord.kind).where(AuditRecord.kind.like("promotion.%"))
        return list(session.scalars(stmt.order_by(AuditRecord.seq)))


def test_the_command_line_needs_a_second_person(runner: CliRunner, iris: Container) -> None:
    asked = _as(runner, "alice", "models", "alias", "iris", "2", "production")
    assert asked.exit_code == 0 and "awaits" in asked.output
    assert _production(iris) == 1
    pending = json.loads(_as(runner, "bob", "models", "approvals", "--json").output)
    assert [(p["version"], p["requested_by"]) for p in pending] == [(2, "alice")]
    own = _as(runner, "alice", "models", "approve", str(pending[0]["id"]))
    assert own.exit_code != 0 and "cannot approve" in own.output
    assert _production(iris) == 1
    approved = _as(runner, "bob", "models", "approve", str(pending[0]["id"]))
    assert approved.exit_code == 0, approved.output
    assert _production(iris) == 2
    history = _as(runner, "carol", "models", "history", "iris").output
    assert "asked by alice" in history and "approved by bob" in history
    assert _kinds(iris) == [
        "promotion.requested",
        "promotion.self_approval_refused",
        "promotion.approved",
    ]
    assert json.loads(_as(runner, "bob", "models", "approvals", "--json").output) == []


def test_a_rejection_needs_a_reason_and_leaves_production(
    runner: CliRunner, iris: Container
) -> None:
    _as(runner, "alice", "models", "alias", "iris", "2", "production")
    request_id = json.loads(_as(runner, "bob", "models", "approvals", "--json").output)[0]["id"]
    assert _as(runner, "bob", "models", "reject", str(request_id)).exit_code != 0
    rejected = _as(runner, "bob", "models", "reject", str(request_id), "--reason", "not validated")
    assert rejected.exit_code == 0
    assert _production(iris) == 1
    assert "rejected by bob" in _as(runner, "x", "models", "history", "iris").output
    again = _as(runner, "carol", "models", "approve", str(request_id))
    assert again.exit_code != 0 and "rejected already" in again.output


def test_publishing_into_production_is_refused(
    runner: CliRunner, iris: Container, tmp_path: Any
) -> None:
    artifact = tmp_path / "m.skops"
    artifact.write_bytes(iris_classifier())
    refused = _as(
        runner,
        "alice",
        "models",
        "publish",
        str(artifact),
        "--name",
        "iris",
        "--purpose",
        "p",
        "--legal-basis",
        "b",
        "--alias",
        "production",
    )
    assert refused.exit_code != 0 and "approval" in refused.output
    assert _production(iris) == 1


def test_over_the_api_the_requesting_key_cannot_approve(
    client: FlaskClient, iris: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    alice, bob = api_key("publisher"), api_key("publisher")
    asked = client.put("/api/v1/models/iris/aliases/production", json={"version": 2}, headers=alice)
    assert asked.status_code == 202 and asked.json["status"] == "pending"
    url = f"/api/v1/promotions/{asked.json['id']}"
    assert client.post(url + "/approve", headers=alice).status_code == 403
    assert client.post(url + "/approve", headers=api_key("predictor")).status_code == 403
    assert (
        client.post(url + "/approve", headers=api_key("publisher", models=["other"])).status_code
        == 403
    )
    assert _production(iris) == 1
    assert (
        client.get("/api/v1/promotions", headers=bob).json["promotions"][0]["id"]
        == asked.json["id"]
    )
    assert client.post(url + "/approve", headers=bob).json["status"] == "approved"
    assert _production(iris) == 2
    staging = client.put("/api/v1/models/iris/aliases/staging", json={"version": 1}, headers=alice)
    assert staging.status_code == 200  # only production needs four eyes


def test_a_rollout_is_promoted_once_approved(
    client: FlaskClient, iris: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    alice, bob = api_key("publisher"), api_key("admin")
    client.put(
        "/api/v1/models/iris/rollout", json={"candidate": 2, "strategy": "canary"}, headers=alice
    )
    asked = client.post("/api/v1/models/iris/rollout/promote", headers=alice)
    assert asked.status_code == 202 and asked.json["rollout"] is not None
    assert client.get("/api/v1/models/iris/rollout", headers=alice).json["status"] == "running"
    assert (
        client.post(f"/api/v1/promotions/{asked.json['id']}/approve", headers=bob).status_code
        == 200
    )
    status = client.get("/api/v1/models/iris/rollout", headers=alice).json
    assert status["status"] == "promoted" and status["ended_by"].startswith("key:")
    assert _production(iris) == 2
