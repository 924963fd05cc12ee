"""Moving to artifact_store = "database": `cofre init` brings the files an appliance
kept on disk into the table, each file removed only once its row reads back equal,
and a second run moves nothing."""

from __future__ import annotations

from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from governance.errors import IntegrityError
from server import create_app
from server.container import Container
from server.setup import initialise
from tests.conftest import ADMIN_PASSWORD, services_of
from tests.support.publishing import publish

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return overrides | {"artifact_store": "files"}  # as a release before the table kept them


def _on_the_table(overrides: dict[str, Any]) -> Container:
    return services_of(create_app(overrides | {"artifact_store": "database"}))


@ON_POSTGRESQL
def test_init_moves_artifact_files_into_the_database(
    cofre: Container, overrides: dict[str, Any]
) -> None:
    version = publish(cofre, "iris", aliases=["production"])
    files = sorted(p.name for p in cofre.settings.artifact_dir.glob("*.cofre"))
    assert version.artifact_file in files
    moved = _on_the_table(overrides)
    try:
        changes, _ = initialise(moved, SYSTEM, "admin", ADMIN_PASSWORD)
        assert f"moved {len(files)} artifact files into the database" in changes
        assert list(cofre.settings.artifact_dir.glob("*.cofre")) == []
        assert sorted(moved.artifact_place.names()) == files
        assert moved.registry.load_estimator(version) is not None
        again, _ = initialise(moved, SYSTEM, "admin", ADMIN_PASSWORD)
        assert again == []
    finally:
        moved.close()


@ON_POSTGRESQL
def test_a_file_that_differs_from_its_row_is_kept_and_named(
    cofre: Container, overrides: dict[str, Any]
) -> None:
    """Two copies that disagree are an operator's question: neither is thrown away."""
    version = publish(cofre, "iris")
    moved = _on_the_table(overrides)
    try:
        path = cofre.settings.artifact_dir / version.artifact_file
        moved.artifact_place.write(version.artifact_file, b"another copy")
        with pytest.raises(IntegrityError, match=f"artifact {version.artifact_file} differs"):
            initialise(moved, SYSTEM, "admin", ADMIN_PASSWORD)
        assert path.exists()
    finally:
        moved.close()


def test_the_database_store_is_refused_on_sqlite(tmp_path: Any) -> None:
    from server.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="artifact_store = database needs PostgreSQL"):
        load_settings({"home": str(tmp_path), "artifact_store": "database"})
    with pytest.raises(ConfigError, match="must be files or database"):
        load_settings({"home": str(tmp_path), "artifact_store": "s3"})
