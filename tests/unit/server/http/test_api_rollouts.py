"""/api/v1/models/{name}/rollout and `cofre rollouts`: start, status, promote, abort;
publisher or admin only; a key limited to other models is refused."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import CliRunner
from flask.testing import FlaskClient

from server.cli import cli
from server.container import Container

URL = "/api/v1/models/iris/rollout"


def test_a_publisher_starts_reads_and_aborts_a_rollout(
    client: FlaskClient, models: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    publisher = api_key("publisher")
    started = client.put(
        URL,
        json={"candidate": 2, "strategy": "canary", "percent": 20, "guardrails": ["p99_ms<500"]},
        headers=publisher,
    )
    assert started.status_code == 201, started.json
    assert started.json["status"] == "running"
    assert started.json["guardrails"] == ["p99_ms<500"]
    assert (
        client.put(URL, json={"candidate": 2, "strategy": "ab"}, headers=publisher).status_code
        == 409
    )
    status = client.get(URL, headers=publisher)
    assert status.status_code == 200
    assert set(status.json["variants"]) == {"champion", "candidate"}
    assert status.json["variants"]["candidate"]["version"] == 2
    assert status.json["comparison"]["test"]["test"] is None  # no feedback yet
    aborted = client.post(URL + "/abort", json={"reason": "not today"}, headers=publisher)
    assert aborted.status_code == 200
    assert aborted.json["status"] == "aborted"
    assert aborted.json["end_reason"] == "not today"


def test_promotion_over_the_api_moves_production(
    client: FlaskClient, models: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    admin = api_key("admin")
    client.put(URL, json={"candidate": 2, "strategy": "blue-green"}, headers=admin)
    assert client.post(URL + "/promote", headers=admin).json["status"] == "promoted"
    assert client.get("/api/v1/models/iris", headers=admin).json["aliases"]["production"] == 2


def test_roles_and_model_scopes_are_respected(
    client: FlaskClient, models: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    body = {"candidate": 2, "strategy": "shadow"}
    for role in ("predictor", "auditor"):
        assert client.put(URL, json=body, headers=api_key(role)).status_code == 403
        assert client.get(URL, headers=api_key(role)).status_code == 403
    elsewhere = api_key("publisher", models=["breast-cancer"])
    assert client.put(URL, json=body, headers=elsewhere).status_code == 403
    assert client.get(URL, headers=elsewhere).status_code == 403
    assert (
        client.put(URL, json=body, headers=api_key("publisher", models=["iris"])).status_code == 201
    )


def test_bad_bodies_are_4xx(
    client: FlaskClient, models: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    publisher = api_key("publisher")
    assert (
        client.put(
            URL, json={"candidate": 2, "strategy": "canary", "colour": 1}, headers=publisher
        ).status_code
        == 400
    )
    assert (
        client.put(
            URL, json={"candidate": "2", "strategy": "canary"}, headers=publisher
        ).status_code
        == 422
    )
    assert (
        client.put(
            URL, json={"candidate": 2, "strategy": "canary", "percent": 0}, headers=publisher
        ).status_code
        == 422
    )
    assert client.post(URL + "/abort", json={"reason": "x"}, headers=publisher).status_code == 409
    assert client.get("/api/v1/models/nope/rollout", headers=publisher).status_code == 404


def test_the_command_line_starts_shows_and_aborts(runner: CliRunner, models: Container) -> None:
    started = runner.invoke(
        cli,
        [
            "rollouts",
            "start",
            "iris",
            "--candidate",
            "2",
            "--strategy",
            "canary",
            "--percent",
            "5",
            "--json",
        ],
    )
    assert started.exit_code == 0, started.output
    assert json.loads(started.output)["percent"] == 5
    status = runner.invoke(cli, ["rollouts", "status", "iris", "--json"])
    assert json.loads(status.output)["status"] == "running"
    assert "candidate" in runner.invoke(cli, ["rollouts", "status", "iris"]).output
    refused = runner.invoke(cli, ["rollouts", "abort", "iris"])
    assert refused.exit_code != 0
    aborted = runner.invoke(cli, ["rollouts", "abort", "iris", "--reason", "cli test"])
    assert aborted.exit_code == 0 and "aborted" in aborted.output
    again = runner.invoke(cli, ["rollouts", "promote", "iris"])
    assert again.exit_code != 0 and "no rollout running" in again.output
