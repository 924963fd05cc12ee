"""Audit JSON endpoints: records by request and subject, verification, checkpoints."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import text

from governance.accounts.actor import SYSTEM
from server.container import Container

ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


def test_auditor_reads_decrypted_records_and_is_itself_audited(
    client: FlaskClient,
    cofre: Container,
    predictor: dict[str, str],
    api_key: Callable[..., dict[str, str]],
) -> None:
    auditor = api_key("auditor")
    answer = client.post(
        "/api/v1/models/iris/predict",
        json={"instances": [ROW], "subject_ids": ["joao-9"]},
        headers=predictor,
    )
    request_id = answer.json["request_id"]
    records = client.get(f"/api/v1/audit/requests/{request_id}", headers=auditor).json["records"]
    assert records[0]["rows"][0]["data"]["input"] == ROW
    subject = client.post(
        "/api/v1/audit/subjects/export", json={"subject_id": "joao-9"}, headers=auditor
    ).json["records"]
    assert [r["request_id"] for r in subject] == [request_id]
    with cofre.read() as session:
        exports = [r for r in cofre.audit.by_request(session, SYSTEM, request_id)]
        assert len(exports) == 1
        head = cofre.audit.head(session)[0]
        assert (
            session.execute(
                text("SELECT COUNT(*) FROM audit_records WHERE kind = 'audit.exported'")
            ).scalar()
            == 2
        )
    assert head >= 4
    assert (
        client.get(f"/api/v1/audit/requests/{request_id}", headers=api_key("publisher")).status_code
        == 403
    )


def test_verify_and_checkpoint_endpoints(
    client: FlaskClient,
    cofre: Container,
    predictor: dict[str, str],
    api_key: Callable[..., dict[str, str]],
) -> None:
    auditor = api_key("auditor")
    client.post("/api/v1/models/iris/predict", json={"instances": [ROW]}, headers=predictor)
    checkpoint = client.post("/api/v1/audit/checkpoints", headers=auditor).json
    assert checkpoint["format"] == "cofre-checkpoint-1"
    assert (
        client.get("/api/v1/audit/checkpoints/latest", headers=auditor).json["checkpoint"]
        == checkpoint
    )
    ok = client.post("/api/v1/audit/verify", json=checkpoint, headers=auditor)
    assert (
        ok.status_code == 200 and ok.json["ok"] and ok.json["checkpoint_seq"] == checkpoint["seq"]
    )
    with cofre.engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET endpoint = 'x' WHERE seq = 2"))
    bad = client.post("/api/v1/audit/verify", headers=auditor)
    assert bad.status_code == 409 and bad.json["bad_seq"] == 2


def test_a_model_scoped_auditor_reads_only_its_models_records(
    client: FlaskClient, predictor: dict[str, str], api_key: Callable[..., dict[str, str]]
) -> None:
    """Issue 14.3: the scope held on no audit read."""
    answer = client.post(
        "/api/v1/models/iris/predict",
        json={"instances": [ROW], "subject_ids": ["joao-9"]},
        headers=predictor,
    )
    scoped = api_key("auditor", models=["breast-cancer"])
    request_id = answer.json["request_id"]
    assert client.get(f"/api/v1/audit/requests/{request_id}", headers=scoped).status_code == 403
    subject = client.post(
        "/api/v1/audit/subjects/export", json={"subject_id": "joao-9"}, headers=scoped
    )
    assert subject.status_code == 200 and subject.json["records"] == []
    everything = api_key("auditor")
    assert client.get(f"/api/v1/audit/requests/{request_id}", headers=everything).status_code == 200
