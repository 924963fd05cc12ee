"""A client's X-Request-ID: ours stays the request id (unique in the audit log, the
key of feedback, reviews and explanations); a well-formed one of the client's is
echoed beside it and kept in the audit record; a malformed one is ignored
(issue 14.20)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from server.container import Container

ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _details(cofre: Container, request_id: str) -> dict[str, object]:
    with cofre.read() as session:
        (record,) = cofre.audit.by_request(session, SYSTEM, request_id)
        return dict(record.details or {})


@sqlite_only
@pytest.mark.parametrize("theirs", ["order-42", "a" * 64, "2026-12-03T06:00:00Z.x_y"])
def test_a_well_formed_client_id_is_echoed_and_audited(
    client: FlaskClient, cofre: Container, predictor: dict[str, str], theirs: str
) -> None:
    answer = client.post(
        "/api/v1/models/iris/predict",
        json={"instances": [ROW]},
        headers=predictor | {"X-Request-ID": theirs},
    )
    assert answer.status_code == 200
    ours = answer.json["request_id"]
    assert answer.headers["X-Request-ID"] == ours != theirs
    assert answer.headers["X-Client-Request-ID"] == theirs
    assert _details(cofre, ours)["client_request_id"] == theirs


@sqlite_only
@pytest.mark.parametrize("theirs", ["a" * 65, "two words", "caf\u00e9", "x\ty", "<script>"])
def test_a_malformed_client_id_is_ignored(
    client: FlaskClient, cofre: Container, predictor: dict[str, str], theirs: str
) -> None:
    answer = client.post(
        "/api/v1/models/iris/predict",
        json={"instances": [ROW]},
        headers=predictor | {"X-Request-ID": theirs.encode("utf-8").decode("latin-1")},
    )
    assert answer.status_code == 200
    assert "X-Client-Request-ID" not in answer.headers
    assert "client_request_id" not in _details(cofre, answer.json["request_id"])


@sqlite_only
def test_refusals_keep_the_client_id_too(
    client: FlaskClient, cofre: Container, predictor: dict[str, str]
) -> None:
    door = client.post(
        "/api/v1/models/iris/predict",
        json={"instances": [ROW]},
        headers={"Authorization": "Bearer nonsense", "X-Request-ID": "door-1"},
    )
    page = client.get("/api/v1/audit/head", headers=predictor | {"X-Request-ID": "api-1"})
    for answer, theirs in ((door, "door-1"), (page, "api-1")):
        assert answer.status_code in (401, 403)
        assert answer.headers["X-Client-Request-ID"] == theirs
        assert _details(cofre, answer.json["request_id"])["client_request_id"] == theirs
