"""The registry's JSON endpoints: publish (multipart), list, show, aliases, rollback."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from flask.testing import FlaskClient
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import FunctionTransformer

from server.container import Container
from tests.support.models import iris_classifier, iris_classifier_v2, unnamed_regressor

Headers = dict[str, str]
CARD = {"purpose": "score iris flowers", "legal_basis": "legitimate interest"}


def _publish(
    client: FlaskClient,
    headers: Headers,
    name: str = "iris",
    artifact: bytes | None = None,
    **form: Any,
) -> Any:
    data: dict[str, Any] = {**CARD, **form}
    data["file"] = (io.BytesIO(artifact or iris_classifier()), "model.skops")
    return client.post(
        f"/api/v1/models/{name}/versions",
        data=data,
        headers=headers,
        content_type="multipart/form-data",
    )


@pytest.fixture
def publisher(api_key: Callable[..., Headers]) -> Headers:
    return api_key("publisher")


def test_publish_by_multipart(client: FlaskClient, publisher: Headers) -> None:
    response = _publish(
        client,
        publisher,
        description="d",
        owner="team",
        decision_mode="automated",
        retention_days="90",
        recipients="credit desk",
        alias=["production", "staging"],
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["name"], body["version"], body["has_proba"]) == ("iris", 1, True)
    assert body["published_by"].startswith("key:")
    assert body["card"] == {
        "description": "d",
        "purpose": CARD["purpose"],
        "legal_basis": CARD["legal_basis"],
        "decision_mode": "automated",
        "owner": "team",
        "retention_days": 90,
        "recipients": "credit desk",
    }
    assert body["aliases"] == ["production", "staging"]
    assert _publish(client, publisher, allow_duplicate="true").json["version"] == 2


def test_publish_with_a_declared_schema(client: FlaskClient, publisher: Headers) -> None:
    features = [{"name": n, "dtype": "float64"} for n in ("a", "b", "c")]
    response = _publish(
        client, publisher, "reg", unnamed_regressor(), features=json.dumps(features)
    )
    assert response.status_code == 201
    assert response.json["features"] == features
    bad = _publish(client, publisher, "reg", unnamed_regressor(), features=json.dumps(features[:2]))
    assert bad.status_code == 422
    assert bad.json["errors"][0]["field"] == "features"


def test_purpose_and_legal_basis_are_required(client: FlaskClient, publisher: Headers) -> None:
    response = client.post(
        "/api/v1/models/iris/versions",
        data={"file": (io.BytesIO(iris_classifier()), "m.skops")},
        headers=publisher,
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert {e["field"] for e in response.json["errors"]} == {"purpose", "legal_basis"}


def test_publish_needs_a_file_and_multipart(client: FlaskClient, publisher: Headers) -> None:
    no_file = client.post(
        "/api/v1/models/iris/versions",
        data=CARD,
        headers=publisher,
        content_type="multipart/form-data",
    )
    assert no_file.status_code == 422
    assert no_file.json["errors"] == [{"field": "file", "message": "is required"}]
    as_json = client.post("/api/v1/models/iris/versions", json=CARD, headers=publisher)
    assert as_json.status_code == 415


def test_a_malicious_pickle_is_refused_and_never_runs(
    client: FlaskClient, publisher: Headers, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    response = _publish(client, publisher, artifact=pickle.dumps(Exploit()))
    assert response.status_code == 422
    assert response.json["type"].endswith("untrusted-artifact")
    assert "only skops" in response.json["detail"]
    assert not marker.exists()


def test_untrusted_types_are_listed(client: FlaskClient, publisher: Headers) -> None:
    artifact = sio.dumps(FunctionTransformer(np.fromfile))
    response = _publish(client, publisher, artifact=artifact)
    assert response.status_code == 422
    assert response.json["untrusted_types"] == ["numpy.fromfile"]
    assert "numpy.fromfile" in response.json["detail"]


def test_an_upload_over_the_artifact_limit_is_413(
    cofre: Container, client: FlaskClient, publisher: Headers
) -> None:
    limit = 10_000
    cofre.settings = dataclasses.replace(cofre.settings, max_artifact_bytes=limit)
    response = _publish(client, publisher, artifact=b"PK" + b"\0" * limit)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_list_show_and_versions(client: FlaskClient, publisher: Headers) -> None:
    _publish(client, publisher, alias="production")
    _publish(client, publisher, artifact=iris_classifier_v2())
    listed = client.get("/api/v1/models", headers=publisher).json["models"]
    assert listed == [
        {
            "name": "iris",
            "created_at": listed[0]["created_at"],
            "latest_version": 2,
            "aliases": {"production": 1},
        }
    ]
    shown = client.get("/api/v1/models/iris", headers=publisher).json
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    version = client.get("/api/v1/models/iris/versions/2", headers=publisher).json
    assert version["version"] == 2 and len(version["sha256"]) == 64
    assert client.get("/api/v1/models/nope", headers=publisher).status_code == 404
    assert client.get("/api/v1/models/iris/versions/7", headers=publisher).status_code == 404


def test_aliases_history_and_rollback(client: FlaskClient, publisher: Headers) -> None:
    for _ in range(3):
        _publish(client, publisher, allow_duplicate="true")
    for version in (1, 2, 3):
        moved = client.put(
            "/api/v1/models/iris/aliases/production", json={"version": version}, headers=publisher
        )
        assert moved.json == {"name": "iris", "alias": "production", "version": version}
    rollback = "/api/v1/models/iris/aliases/production/rollback"
    assert client.post(rollback, headers=publisher).json["version"] == 2
    assert client.post(rollback, headers=publisher).json["version"] == 1
    exhausted = client.post(rollback, headers=publisher)
    assert exhausted.status_code == 409
    history = client.get("/api/v1/models/iris/aliases", headers=publisher).json
    assert history["aliases"] == {"production": 1}
    assert [(h["action"], h["to_version"]) for h in history["history"]] == [
        ("set", 1),
        ("set", 2),
        ("set", 3),
        ("rollback", 2),
        ("rollback", 1),
    ]
    bad = client.put(
        "/api/v1/models/iris/aliases/production", json={"version": "two"}, headers=publisher
    )
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "version"


def test_model_scoped_keys_only_reach_their_models(
    client: FlaskClient, api_key: Callable[..., Headers], publisher: Headers
) -> None:
    _publish(client, publisher, "iris")
    _publish(client, publisher, "other")
    scoped = api_key("publisher", models=["iris"])
    assert client.get("/api/v1/models/iris", headers=scoped).status_code == 200
    listed = client.get("/api/v1/models", headers=scoped).json["models"]
    assert [m["name"] for m in listed] == ["iris"]
    everything = client.get("/api/v1/models", headers=publisher).json["models"]
    assert sorted(m["name"] for m in everything) == ["iris", "other"]
    denied = client.get("/api/v1/models/other", headers=scoped)
    assert denied.status_code == 403
    assert _publish(client, scoped, "other").status_code == 403
    assert _publish(client, scoped, "iris", iris_classifier_v2()).status_code == 201


def test_publishing_never_spools_the_upload_to_disk(
    client: FlaskClient, publisher: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Werkzeug spools uploads over 500 KB to a temp file; the artifact must stay in memory."""
    import werkzeug.formparser
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    def no_temp_files(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an upload was spooled to a temporary file")

    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", no_temp_files)
    model = LinearRegression().fit(np.random.default_rng(0).random((10, 100_000)), np.arange(10))
    artifact = sio.dumps(model)
    assert len(artifact) > 600_000
    boundary, body = encode_multipart(
        {**CARD, "file": FileStorage(io.BytesIO(artifact), "big.skops")}  # type: ignore[dict-item]
    )
    response = client.post(
        "/api/v1/models/big/versions",
        data=body,
        headers=publisher,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 201, response.json


def test_republishing_the_same_bytes_is_409_unless_allowed(
    client: FlaskClient, publisher: Headers
) -> None:
    """Issue 14.19."""
    assert _publish(client, publisher).status_code == 201
    again = _publish(client, publisher)
    assert again.status_code == 409 and "version 1" in again.json["detail"]
    allowed = _publish(client, publisher, allow_duplicate="true")
    assert allowed.status_code == 201 and allowed.json["version"] == 2
