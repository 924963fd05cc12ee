"""Query budgets and output precision on every prediction door: 429 with Retry-After and
a problem body in each protocol's dialect, audited by the core; probabilities rounded
per key, in the answer and in the audit record alike; the keys API sets them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sklearn.datasets import load_iris
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.errors import RateLimited
from server.container import Container
from server.inference.codecs import native
from server.inference.predictor import Call
from tests.support.clock import FakeClock

IRIS, _ = load_iris(return_X_y=True, as_frame=True)
INSTANCES = IRIS.iloc[[0, 60, 120]].to_dict(orient="records")
V2_INPUTS = [
    {"name": c, "datatype": "FP64", "shape": [3], "data": IRIS.iloc[[0, 60, 120]][c].tolist()}
    for c in IRIS.columns
]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(datetime(2026, 3, 1, 23, 0, 0, tzinfo=UTC))
    monkeypatch.setattr("governance.accounts.budgets.utcnow", fake)
    return fake


def _headers(models: Container, **limits: Any) -> dict[str, str]:
    with models.write() as session:
        created = models.accounts.create_key(session, SYSTEM, "client", "predictor", **limits)
    return {"Authorization": f"Bearer {created.secret}"}


def _refusals(cofre: Container) -> list[AuditRecord]:
    with cofre.read() as session:
        return list(
            session.scalars(
                select(AuditRecord).where(
                    AuditRecord.kind == "prediction", AuditRecord.status == 429
                )
            )
        )


DOORS = [
    ("/api/v1/models/iris/predict", {"instances": INSTANCES}),
    ("/api/v1/models/iris/invocations", {"instances": INSTANCES}),
    ("/v2/models/iris/infer", {"inputs": V2_INPUTS}),
]


@pytest.mark.parametrize(("path", "body"), DOORS)
def test_every_door_answers_429_with_retry_after_and_audits_it(
    client: FlaskClient, models: Container, clock: FakeClock, path: str, body: dict[str, Any]
) -> None:
    headers = _headers(models, rate=2)
    assert [client.post(path, json=body, headers=headers).status_code for _ in range(2)] == [
        200,
        200,
    ]
    refused = client.post(path, json=body, headers=headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert refused.mimetype == "application/problem+json"
    problem = refused.json
    assert problem["type"] == "urn:cofre:problem:rate-limited" and problem["retry_after"] == 1
    assert "2 requests per second" in problem["detail"]
    if path.startswith("/v2"):
        assert problem["error"] == problem["detail"]
    if path.endswith("invocations"):
        assert problem["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    [record] = _refusals(models)
    assert record.outcome == "rejected" and record.details["reason"] == "rate-limited"
    assert record.request_id == refused.headers["X-Request-ID"]
    clock.advance(seconds=1)
    assert client.post(path, json=body, headers=headers).status_code == 200


def test_rows_per_day_answer_429_until_midnight(
    client: FlaskClient, models: Container, clock: FakeClock
) -> None:
    headers = _headers(models, rows_per_day=5)
    path, body = DOORS[0]
    assert client.post(path, json=body, headers=headers).status_code == 200
    refused = client.post(path, json=body, headers=headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3600"
    assert refused.json["type"] == "urn:cofre:problem:rows-budget-spent"
    assert _refusals(models)[0].details["reason"] == "rows-budget-spent"
    one_row = {"instances": INSTANCES[:2]}
    assert client.post(path, json=one_row, headers=headers).status_code == 200


def test_probabilities_are_rounded_per_key_and_audited_as_sent(
    client: FlaskClient, models: Container
) -> None:
    rounded, full = _headers(models, precision=2), _headers(models)
    path, body = DOORS[0]
    coarse = client.post(path, json=body, headers=rounded).json
    fine = client.post(path, json=body, headers=full).json
    assert coarse["probabilities"] == [[round(p, 2) for p in row] for row in fine["probabilities"]]
    assert coarse["probabilities"] != fine["probabilities"]
    v2 = client.post(DOORS[2][0], json=DOORS[2][1], headers=rounded).json
    proba = next(o for o in v2["outputs"] if o["name"] == "predict_proba")
    assert proba["data"] == [p for row in coarse["probabilities"] for p in row]
    with models.read() as session:
        record = session.scalars(
            select(AuditRecord).where(AuditRecord.request_id == coarse["request_id"])
        ).one()
        rows = models.audit.decrypt_payload(session, record)
    assert [row["proba"] for row in rows] == coarse["probabilities"]


def test_the_batch_door_is_held_to_the_same_budget(models: Container, clock: FakeClock) -> None:
    """The budget is the core's: a batch call made under a key is counted like HTTP."""
    with models.write() as session:
        created = models.accounts.create_key(session, SYSTEM, "batch", "predictor", rate=1)
    with models.read() as session:
        actor = models.accounts.authenticate_key(session, created.secret)
    decoded = native.decode(json.dumps({"instances": INSTANCES}).encode(), None)

    def call(request_id: str) -> Any:
        return models.predictor.predict(
            lambda: actor, Call("batch", "iris", request_id), lambda served: decoded
        )

    assert call("batch-1").predictions
    with pytest.raises(RateLimited):
        call("batch-2")
    assert _refusals(models)[0].endpoint == "batch"


def test_the_keys_api_creates_and_limits_budgets(
    client: FlaskClient, models: Container, api_key: Any
) -> None:
    admin = api_key("admin")
    created = client.post(
        "/api/v1/keys",
        json={"name": "partner", "role": "predictor", "rate": 50, "rows_per_day": 100_000},
        headers=admin,
    )
    assert created.status_code == 201, created.json
    assert (created.json["rate"], created.json["rows_per_day"], created.json["precision"]) == (
        50,
        100_000,
        None,
    )
    prefix = created.json["prefix"]
    limited = client.put(f"/api/v1/keys/{prefix}/limits", json={"precision": 3.0}, headers=admin)
    assert limited.status_code == 200, limited.json
    assert (limited.json["rate"], limited.json["precision"]) == (50, 3)
    lifted = client.put(f"/api/v1/keys/{prefix}/limits", json={"rate": None}, headers=admin)
    assert lifted.json["rate"] is None and lifted.json["rows_per_day"] == 100_000
    bad = client.put(f"/api/v1/keys/{prefix}/limits", json={"rate": 0}, headers=admin)
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "rate"
    unknown = client.put(f"/api/v1/keys/{prefix}/limits", json={"burst": 3}, headers=admin)
    assert unknown.status_code == 400
    forbidden = client.put(
        f"/api/v1/keys/{prefix}/limits", json={"rate": 1}, headers=api_key("predictor")
    )
    assert forbidden.status_code == 403
