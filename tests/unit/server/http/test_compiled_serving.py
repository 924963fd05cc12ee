"""Versions proven equal in ONNX are answered by ONNX Runtime through every door, with
the estimator's answers; the response and the audit record name the runtime."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from sklearn.datasets import load_breast_cancer

from governance.accounts.actor import SYSTEM
from governance.registry import compiled
from governance.registry.loading import load_trusted
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import CARD, cancer_forest, cancer_pipeline

CANCER, _ = load_breast_cancer(return_X_y=True, as_frame=True)
ROWS = CANCER.iloc[[0, 19, 100, 200, 300, 568]]


@pytest.fixture
def cancer(cofre: Container, api_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    """The logistic pipeline (v1, production), the forest (v2, compiled) and the
    forest again on scikit-learn by choice (v3)."""
    with cofre.write() as session:
        for artifact, runtime, aliases in (
            (cancer_pipeline(), "auto", ["production"]),
            (cancer_forest(), "onnx", []),
            (cancer_forest(), "sklearn", []),
        ):
            request = PublishRequest(
                name="cancer",
                artifact=artifact,
                card=CARD,
                aliases=aliases,
                runtime=runtime,
                allow_duplicate=True,  # the forest twice: on each runtime
            )
            cofre.registry.publish(session, SYSTEM, request)
    return api_key("predictor")


def _native(client: FlaskClient, key: dict[str, str], version: int, query: str = "") -> Any:
    answer = client.post(
        f"/api/v1/models/cancer/predict?version={version}{query}",
        json={"instances": ROWS.to_dict(orient="records")},
        headers=key,
    )
    assert answer.status_code == 200, answer.json
    return answer.json


@pytest.mark.parametrize(
    ("version", "artifact"), [(1, cancer_pipeline), (2, cancer_forest)], ids=["logistic", "forest"]
)
def test_the_native_door_answers_from_onnx_as_the_estimator_does(
    client: FlaskClient,
    cofre: Container,
    cancer: dict[str, str],
    version: int,
    artifact: Callable[[], bytes],
) -> None:
    body = _native(client, cancer, version)
    estimator = load_trusted(artifact())
    assert body["runtime"] == "onnx"
    assert body["predictions"] == estimator.predict(ROWS).tolist()
    assert all(type(p) is int for p in body["predictions"]) and body["classes"] == [0, 1]
    gap = np.abs(np.asarray(body["probabilities"]) - estimator.predict_proba(ROWS)).max()
    assert gap <= compiled.PROBA_TOLERANCE
    with cofre.read() as session:
        record = cofre.audit.by_request(session, SYSTEM, body["request_id"])[0]
    assert record.details["runtime"] == "onnx" and record.outcome == "ok"


def test_a_version_on_sklearn_says_so(
    client: FlaskClient, cofre: Container, cancer: dict[str, str]
) -> None:
    body = _native(client, cancer, 3)
    assert body["runtime"] == "sklearn"
    assert body["predictions"] == load_trusted(cancer_forest()).predict(ROWS).tolist()
    with cofre.read() as session:
        record = cofre.audit.by_request(session, SYSTEM, body["request_id"])[0]
    assert record.details["runtime"] == "sklearn"


def test_rows_beyond_32_bit_floats_are_answered_by_the_estimator(
    client: FlaskClient, cancer: dict[str, str]
) -> None:
    row = CANCER.iloc[0].to_dict() | {"mean radius": 1e300}
    answer = client.post(
        "/api/v1/models/cancer/predict?version=1", json={"instances": [row]}, headers=cancer
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["runtime"] == "sklearn"


def test_explanations_still_come_from_the_estimator(
    client: FlaskClient, cancer: dict[str, str]
) -> None:
    body = _native(client, cancer, 1, "&explain=true")
    decision = load_trusted(cancer_pipeline()).decision_function(ROWS)
    for explained, expected in zip(body["explanations"], decision, strict=True):
        total = explained["base_value"] + sum(explained["contributions"].values())
        assert abs(total - expected) < 1e-6
    assert body["runtime"] == "onnx"


def test_v2_names_the_runtime_and_mlflow_keeps_its_body(
    client: FlaskClient, cancer: dict[str, str]
) -> None:
    inputs = [
        {"name": c, "datatype": "FP64", "shape": [len(ROWS)], "data": ROWS[c].tolist()}
        for c in CANCER.columns
    ]
    assert client.get("/v2/models/cancer/versions/2/ready", headers=cancer).json["ready"]
    metadata = client.get("/v2/models/cancer/versions/2", headers=cancer).json
    assert metadata["parameters"]["runtime"] == "onnx"
    answer = client.post(
        "/v2/models/cancer/versions/2/infer", json={"inputs": inputs}, headers=cancer
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["parameters"]["runtime"] == "onnx"
    outputs = {o["name"]: o for o in answer.json["outputs"]}
    assert outputs["predict"]["data"] == load_trusted(cancer_forest()).predict(ROWS).tolist()
    mlflow = client.post(
        "/api/v1/models/cancer/invocations?version=2",
        json={"dataframe_records": ROWS.to_dict(orient="records")},
        headers=cancer,
    )
    assert mlflow.status_code == 200, mlflow.json
    assert mlflow.json == {"predictions": load_trusted(cancer_forest()).predict(ROWS).tolist()}


def test_the_version_view_says_which_runtime_and_why(
    client: FlaskClient, cancer: dict[str, str], api_key: Callable[..., dict[str, str]]
) -> None:
    reader = api_key("auditor")
    compiled_view = client.get("/api/v1/models/cancer/versions/2", headers=reader).json
    assert compiled_view["runtime"] == "onnx"
    assert compiled_view["compilation"]["proof"]["label_mismatches"] == 0
    chosen = client.get("/api/v1/models/cancer/versions/3", headers=reader).json
    assert chosen["runtime"] == "sklearn"
    assert chosen["compilation"]["reason"] == "the publisher chose scikit-learn"


def test_publish_and_compile_over_http(
    client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    publisher = api_key("publisher")
    form = {"purpose": "score", "legal_basis": "legitimate interest", "runtime": "sklearn"}
    published = client.post(
        "/api/v1/models/logistic/versions",
        data=form | {"file": (io.BytesIO(cancer_pipeline()), "m.skops")},
        headers=publisher,
        content_type="multipart/form-data",
    )
    assert published.status_code == 201, published.json
    assert published.json["runtime"] == "sklearn"
    compiled_now = client.post(
        "/api/v1/models/logistic/versions/1/compile", json={"runtime": "onnx"}, headers=publisher
    )
    assert compiled_now.status_code == 200, compiled_now.json
    assert compiled_now.json["runtime"] == "onnx"
    assert compiled_now.json["compilation"]["requested"] == "onnx"
    wrong = client.post(
        "/api/v1/models/logistic/versions",
        data=form | {"runtime": "tpu", "file": (io.BytesIO(cancer_pipeline()), "m.skops")},
        headers=publisher,
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 422 and wrong.json["errors"][0]["field"] == "runtime"


def test_the_proof_runs_before_the_publish_takes_the_write_lock(
    client: FlaskClient,
    cofre: Container,
    api_key: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a model is converted and proven, other writers (every worker's audit
    appends) go on: the conversion runs before the publish's write transaction."""
    from governance.audit.service import AuditEvent

    convert = compiled.compile_estimator

    def while_others_write(*args: Any, **kwargs: Any) -> compiled.Compilation:
        with cofre.write() as session:  # waits out the lock timeout if publish held it
            cofre.audit.append(session, AuditEvent(kind="test.concurrent", actor=SYSTEM))
        return convert(*args, **kwargs)

    monkeypatch.setattr(compiled, "compile_estimator", while_others_write)
    published = client.post(
        "/api/v1/models/logistic/versions",
        data={"purpose": "score", "legal_basis": "legitimate interest"}
        | {"file": (io.BytesIO(cancer_pipeline()), "m.skops")},
        headers=api_key("publisher"),
        content_type="multipart/form-data",
    )
    assert published.status_code == 201, published.json
    assert published.json["runtime"] == "onnx"
