"""POST /api/v1/predictions/{request_id}/feedback over HTTP, on SQLite and PostgreSQL:
both body forms, corrections, every refusal, scoped keys, the audit event, erasure."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.audit.records import AuditRecord
from governance.clock import utcnow
from governance.monitoring.feedback import RECORDED, Label
from governance.monitoring.records import FeedbackLabel
from server.container import Container
from server.errors import REFUSED
from tests.support.models import unnamed_regressor
from tests.support.publishing import publish

Keys = Callable[..., dict[str, str]]
IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


def _predict(
    client: FlaskClient,
    headers: dict[str, str],
    subjects: list[str | None],
    model: str = "iris",
    row: dict[str, Any] | None = None,
) -> str:
    answer = client.post(
        f"/api/v1/models/{model}/predict",
        json={"instances": [row or IRIS_ROW] * len(subjects), "subject_ids": subjects},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json["request_id"])


def _feedback(client: FlaskClient, headers: dict[str, str], request_id: str, body: Any) -> Any:
    return client.post(f"/api/v1/predictions/{request_id}/feedback", json=body, headers=headers)


def _labels(cofre: Container, model: str = "iris", version: int = 1) -> dict[Any, Label]:
    now = utcnow()
    with cofre.read() as session:
        return cofre.feedback.labels(
            session, model, version, now - timedelta(hours=1), now + timedelta(hours=1)
        )


def _records(cofre: Container, kind: str) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == kind).order_by(AuditRecord.seq)
        return list(session.scalars(stmt))


def test_one_label_per_row_with_groups(
    client: FlaskClient, models: Container, predictor: dict[str, str]
) -> None:
    request_id = _predict(client, predictor, ["ana", None])
    answer = _feedback(
        client, predictor, request_id, {"ground_truth": [0, 2], "groups": ["f", None]}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json["request_id"] == request_id
    assert (answer.json["model"], answer.json["version"]) == ("iris", 1)
    assert answer.json["rows"] == [0, 1] and answer.json["corrections"] == []
    labels = _labels(models)
    assert {ref: (label.ground_truth, label.group) for ref, label in labels.items()} == {
        (request_id, 0): (0, "f"),
        (request_id, 1): (2, None),
    }
    assert _labels(models, version=2) == {}


def test_some_rows_and_a_correction_that_supersedes(
    client: FlaskClient, models: Container, predictor: dict[str, str]
) -> None:
    request_id = _predict(client, predictor, [None, None, None])
    first = _feedback(
        client, predictor, request_id, {"rows": [{"row": 1, "ground_truth": 1, "group": "m"}]}
    )
    assert first.status_code == 201 and first.json["corrections"] == []
    again = _feedback(client, predictor, request_id, {"rows": [{"row": 1, "ground_truth": "2"}]})
    assert again.status_code == 201 and again.json["corrections"] == [1]
    labels = _labels(models)
    assert list(labels) == [(request_id, 1)]
    assert (labels[(request_id, 1)].ground_truth, labels[(request_id, 1)].group) == (2, None)
    with models.read() as session:
        stored = list(session.scalars(select(FeedbackLabel).order_by(FeedbackLabel.id)))
    assert len(stored) == 2  # the first label is still there, superseded, not overwritten
    assert stored[1].supersedes == stored[0].id and stored[0].supersedes is None
    assert stored[1].recorded_seq > stored[0].recorded_seq


def test_a_regressor_takes_finite_numbers(
    client: FlaskClient, models: Container, predictor: dict[str, str]
) -> None:
    features = [{"name": n, "dtype": "float64"} for n in ("a", "b", "c")]
    publish(models, "reg", unnamed_regressor(), aliases=["production"], features=features)
    request_id = _predict(client, predictor, [None, None], "reg", {"a": 1.0, "b": 2.0, "c": 3.0})
    assert _feedback(client, predictor, request_id, {"ground_truth": [1.25, 3]}).status_code == 201
    assert {label.ground_truth for label in _labels(models, "reg").values()} == {1.25, 3}
    for label in ("inf", "nan", True, "x", None, [1]):
        refused = _feedback(client, predictor, request_id, {"ground_truth": [label, 1]})
        assert refused.status_code == 422, label
        assert "finite number" in refused.json["detail"]


BAD_BODIES = [
    ({"ground_truth": [0]}, 422, "has 1 labels; the prediction has 2 rows"),
    ({"ground_truth": [0, 1, 2]}, 422, "the prediction has 2 rows"),
    ({"ground_truth": [0, 7]}, 422, "not one of the classes"),
    ({"ground_truth": [0, "setosa"]}, 422, "not one of the classes"),
    ({"ground_truth": [0, True]}, 422, "not one of the classes"),
    ({"ground_truth": [0, None]}, 422, "not one of the classes"),
    ({"ground_truth": [0, 1], "groups": ["a"]}, 422, "groups needs one entry per label"),
    ({"ground_truth": [0, 1], "groups": ["a", 5]}, 422, "group must be a string"),
    ({"rows": [{"row": 2, "ground_truth": 0}]}, 422, "row 2 is out of range"),
    ({"rows": [{"row": -1, "ground_truth": 0}]}, 422, "out of range"),
    ({"rows": [{"row": "0", "ground_truth": 0}]}, 422, "row must be a row index"),
    ({"rows": [{"row": 0, "ground_truth": 0}, {"row": 0, "ground_truth": 1}]}, 422, "twice"),
    ({"rows": [{"row": 0, "ground_truth": 0, "group": "g" * 65}]}, 422, "group must be"),
    ({"rows": []}, 422, "rows is empty"),
    ({}, 400, "needs ground_truth"),
    ({"ground_truth": 0}, 400, "ground_truth must be a list"),
    ({"ground_truth": [0, 1], "rows": []}, 400, "not both"),
    ({"ground_truth": [0, 1], "label": 1}, 400, "unknown field 'label'"),
    ({"rows": {"row": 0}}, 400, "rows must be a list"),
    ({"rows": [[0, 1]]}, 400, "rows[0] must be an object"),
    ({"rows": [{"row": 0}]}, 400, "needs row and ground_truth"),
    ({"rows": [{"row": 0, "ground_truth": 1, "truth": 1}]}, 400, "unknown field 'truth'"),
    ([0, 1], 400, "must be a JSON object"),
]


@pytest.mark.parametrize(("body", "status", "detail"), BAD_BODIES)
def test_bad_bodies_get_a_clear_4xx_and_are_audited(
    client: FlaskClient,
    models: Container,
    predictor: dict[str, str],
    body: Any,
    status: int,
    detail: str,
) -> None:
    request_id = _predict(client, predictor, ["ana", "bia"])
    answer = _feedback(client, predictor, request_id, body)
    assert answer.status_code == status, answer.text
    assert answer.mimetype == "application/problem+json"
    assert detail in answer.json["detail"]
    (refusal,) = _records(models, REFUSED)
    assert (refusal.status, refusal.request_id) == (status, answer.json["request_id"])
    assert refusal.details is not None and refusal.details["path"].endswith("/feedback")
    assert _records(models, RECORDED) == [] and _labels(models) == {}


def test_malformed_json_and_other_media_types(
    client: FlaskClient, models: Container, predictor: dict[str, str]
) -> None:
    request_id = _predict(client, predictor, [None])
    url = f"/api/v1/predictions/{request_id}/feedback"
    broken = client.post(url, data="{", content_type="application/json", headers=predictor)
    assert broken.status_code == 400
    as_text = client.post(url, data="0", content_type="text/plain", headers=predictor)
    assert as_text.status_code == 415


def test_unknown_request_and_other_models_are_404_alike(
    client: FlaskClient, models: Container, predictor: dict[str, str], api_key: Keys
) -> None:
    request_id = _predict(client, predictor, ["ana"])
    unknown = _feedback(client, predictor, "f" * 32, {"ground_truth": [0]})
    assert unknown.status_code == 404
    cancer_only = api_key("predictor", models=["breast-cancer"])
    hidden = _feedback(client, cancer_only, request_id, {"ground_truth": [0]})
    assert hidden.status_code == 404
    assert hidden.json["detail"] == f"no served prediction with request id {request_id}"
    iris_only = api_key("predictor", models=["iris"])
    assert _feedback(client, iris_only, request_id, {"ground_truth": [0]}).status_code == 201
    assert [r.status for r in _records(models, REFUSED)] == [404, 404]


def test_roles_that_may_not_send_feedback(
    client: FlaskClient, models: Container, predictor: dict[str, str], api_key: Keys
) -> None:
    request_id = _predict(client, predictor, [None])
    for role in ("auditor", "publisher"):
        answer = _feedback(client, api_key(role), request_id, {"ground_truth": [0]})
        assert answer.status_code == 403
    assert _feedback(client, api_key("admin"), request_id, {"ground_truth": [0]}).status_code == 201


def test_the_audit_event_names_the_rows_and_never_a_label_in_clear(
    client: FlaskClient, models: Container, predictor: dict[str, str]
) -> None:
    request_id = _predict(client, predictor, ["ana", "ana"])
    body = {"ground_truth": [0, 1], "groups": ["grupo-raro-17", "grupo-raro-17"]}
    answer = _feedback(client, predictor, request_id, body)
    (event,) = _records(models, RECORDED)
    assert (event.outcome, event.model_name, event.model_version) == ("ok", "iris", 1)
    assert event.request_id == answer.headers["X-Request-ID"]
    assert event.seq == answer.json["seq"] and event.payload is None
    details = event.details or {}
    pseudonym = models.audit.pseudonym("ana")
    assert details["request_id"] == request_id and details["rows"] == [0, 1]
    assert details["pseudonyms"] == [pseudonym, pseudonym] and details["pseudonym"] == pseudonym
    assert len(details["sealed_sha256"]) == 2
    assert set(details) == {
        "request_id",
        "prediction_seq",
        "rows",
        "pseudonyms",
        "pseudonym",
        "corrections",
        "sealed_sha256",
    }
    everything = json.dumps([_columns(r) for r in _records(models, RECORDED)])
    assert "grupo-raro-17" not in everything and '"ana"' not in everything
    with models.read() as session:
        stored = list(session.scalars(select(FeedbackLabel)))
    assert all(b"grupo-raro-17" not in label.sealed for label in stored)
    with models.read() as session:
        assert models.audit.verify(session).ok


def _columns(record: AuditRecord) -> dict[str, Any]:
    return {c.name: getattr(record, c.name) for c in AuditRecord.__table__.columns}


def test_erasure_hides_the_label_and_the_export_shows_it_erased(
    client: FlaskClient, models: Container, predictor: dict[str, str], api_key: Keys
) -> None:
    auditor = api_key("auditor")
    request_id = _predict(client, predictor, ["ana", "bia"])
    assert _feedback(client, predictor, request_id, {"ground_truth": [0, 2]}).status_code == 201
    assert _feedback(
        client, predictor, request_id, {"rows": [{"row": 0, "ground_truth": 1, "group": "f"}]}
    ).json["corrections"] == [0]
    export = client.post("/api/v1/subjects/export", json={"subject_id": "ana"}, headers=auditor)
    [decision] = export.json["decisions"]
    assert [(f["ground_truth"], f["group"], f["current"]) for f in decision["feedback"]] == [
        (0, None, False),
        (1, "f", True),
    ]
    assert not any(f["erased"] for f in decision["feedback"])

    erased = client.post(
        "/api/v1/subjects/erasure", json={"subject_id": "ana", "reason": "asked"}, headers=auditor
    )
    assert erased.status_code == 200
    assert list(_labels(models)) == [(request_id, 1)]  # bia's label stays
    export = client.post("/api/v1/subjects/export", json={"subject_id": "ana"}, headers=auditor)
    [decision] = export.json["decisions"]
    assert decision["erased"] and len(decision["feedback"]) == 2
    assert all(f["erased"] and f["ground_truth"] is None for f in decision["feedback"])
    as_csv = client.post(
        "/api/v1/subjects/export", json={"subject_id": "ana", "format": "csv"}, headers=auditor
    )
    assert as_csv.status_code == 200 and "feedback" in as_csv.text.splitlines()[0]
    again = _feedback(client, predictor, request_id, {"rows": [{"row": 0, "ground_truth": 2}]})
    assert again.status_code == 409 and "erased" in again.json["detail"]
    assert (
        _feedback(
            client, predictor, request_id, {"rows": [{"row": 1, "ground_truth": 1}]}
        ).status_code
        == 201
    )
