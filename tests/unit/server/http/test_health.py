"""/healthz answers while the process lives; /readyz only when it can serve."""

from __future__ import annotations

import shutil

from flask.testing import FlaskClient
from sqlalchemy import text

from server.container import Container
from tests.support.publishing import publish


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_when_everything_is_there(client: FlaskClient, cofre: Container) -> None:
    publish(cofre, "iris", aliases=["production"])
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready"
    assert response.json["checks"]["models"]["detail"] == "1 aliased versions loadable"
    assert {"database", "keys", "models"} <= set(response.json["checks"])


def test_readyz_is_503_without_the_key_directory(client: FlaskClient, cofre: Container) -> None:
    shutil.rmtree(cofre.settings.key_dir)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["keys"]["ok"] is False
    assert "cofre init" in response.json["checks"]["keys"]["detail"]


def test_readyz_is_503_when_the_schema_is_behind(client: FlaskClient, cofre: Container) -> None:
    with cofre.engine.begin() as connection:
        # As if the code had been upgraded but not `cofre init`: only the first revision.
        connection.execute(text("DELETE FROM alembic_version"))
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"]["ok"] is False
    assert "run `cofre init`" in response.json["checks"]["database"]["detail"]


def test_readyz_is_503_when_a_served_artifact_is_missing(
    client: FlaskClient, cofre: Container
) -> None:
    version = publish(cofre, "iris", aliases=["production"])
    (cofre.settings.artifact_dir / version.artifact_file).unlink()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "model 'iris' version 1" in response.json["checks"]["models"]["detail"]
