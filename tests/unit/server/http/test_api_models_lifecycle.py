"""The registry's JSON endpoints: what a version records of how it was made, the diff
of two versions, and verification under the running scikit-learn."""

from __future__ import annotations

import io
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from governance.registry.records import ModelVersion
from server.container import Container
from tests.support.models import iris_classifier, iris_classifier_v2
from tests.support.publishing import publish


def test_a_published_note_and_changelog_travel_in_json(
    client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    publisher = api_key("publisher")
    for artifact, note in ((iris_classifier(), ""), (iris_classifier_v2(), "C down to 0.1")):
        response = client.post(
            "/api/v1/models/iris/versions",
            headers=publisher,
            data={
                "purpose": "sorting flowers",
                "legal_basis": "consent",
                "runtime": "sklearn",
                "note": note,
                "file": (io.BytesIO(artifact), "iris.skops"),
            },
            content_type="multipart/form-data",
        )
        assert response.status_code == 201, response.json
    shown = client.get("/api/v1/models/iris/versions/2", headers=publisher).json
    assert shown["note"] == "C down to 0.1" and shown["params"]["C"] == 0.1
    assert shown["changelog"]["params_changed"] == [{"name": "C", "from": 1.0, "to": 0.1}]
    assert shown["load_refusal"] is None and shown["reference_sample_rows"] == 100
    diff = client.get("/api/v1/models/iris/diff?from=2&to=1", headers=publisher)
    assert diff.status_code == 200
    assert diff.json["params_changed"] == [{"name": "C", "from": 0.1, "to": 1.0}]
    assert diff.json["note"] == ""
    missing = client.get("/api/v1/models/iris/diff?from=1", headers=publisher)
    assert missing.status_code == 422 and missing.json["errors"][0]["field"] == "to"


def test_verify_by_api_answers_the_report(
    client: FlaskClient, api_key: Callable[..., dict[str, str]], cofre: Container
) -> None:
    publish(cofre, "iris", aliases=["production"])
    with cofre.write() as session:
        session.scalars(select(ModelVersion)).one().sklearn_version = "0.24.2"
    auditor, publisher = api_key("auditor"), api_key("publisher")
    assert client.post("/api/v1/models/iris/versions/1/verify", headers=auditor).status_code == 403
    shown = client.get("/api/v1/models/iris/versions/1", headers=publisher).json
    assert "cofre models verify iris:1" in shown["load_refusal"]
    verified = client.post("/api/v1/models/iris/versions/1/verify", headers=publisher)
    assert verified.status_code == 200, verified.json
    assert verified.json["passed"] is True and verified.json["trained_with"] == "0.24.2"
    assert verified.json["comparison"]["against"] == "sample"
    shown = client.get("/api/v1/models/iris/versions/1", headers=publisher).json
    assert shown["load_refusal"] is None and len(shown["verifications"]) == 1
    with cofre.write() as session:  # as if the estimator now answered other classes
        session.scalars(select(ModelVersion)).one().classes = [0, 1]
    failed = client.post("/api/v1/models/iris/versions/1/verify", headers=publisher)
    assert failed.status_code == 409 and failed.json["passed"] is False
    assert failed.json["problems"] == ["its classes are now [0, 1, 2], recorded [0, 1]"]
