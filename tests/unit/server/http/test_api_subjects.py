"""Subject rights and contested decisions over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.audit.records import AuditRecord
from server.container import Container
from tests.support.models import iris_classifier

ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}
Keys = Callable[..., dict[str, str]]


def _predict(client: FlaskClient, headers: dict[str, str], subjects: list[str | None]) -> str:
    answer = client.post(
        "/api/v1/models/iris/predict",
        json={"instances": [ROW] * len(subjects), "subject_ids": subjects},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json["request_id"])


def _kinds(cofre: Container) -> list[tuple[str, str]]:
    with cofre.read() as session:
        records = session.scalars(select(AuditRecord).order_by(AuditRecord.seq))
        return [(r.kind, r.outcome) for r in records]


def test_export_erase_and_hold_through_the_api(
    client: FlaskClient, cofre: Container, predictor: dict[str, str], api_key: Keys
) -> None:
    auditor = api_key("auditor")
    request_id = _predict(client, predictor, ["joana", "outra"])
    export = client.post("/api/v1/subjects/export", json={"subject_id": "joana"}, headers=auditor)
    assert export.status_code == 200
    assert export.headers["Content-Disposition"].startswith("attachment; filename=")
    document = export.json
    assert document["subject"]["id"] == "joana"
    [decision] = document["decisions"]
    assert decision["request_id"] == request_id and decision["row"] == 0
    assert decision["input"] == ROW and not decision["erased"]
    assert decision["legal_basis"] == "legitimate interest (test)"
    assert decision["reviews"] == []
    assert document["processing"][0]["retention_days"] == 365
    assert document["processing"][0]["data_categories"] == list(ROW)
    as_csv = client.post(
        "/api/v1/subjects/export", json={"subject_id": "joana", "format": "csv"}, headers=auditor
    )
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.mimetype == "text/csv" and [line["request_id"] for line in lines] == [request_id]

    hold = client.post(
        "/api/v1/subjects/holds", json={"subject_id": "joana", "reason": "case 7"}, headers=auditor
    )
    assert hold.status_code == 201
    refused = client.post(
        "/api/v1/subjects/erasure", json={"subject_id": "joana", "reason": "req 1"}, headers=auditor
    )
    assert refused.status_code == 409 and "legal hold" in refused.json["detail"]
    released = client.post(
        "/api/v1/subjects/holds/release", json={"subject_id": "joana"}, headers=auditor
    )
    assert released.status_code == 200 and released.json["released_at"]
    erased = client.post(
        "/api/v1/subjects/erasure", json={"subject_id": "joana", "reason": "req 1"}, headers=auditor
    )
    assert erased.status_code == 200 and erased.json["keys_destroyed"] == 1
    after = client.post("/api/v1/subjects/export", json={"subject_id": "joana"}, headers=auditor)
    assert after.json["decisions"][0]["erased"] and after.json["decisions"][0]["input"] is None
    records = client.get(f"/api/v1/audit/requests/{request_id}", headers=auditor).json["records"]
    assert records[0]["rows"][0]["data"] == {"erased": True}
    assert records[0]["rows"][1]["data"]["input"] == ROW
    status = client.post("/api/v1/subjects/status", json={"subject_id": "joana"}, headers=auditor)
    assert status.json["destroyed_keys"] == 1 and not status.json["held"]
    assert client.post("/api/v1/audit/verify", headers=auditor).json["ok"]
    kinds = _kinds(cofre)
    assert ("subject.erased", "denied") in kinds and ("subject.erased", "ok") in kinds
    assert kinds.count(("subject.exported", "ok")) == 3


def test_subject_requests_are_strict_about_their_bodies(
    client: FlaskClient, cofre: Container, api_key: Keys
) -> None:
    auditor = api_key("auditor")
    typo = client.post(
        "/api/v1/subjects/erasure", json={"subject": "x", "reason": "r"}, headers=auditor
    )
    assert typo.status_code == 400 and "'subject'" in typo.json["detail"]
    missing = client.post("/api/v1/subjects/erasure", json={"subject_id": "x"}, headers=auditor)
    assert missing.status_code == 422 and missing.json["errors"][0]["field"] == "reason"
    unknown = client.post(
        "/api/v1/subjects/erasure", json={"subject_id": "nobody", "reason": "r"}, headers=auditor
    )
    assert unknown.status_code == 404
    assert (
        client.post(
            "/api/v1/subjects/export", json={"subject_id": "x", "format": "xml"}, headers=auditor
        ).status_code
        == 422
    )
    for role in ("predictor", "publisher"):
        denied = client.post(
            "/api/v1/subjects/export", json={"subject_id": "x"}, headers=api_key(role)
        )
        assert denied.status_code == 403


def test_a_review_from_open_to_decided_with_separation_of_duties(
    client: FlaskClient, cofre: Container, api_key: Keys
) -> None:
    publisher = api_key("admin")  # publishes the version, so may not decide its reviews
    upload = client.post(
        "/api/v1/models/iris/versions",
        data={
            "file": (io.BytesIO(_iris()), "iris.skops"),
            "purpose": "triage",
            "legal_basis": "consent",
            "alias": "production",
        },
        headers=publisher,
    )
    assert upload.status_code == 201, upload.text
    predictor, opener, decider = api_key("predictor"), api_key("auditor"), api_key("auditor")
    request_id = _predict(client, predictor, ["maria"])
    explanation = client.get(
        f"/api/v1/predictions/{request_id}/explanation?row=0", headers=opener
    ).json
    assert explanation["method"].startswith("linear")
    total = sum(explanation["contributions"].values()) + explanation["base_value"]
    assert total == pytest.approx(explanation["output"], abs=1e-6)
    assert explanation["input"] == ROW and explanation["version"] == 1
    assert (
        client.get(
            f"/api/v1/predictions/{request_id}/explanation?row=0", headers=predictor
        ).status_code
        == 403
    )

    opened = client.post(
        f"/api/v1/predictions/{request_id}/reviews",
        json={"row": 0, "reason": "I was refused and I contest it"},
        headers=predictor,  # the client system relays the person's request
    )
    assert opened.status_code == 201, opened.text
    review = opened.json
    assert review["status"] == "open" and review["age_days"] == 0 and not review["overdue"]
    assert review["due_at"] > review["opened_at"]
    twice = client.post(
        f"/api/v1/predictions/{request_id}/reviews",
        json={"row": 0, "reason": "again"},
        headers=opener,
    )
    assert twice.status_code == 409
    bad_row = client.post(
        f"/api/v1/predictions/{request_id}/reviews", json={"row": 5, "reason": "x"}, headers=opener
    )
    assert bad_row.status_code == 422

    url = f"/api/v1/reviews/{review['id']}/decision"
    body = {"outcome": "overturned", "reason": "the income was mistyped", "corrected_output": 1}
    by_publisher = client.post(url, json=body, headers=publisher)
    assert by_publisher.status_code == 403 and "publisher" in by_publisher.json["detail"]
    reopened = client.post(
        f"/api/v1/predictions/{request_id}/reviews", json={"row": 0, "reason": "x"}, headers=opener
    )
    assert reopened.status_code == 409
    decided = client.post(url, json=body, headers=decider)
    assert decided.status_code == 200, decided.text
    assert decided.json["outcome"] == "overturned" and decided.json["corrected_output"] == 1
    assert client.post(url, json=body, headers=decider).status_code == 409
    shown = client.get(f"/api/v1/reviews/{review['id']}", headers=decider).json
    assert shown["reason"] == "I was refused and I contest it"
    listed = client.get("/api/v1/reviews?status=decided", headers=decider).json["reviews"]
    assert [r["id"] for r in listed] == [review["id"]]
    export = client.post("/api/v1/subjects/export", json={"subject_id": "maria"}, headers=decider)
    assert export.json["decisions"][0]["reviews"][0]["outcome"] == "overturned"
    kinds = _kinds(cofre)
    assert ("review.opened", "ok") in kinds and ("review.decided", "ok") in kinds
    assert ("review.decided", "denied") in kinds and ("review.opened", "denied") in kinds
    # The original record is untouched: the chain verifies and still names version 1.
    assert client.post("/api/v1/audit/verify", headers=decider).json["ok"]


def test_the_opener_may_not_decide(client: FlaskClient, models: Container, api_key: Keys) -> None:
    auditor = api_key("auditor")
    request_id = _predict(client, api_key("predictor"), ["rui"])
    review = client.post(
        f"/api/v1/predictions/{request_id}/reviews", json={"row": 0, "reason": "x"}, headers=auditor
    ).json
    refused = client.post(
        f"/api/v1/reviews/{review['id']}/decision",
        json={"outcome": "upheld", "reason": "fine"},
        headers=auditor,
    )
    assert refused.status_code == 403 and "opened" in refused.json["detail"]


def test_model_scoped_callers_are_refused_for_other_models(
    client: FlaskClient, models: Container, api_key: Keys
) -> None:
    request_id = _predict(client, api_key("predictor"), ["rui"])
    scoped = api_key("predictor", models=["breast-cancer"])
    refused = client.post(
        f"/api/v1/predictions/{request_id}/reviews", json={"row": 0, "reason": "x"}, headers=scoped
    )
    assert refused.status_code == 403


def test_the_explanation_uses_the_version_that_decided_after_the_alias_moved(
    client: FlaskClient, models: Container, api_key: Keys
) -> None:
    auditor, admin = api_key("auditor"), api_key("admin")
    request_id = _predict(client, api_key("predictor"), ["rui"])
    moved = client.put("/api/v1/models/iris/aliases/production", json={"version": 2}, headers=admin)
    assert moved.status_code == 200
    explained = client.get(f"/api/v1/predictions/{request_id}/explanation", headers=auditor).json
    assert explained["version"] == 1
    with models.read() as session:
        v1 = models.registry.resolve(session, "iris", version=1)
    assert explained["sha256"] == v1.sha256
    assert client.get("/api/v1/predictions/nope/explanation", headers=auditor).status_code == 404


def test_the_record_of_processing(client: FlaskClient, models: Container, api_key: Keys) -> None:
    ropa = client.get("/api/v1/compliance/ropa", headers=api_key("auditor")).json
    assert [a["model"] for a in ropa["activities"]] == ["breast-cancer", "iris"]
    assert ropa["activities"][1]["data_categories"] == list(ROW)
    assert "AES-256-GCM" in ropa["security_measures"]["encryption"]
    assert client.get("/api/v1/compliance/ropa", headers=api_key("publisher")).status_code == 403


def _iris() -> bytes:
    return iris_classifier()
