"""/healthz answers while the process lives; /readyz only when it can serve."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from server.container import Container
from tests.support.artifacts import drop, flip_a_byte
from tests.support.publishing import publish
from tests.support.readiness import readyz


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_when_everything_is_there(client: FlaskClient, cofre: Container) -> None:
    publish(cofre, "iris", aliases=["production"])
    response = readyz(client, cofre)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready"
    assert response.json["checks"]["models"]["detail"] == "1 aliased versions loadable"
    assert {"database", "keys", "models"} <= set(response.json["checks"])


def test_readyz_is_503_without_the_key_directory(client: FlaskClient, cofre: Container) -> None:
    shutil.rmtree(cofre.settings.key_dir)
    response = readyz(client, cofre)
    assert response.status_code == 503
    assert response.json["checks"]["keys"]["ok"] is False
    assert "cofre init" in response.json["checks"]["keys"]["detail"]


def test_readyz_is_503_when_the_schema_is_behind(client: FlaskClient, cofre: Container) -> None:
    with cofre.engine.begin() as connection:
        # As if the code had been upgraded but not `cofre init`: only the first revision.
        connection.execute(text("DELETE FROM alembic_version"))
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
    response = readyz(client, cofre)
    assert response.status_code == 503
    assert response.json["checks"]["database"]["ok"] is False
    assert "run `cofre init`" in response.json["checks"]["database"]["detail"]


def test_readyz_is_503_when_a_served_artifact_is_missing(
    client: FlaskClient, cofre: Container
) -> None:
    version = publish(cofre, "iris", aliases=["production"])
    drop(cofre, version.artifact_file)
    response = readyz(client, cofre)
    assert response.status_code == 503
    assert "model 'iris' version 1" in response.json["checks"]["models"]["detail"]


def test_public_readiness_says_only_ready_or_not(
    client: FlaskClient, cofre: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    """Issue 14.6: /readyz was public and showed the master-key id."""
    publish(cofre, "iris", aliases=["production"])
    kek_id = cofre.keyring.current_kek_id()
    public = client.get("/readyz")
    assert public.status_code == 200 and public.json == {"status": "ready"}
    assert kek_id not in public.text
    for role in ("metrics", "admin"):
        detailed = client.get("/readyz", headers=api_key(role))
        assert detailed.status_code == 200 and kek_id in detailed.json["checks"]["keys"]["detail"]
    assert client.get("/readyz", headers=api_key("predictor")).json == {"status": "ready"}
    assert client.get("/readyz", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    shutil.rmtree(cofre.settings.key_dir)
    down = client.get("/readyz")
    assert down.status_code == 503 and down.json == {"status": "not ready"}


def test_readyz_is_503_when_a_served_artifact_is_tampered(
    client: FlaskClient, cofre: Container
) -> None:
    """Issue 14.15: /readyz vouched for a tampered production artifact (it only
    checked that the file was there and its data key opened)."""
    version = publish(cofre, "iris", aliases=["production"])
    assert readyz(client, cofre).status_code == 200
    flip_a_byte(cofre, version.artifact_file)
    response = readyz(client, cofre)
    assert response.status_code == 503, response.json
    check = response.json["checks"]["models"]
    assert check["ok"] is False and "model 'iris' version 1" in check["detail"]


def test_readyz_authenticates_each_artifact_once_while_its_file_is_unchanged(
    client: FlaskClient, cofre: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(cofre, "iris", aliases=["production", "staging"])
    opened: list[str] = []
    real = cofre.registry.store.get

    def counting(*args: Any) -> bytes:
        opened.append(args[4])
        return real(*args)

    monkeypatch.setattr(cofre.registry.store, "get", counting)
    for _ in range(3):
        assert readyz(client, cofre).status_code == 200
    # two aliases, one version, three probes: its artifact and its compiled model, once
    assert len(opened) == 2


def test_readyz_is_503_when_a_compiled_model_is_tampered(
    client: FlaskClient, cofre: Container
) -> None:
    version = publish(cofre, "iris", aliases=["production"])
    assert version.compilation is not None and version.compilation.artifact_file is not None
    assert readyz(client, cofre).status_code == 200
    flip_a_byte(cofre, version.compilation.artifact_file)
    response = readyz(client, cofre)
    assert response.status_code == 503, response.json
    assert "model 'iris' version 1 (onnx)" in response.json["checks"]["models"]["detail"]
