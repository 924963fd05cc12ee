"""The three prediction doors give the estimator's own answers, audit every call,
and refuse bad input with clear 4xx problems."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from flask.testing import FlaskClient
from sklearn.datasets import load_breast_cancer, load_iris
from sqlalchemy import func, select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from server.container import Container
from tests.support.models import cancer_pipeline, iris_classifier, iris_classifier_v2

IRIS, _ = load_iris(return_X_y=True, as_frame=True)
CANCER, _ = load_breast_cancer(return_X_y=True, as_frame=True)
ROWS = IRIS.iloc[[0, 60, 120]]
INSTANCES = ROWS.to_dict(orient="records")


def _estimator(artifact: bytes) -> Any:
    return sio.loads(artifact, trusted=sio.get_untrusted_types(data=artifact))


def _audit_count(cofre: Container, **where: Any) -> int:
    stmt = select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "prediction")
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditRecord, name) == value)
    with cofre.read() as session:
        return int(session.scalar(stmt) or 0)


def test_native_matches_the_estimator_and_says_which_version(
    client: FlaskClient, predictor: dict[str, str]
) -> None:
    answer = client.post(
        "/api/v1/models/iris/predict", json={"instances": INSTANCES}, headers=predictor
    )
    assert answer.status_code == 200, answer.json
    body = answer.json
    expected = _estimator(iris_classifier())
    assert body["predictions"] == expected.predict(ROWS).tolist()
    assert np.allclose(body["probabilities"], expected.predict_proba(ROWS))
    assert body["classes"] == [0, 1, 2] and body["version"] == 1 and body["name"] == "iris"
    assert len(body["sha256"]) == 64 and answer.headers["X-Request-ID"] == body["request_id"]


def test_alias_and_version_select_the_version(
    client: FlaskClient, predictor: dict[str, str]
) -> None:
    staging = client.post(
        "/api/v1/models/iris/predict?alias=staging",
        json={"instances": INSTANCES},
        headers=predictor,
    ).json
    by_number = client.post(
        "/api/v1/models/iris/predict?version=2", json={"instances": INSTANCES}, headers=predictor
    ).json
    assert staging["version"] == by_number["version"] == 2
    expected = _estimator(iris_classifier_v2()).predict_proba(ROWS)
    assert np.allclose(staging["probabilities"], expected)


def test_dataframe_split_and_positional_rows(
    client: FlaskClient, predictor: dict[str, str]
) -> None:
    split = json.loads(ROWS.to_json(orient="split", index=False))
    a = client.post(
        "/api/v1/models/iris/predict", json={"dataframe_split": split}, headers=predictor
    ).json
    b = client.post(
        "/api/v1/models/iris/predict", json={"instances": ROWS.values.tolist()}, headers=predictor
    ).json
    assert a["predictions"] == b["predictions"] == [0, 1, 2]


def test_pipeline_labels_equal_predict_on_every_row(
    client: FlaskClient, predictor: dict[str, str]
) -> None:
    body = client.post(
        "/api/v1/models/breast-cancer/predict",
        json={"instances": CANCER.iloc[:500].to_dict(orient="records")},
        headers=predictor,
    ).json
    expected = _estimator(cancer_pipeline())
    assert body["predictions"] == expected.predict(CANCER.iloc[:500]).tolist()


def test_pipeline_model_on_thirty_features(client: FlaskClient, predictor: dict[str, str]) -> None:
    rows = CANCER.iloc[:5]
    body = client.post(
        "/api/v1/models/breast-cancer/predict",
        json={"instances": rows.to_dict(orient="records")},
        headers=predictor,
    ).json
    assert body["predictions"] == _estimator(cancer_pipeline()).predict(rows).tolist()


@pytest.mark.parametrize(
    "envelope", ["dataframe_split", "dataframe_records", "instances", "inputs", "inputs-columnar"]
)
def test_mlflow_envelopes_answer_like_mlflow(
    client: FlaskClient, predictor: dict[str, str], envelope: str
) -> None:
    payload: Any = {
        "dataframe_split": json.loads(ROWS.to_json(orient="split", index=False)),
        "dataframe_records": INSTANCES,
        "instances": INSTANCES,
        "inputs": INSTANCES,
        "inputs-columnar": ROWS.to_dict(orient="list"),
    }[envelope]
    key = envelope.split("-")[0]
    answer = client.post("/api/v1/models/iris/invocations", json={key: payload}, headers=predictor)
    assert answer.status_code == 200, answer.json
    assert answer.json == {"predictions": _estimator(iris_classifier()).predict(ROWS).tolist()}


def test_mlflow_csv(client: FlaskClient, predictor: dict[str, str]) -> None:
    buffer = io.StringIO()
    ROWS.to_csv(buffer, index=False)
    answer = client.post(
        "/api/v1/models/iris/invocations",
        data=buffer.getvalue(),
        headers=predictor | {"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json == {"predictions": [0, 1, 2]}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{}", "text/plain", 415, "BAD_REQUEST"),
        ('{"instances": [], "inputs": []}', "application/json", 400, "BAD_REQUEST"),
        ('{"columns": []}', "application/json", 400, "BAD_REQUEST"),
        ("{oops", "application/json", 400, "BAD_REQUEST"),
        ('{"instances": [{"x": 1}]}', "application/json", 422, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_mlflow_refusals_carry_mlflow_error_fields(
    client: FlaskClient,
    predictor: dict[str, str],
    body: str,
    content_type: str,
    status: int,
    code: str,
) -> None:
    answer = client.post(
        "/api/v1/models/iris/invocations",
        data=body,
        headers=predictor | {"Content-Type": content_type},
    )
    assert answer.status_code == status
    assert answer.json["error_code"] == code and answer.json["message"]
    assert answer.mimetype == "application/problem+json"


def test_v2_metadata_ready_and_infer(client: FlaskClient, predictor: dict[str, str]) -> None:
    meta = client.get("/v2/models/iris", headers=predictor).json
    assert [i["name"] for i in meta["inputs"]] == list(IRIS.columns)
    assert meta["versions"] == ["1", "2"]
    assert {o["name"] for o in meta["outputs"]} == {"predict", "predict_proba"}
    assert client.get("/v2/models/iris/versions/2/ready", headers=predictor).json["ready"]
    inputs = [
        {"name": c, "datatype": "FP64", "shape": [3], "data": ROWS[c].tolist()}
        for c in IRIS.columns
    ]
    answer = client.post(
        "/v2/models/iris/versions/2/infer", json={"inputs": inputs}, headers=predictor
    )
    assert answer.status_code == 200, answer.json
    outputs = {o["name"]: o for o in answer.json["outputs"]}
    assert answer.json["model_version"] == "2"
    assert outputs["predict"]["data"] == _estimator(iris_classifier_v2()).predict(ROWS).tolist()


def test_v2_errors_carry_error_field(client: FlaskClient, predictor: dict[str, str]) -> None:
    answer = client.post("/v2/models/iris/infer", json={"inputs": "no"}, headers=predictor)
    assert answer.status_code == 400 and answer.json["error"] == answer.json["detail"]
    missing = client.get("/v2/models/nope", headers=predictor)
    assert missing.status_code == 404 and "error" in missing.json


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"instances": [{"sepal length (cm)": 1}]}, 422, "sepal width (cm)"),
        ({"instances": [INSTANCES[0] | {"petal width (cm)": "wide"}]}, 422, "petal width (cm)"),
        ({"instances": [INSTANCES[0] | {"extra": 1}]}, 422, "extra"),
        ({"instances": INSTANCES, "subject_ids": ["only-one"]}, 422, "subject_ids"),
        ({"rows": INSTANCES}, 400, None),
        ([1, 2], 400, None),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    client: FlaskClient, predictor: dict[str, str], payload: Any, status: int, field: str | None
) -> None:
    answer = client.post("/api/v1/models/iris/predict", json=payload, headers=predictor)
    assert answer.status_code == status, answer.json
    assert answer.mimetype == "application/problem+json"
    if field:
        assert field in [e["field"] for e in answer.json["errors"]]
    assert "Traceback" not in answer.get_data(as_text=True)


def test_nan_is_refused_and_the_message_echoes_no_value(
    client: FlaskClient, predictor: dict[str, str]
) -> None:
    body = json.dumps({"instances": [INSTANCES[0]]}).replace("5.1", "NaN")
    answer = client.post(
        "/api/v1/models/iris/predict",
        data=body,
        headers=predictor | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json["errors"][0]["message"].startswith("missing value")


def test_limits_give_413(
    app: Any, client: FlaskClient, predictor: dict[str, str], cofre: Container
) -> None:
    too_many = {"instances": INSTANCES * (cofre.settings.max_rows // 3 + 1)}
    assert (
        client.post("/api/v1/models/iris/predict", json=too_many, headers=predictor).status_code
        == 413
    )
    huge = b'{"instances": [' + b" " * cofre.settings.max_body_bytes + b"]}"
    answer = client.post(
        "/api/v1/models/iris/predict",
        data=huge,
        headers=predictor | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 413 and answer.json["status"] == 413


def test_every_call_is_audited_success_and_failure(
    client: FlaskClient,
    cofre: Container,
    predictor: dict[str, str],
    api_key: Callable[..., dict[str, str]],
) -> None:
    client.post("/api/v1/models/iris/predict", json={"instances": INSTANCES}, headers=predictor)
    client.post("/api/v1/models/iris/invocations", json={"instances": INSTANCES}, headers=predictor)
    client.post("/api/v1/models/iris/predict", json={"instances": [{"x": 1}]}, headers=predictor)
    client.post("/api/v1/models/iris/predict", json={"instances": INSTANCES})
    client.post(
        "/api/v1/models/iris/predict", json={"instances": INSTANCES}, headers=api_key("auditor")
    )
    assert _audit_count(cofre, outcome="ok") == 2
    assert _audit_count(cofre, outcome="rejected", status=422) == 1
    assert _audit_count(cofre, outcome="denied", status=401) == 1
    assert _audit_count(cofre, outcome="denied", status=403) == 1
    with cofre.read() as session:
        assert cofre.audit.verify(session).ok
        refused = session.scalars(select(AuditRecord).where(AuditRecord.status == 422)).one()
        assert refused.payload is None  # the rejected body is not kept


def test_personal_data_is_encrypted_and_subjects_pseudonymised(
    client: FlaskClient, cofre: Container, predictor: dict[str, str]
) -> None:
    answer = client.post(
        "/api/v1/models/iris/predict",
        json={
            "instances": INSTANCES,
            "purpose": "credit review",
            "subject_ids": ["ana-123", None, "ana-123"],
        },
        headers=predictor,
    )
    request_id = answer.json["request_id"]
    with cofre.read() as session:
        record = cofre.audit.by_request(session, SYSTEM, request_id)[0]
        stored = json.dumps([record.payload, record.subjects])
        assert "ana-123" not in stored and "5.1" not in stored
        assert record.subjects[0] == record.subjects[2] == cofre.audit.pseudonym("ana-123")
        assert record.purpose == "credit review"
        rows = cofre.audit.decrypt_payload(session, record)
        assert rows[0]["input"] == INSTANCES[0] and rows[1]["output"] == 1
        assert [r.request_id for r in cofre.audit.by_subject(session, SYSTEM, "ana-123")] == [
            request_id
        ]


def test_model_scoped_and_labels_only_keys(
    client: FlaskClient, models: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    scoped = api_key("predictor", models=["breast-cancer"], labels_only=True)
    assert (
        client.post(
            "/api/v1/models/iris/predict", json={"instances": INSTANCES}, headers=scoped
        ).status_code
        == 403
    )
    rows = CANCER.iloc[:2].to_dict(orient="records")
    body = client.post(
        "/api/v1/models/breast-cancer/predict", json={"instances": rows}, headers=scoped
    ).json
    assert "probabilities" not in body and len(body["predictions"]) == 2


def test_audit_unwritable_means_nothing_is_served(
    client: FlaskClient, cofre: Container, predictor: dict[str, str]
) -> None:
    """Fail closed: another writer holds the lock past the timeout, the answer is 503."""
    client.post("/api/v1/models/iris/predict", json={"instances": INSTANCES}, headers=predictor)
    before = _audit_count(cofre)
    with _write_lock_held(cofre):
        answer = client.post(
            "/api/v1/models/iris/predict", json={"instances": INSTANCES}, headers=predictor
        )
    assert answer.status_code == 503
    assert "predictions" not in answer.json
    assert answer.json["type"].endswith("audit-unavailable")
    assert answer.headers["Retry-After"] == "5"  # a passing outage: the client may retry
    assert _audit_count(cofre) == before


@contextmanager
def _write_lock_held(cofre: Container) -> Iterator[None]:
    """Another process-like writer holding the database's write lock."""
    if cofre.engine.dialect.name == "sqlite":
        locker = sqlite3.connect(
            cofre.settings.database_url.removeprefix("sqlite:///"), isolation_level=None
        )
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        return
    with cofre.engine.connect() as connection:
        connection.exec_driver_sql("LOCK TABLE audit_head IN ACCESS EXCLUSIVE MODE")
        yield
        connection.rollback()


def test_alias_move_is_served_after_the_refresh_interval(
    client: FlaskClient, cofre: Container, predictor: dict[str, str]
) -> None:
    first = client.post(
        "/api/v1/models/iris/predict", json={"instances": INSTANCES}, headers=predictor
    ).json
    with cofre.write() as session:
        from governance.accounts.actor import SYSTEM

        cofre.registry.set_alias(session, SYSTEM, "iris", 2, "production")
    cofre.predictor._served.clear()  # what the TTL does after alias_refresh_seconds
    second = client.post(
        "/api/v1/models/iris/predict", json={"instances": INSTANCES}, headers=predictor
    ).json
    assert (first["version"], second["version"]) == (1, 2)


def test_forest_labels_from_one_pass_equal_predict(
    client: FlaskClient, cofre: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    """Forests answer labels and probabilities from one predict_proba pass; the labels
    must be exactly what the estimator's own predict() says, row by row."""
    from sklearn.ensemble import RandomForestClassifier

    from governance.accounts.actor import SYSTEM
    from governance.registry.service import PublishRequest
    from tests.support.models import CARD

    forest = RandomForestClassifier(n_estimators=15, max_depth=3, random_state=1)
    forest.fit(IRIS, load_iris().target)
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest(
                name="forest", artifact=sio.dumps(forest), card=CARD, aliases=["production"]
            ),
        )
    answer = client.post(
        "/api/v1/models/forest/predict",
        json={"instances": IRIS.to_dict(orient="records")},
        headers=api_key("predictor"),
    ).json
    assert answer["predictions"] == forest.predict(IRIS).tolist()
    assert np.allclose(answer["probabilities"], forest.predict_proba(IRIS))


def test_explain_true_answers_each_rows_contributions(
    client: FlaskClient, predictor: dict[str, str], cofre: Container
) -> None:
    rows = CANCER.iloc[:3]
    answer = client.post(
        "/api/v1/models/breast-cancer/predict?explain=true",
        json={"instances": rows.to_dict(orient="records")},
        headers=predictor,
    )
    assert answer.status_code == 200, answer.json
    explanations = answer.json["explanations"]
    decision = _estimator(cancer_pipeline()).decision_function(rows)
    for explained, expected in zip(explanations, decision, strict=True):
        total = explained["base_value"] + sum(explained["contributions"].values())
        assert abs(total - expected) < 1e-6 and explained["method"]
        assert set(explained["contributions"]) == set(CANCER.columns)
    with cofre.read() as session:
        record = cofre.audit.by_request(session, SYSTEM, answer.json["request_id"])[0]
        assert record.details["explained"] is True
    bad = client.post(
        "/api/v1/models/iris/predict?explain=perhaps",
        json={"instances": INSTANCES},
        headers=predictor,
    )
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "explain"
