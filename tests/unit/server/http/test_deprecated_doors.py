"""A deprecated version on every door (SQLite and PostgreSQL): Deprecation and Sunset
headers until the sunset (fake clock), then 410 naming the successor; the API's
deprecate, retire, lifecycle and callers routes, and their permission."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from flask.testing import FlaskClient

from governance.clock import utcnow
from server.container import Container
from tests.support import clock
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish
from tests.support.scoring import IRIS_ROW

Headers = dict[str, str]
INSTANCES = {"instances": [IRIS_ROW]}
V2_INPUTS = {
    "inputs": [
        {"name": name, "datatype": "FP64", "shape": [1], "data": [value]}
        for name, value in IRIS_ROW.items()
    ]
}


def _doors(client: FlaskClient, headers: Headers, version: int) -> list[tuple[str, object]]:
    """(door, response) for one call of `version` through each door."""
    return [
        (
            "native",
            client.post(
                f"/api/v1/models/iris/predict?version={version}", json=INSTANCES, headers=headers
            ),
        ),
        (
            "mlflow",
            client.post(
                f"/api/v1/models/iris/invocations?version={version}",
                json=INSTANCES,
                headers=headers,
            ),
        ),
        (
            "v2",
            client.post(
                f"/v2/models/iris/versions/{version}/infer", json=V2_INPUTS, headers=headers
            ),
        ),
    ]


def test_a_deprecated_version_says_so_on_every_door_then_answers_410(
    client: FlaskClient,
    models: Container,
    predictor: Headers,
    api_key: Callable[..., Headers],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = clock.install(monkeypatch, utcnow())
    publisher = api_key("publisher")
    sunset = (utcnow() + timedelta(days=10)).replace(microsecond=0)
    body = {"sunset": sunset.isoformat(), "reason": "v1 is better calibrated"}
    path = "/api/v1/models/iris/versions/2/deprecate"
    assert client.post(path, json=body, headers=predictor).status_code == 403
    answer = client.post(path, json=body, headers=publisher)
    assert answer.status_code == 200, answer.json
    assert answer.json["successor"] == 1 and answer.json["reason"] == body["reason"]
    models.predictor._served.clear()  # what the alias TTL does after alias_refresh_seconds
    for door, response in _doors(client, predictor, 2):
        assert response.status_code == 200, (door, response.json)
        deprecated_at = int(response.headers["Deprecation"].removeprefix("@"))
        assert abs(deprecated_at - fake.now.timestamp()) < 2, door
        assert parsedate_to_datetime(response.headers["Sunset"]) == sunset, door
    native = _doors(client, predictor, 2)[0][1]
    assert native.json["deprecated"]["successor"] == 1  # type: ignore[attr-defined]
    assert native.json["deprecated"]["reason"] == body["reason"]  # type: ignore[attr-defined]
    assert "Deprecation" not in _doors(client, predictor, 1)[0][1].headers  # type: ignore[attr-defined]
    fake.advance(days=11)
    for door, response in _doors(client, predictor, 2):
        assert response.status_code == 410, door
        assert response.json["successor"] == "iris:1", door
        assert "iris:1" in response.json["detail"]
    assert _doors(client, predictor, 1)[0][1].status_code == 200  # type: ignore[attr-defined]


def test_the_api_refuses_an_alias_onto_a_deprecated_version_and_retires(
    client: FlaskClient,
    models: Container,
    predictor: Headers,
    api_key: Callable[..., Headers],
) -> None:
    publisher = api_key("publisher")
    publish(models, artifact=iris_classifier_v2(), allow_duplicate=True)  # v3, no alias
    sunset = (utcnow() + timedelta(days=1)).date().isoformat()
    answer = client.post(
        "/api/v1/models/iris/versions/3/deprecate",
        json={"sunset": sunset, "reason": "never mind"},
        headers=publisher,
    )
    assert answer.status_code == 200, answer.json
    moved = client.put(
        "/api/v1/models/iris/aliases/production", json={"version": 3}, headers=publisher
    )
    assert moved.status_code == 409 and "deprecated" in moved.json["detail"]
    refused = client.post("/api/v1/models/iris/versions/2/retire", headers=publisher)
    assert refused.status_code == 409  # staging points at it
    assert (
        client.post("/api/v1/models/iris/versions/3/retire", headers=predictor).status_code == 403
    )
    retired = client.post("/api/v1/models/iris/versions/3/retire", headers=publisher)
    assert retired.status_code == 200 and retired.json["retired_at"] and retired.json["shred_after"]
    for door, response in _doors(client, predictor, 3):
        assert response.status_code == 410, door
        assert response.json["successor"] == "iris:1", door
    steps = client.get("/api/v1/models/iris/lifecycle", headers=publisher).json["history"]
    assert [(s["version"], s["action"]) for s in steps][-2:] == [(3, "deprecated"), (3, "retired")]
    callers = client.get("/api/v1/models/iris/versions/3/callers", headers=publisher).json
    assert [(c["name"], c["requests"]) for c in callers["callers"]] == [("test-predictor", 3)]
