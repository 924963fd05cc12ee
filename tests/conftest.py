"""Shared fixtures: settings on a temporary home, a database URL over SQLite and
PostgreSQL, an initialised app, its test client, a CLI runner and auth helpers.

PostgreSQL: tests marked `postgres` create a throw-away database on the server
named by COFRE_TEST_POSTGRES_URL (default: the local server with trust auth,
user postgres, database test) and drop it afterwards. When that server is not
reachable they are skipped, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from server import create_app
from server.container import Container
from server.extension import EXTENSION
from server.setup import initialise

POSTGRES_URL = os.environ.get(
    "COFRE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ADMIN_PASSWORD = "correct horse battery staple"


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(_libpq(POSTGRES_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).splitlines()[0]


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = _postgres_reachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required under CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable ({problem}); see README 'Testing'")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    server = request.getfixturevalue("postgres_server")
    name = f"cofre_t_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'cofre.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def overrides(home: Path, database_url: str) -> dict[str, Any]:
    """Settings for a test appliance; tests may add to it before `app` is built."""
    return {
        "home": str(home),
        "database_url": database_url,
        "testing": True,
        "log_json": False,
        "key_dir": str(home.parent / "keys"),
    }


@pytest.fixture
def app(overrides: dict[str, Any]) -> Iterator[Flask]:
    """An initialised appliance (keys, schema, admin) on the test's database."""
    flask_app = create_app(overrides)
    container = services_of(flask_app)
    initialise(container, SYSTEM, "admin", ADMIN_PASSWORD)
    yield flask_app
    container.close()


@pytest.fixture
def cofre(app: Flask) -> Container:
    return services_of(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(overrides: dict[str, Any], app: Flask) -> CliRunner:
    """Runs `cofre` commands against the same appliance as `app`."""
    env = {
        f"COFRE_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in overrides.items()
    }
    return CliRunner(env=env)


@pytest.fixture
def api_key(cofre: Container) -> Callable[..., dict[str, str]]:
    """Factory: headers carrying a fresh API key of `role` (optionally model-scoped)."""

    def make(
        role: str, models: list[str] | None = None, labels_only: bool = False
    ) -> dict[str, str]:
        with cofre.write() as session:
            created = cofre.accounts.create_key(
                session, SYSTEM, f"test-{role}", role, models, labels_only
            )
        return {"Authorization": f"Bearer {created.secret}"}

    return make


def services_of(flask_app: Flask) -> Container:
    container: Container = flask_app.extensions[EXTENSION]
    return container
